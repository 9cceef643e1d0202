"""Where and how a Kafka client connects: :class:`KafkaSettings` (built from a ``kafka://``
address), the topics and tuning constants behind its defaults, :class:`KafkaTransportError`
(one line naming the address or topic), and the helpers the clients share."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ingest.sources import redact
from processing.errors import TransportError

__all__ = ["ALERTS_TOPIC", "ConnectCause", "DEADLETTER_TOPIC", "KafkaSettings", "KafkaTransportError", "READINGS_TOPIC", "explain",
           "next_delivery", "quiet_stop"]

READINGS_TOPIC = "ioc.readings"
ALERTS_TOPIC = "ioc.alerts"
DEADLETTER_TOPIC = "ioc.deadletter"
SCORES_TOPIC = "ioc.scores"              # what scoring workers publish (ioc.worker)
EVENTS_TOPIC = "ioc.alert-events"        # the alert evidence they publish

# --- Tuning constants -------------------------------------------------------------------
# Items one getmany returns at most (scored in one call): record batches on the fast path of
# ingest.kafka.batches, records without it.  What one fetch holds bounds a delivery too.
MAX_BATCH = 20_000
# How long the broker may hold a fetch to fill it: bounds the latency of a quiet stream.
FETCH_MAX_WAIT_MS = 20
# Bytes per partition per fetch: big fetches for throughput (a single larger record still comes).
MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024
# The producer waits this long to fill a batch (throughput) -- a few ms of latency.
LINGER_MS = 5
MAX_BATCH_BYTES = 256 * 1024
# start() waits this long at most for the group to give us partitions.
JOIN_TIMEOUT_S = 15.0
# Kafka's default broker limit is 1 MiB a record batch; a dead letter's original bytes are
# cut to this (the header 'truncated' gives the original size) so it can always be stored.
MAX_DEAD_PAYLOAD = 900_000


class KafkaTransportError(TransportError):
    """A Kafka problem a user can fix; the message is one line naming the address or topic."""


@dataclass(frozen=True)
class KafkaSettings:
    """Where and how to connect; build it with :meth:`from_url`.

    >>> s = KafkaSettings.from_url("kafka://10.0.0.7:9093?group=workers&format=senml")
    >>> s.bootstrap, s.group, s.topic, s.payload_format, s.url
    ('10.0.0.7:9093', 'workers', 'ioc.readings', 'senml', 'kafka://10.0.0.7:9093?group=workers&topic=ioc.readings')
    """

    bootstrap: str = "127.0.0.1:9092"      # host:port[,host:port...]
    group: str = "ioc"
    topic: str = READINGS_TOPIC
    alerts_topic: str = ALERTS_TOPIC
    deadletter_topic: str = DEADLETTER_TOPIC
    scores_topic: str = SCORES_TOPIC
    events_topic: str = EVENTS_TOPIC
    client_id: str | None = None
    payload_format: str | None = None
    max_batch: int = MAX_BATCH
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    offset_reset: str = "earliest"         # where a new group starts: earliest | latest
    username: str | None = None            # SASL/SCRAM user (from kafka://USER:PASSWORD@HOST…)
    password: str | None = field(default=None, repr=False)     # never shown: not in repr, url or errors
    mechanism: str = "SCRAM-SHA-256"       # SCRAM-SHA-256 | SCRAM-SHA-512 | PLAIN
    tls: bool = False                      # TLS to the brokers (?tls=1, implied by ?ca=)
    ca: str | None = None                  # CA file to trust (default: the system's)

    def __post_init__(self) -> None:
        if not self.bootstrap or any(":" not in h for h in self.bootstrap.split(",")):
            raise KafkaTransportError(f"{self.url}: want kafka://HOST:PORT[,HOST:PORT]")
        if not self.group:
            raise KafkaTransportError(f"{self.url}: group must not be empty")
        for name in ("topic", "alerts_topic", "deadletter_topic", "scores_topic", "events_topic"):
            value = getattr(self, name)
            if not value or any(c in value for c in " /#+,"):
                raise KafkaTransportError(f"{self.url}: {name} {value!r} is not a valid Kafka topic name")
        if self.max_batch < 1:
            raise KafkaTransportError(f"{self.url}: max_batch must be >= 1, got {self.max_batch}")
        if self.offset_reset not in ("earliest", "latest"):
            raise KafkaTransportError(f"{self.url}: offset_reset must be earliest or latest, got {self.offset_reset!r}")
        if self.mechanism not in MECHANISMS:
            raise KafkaTransportError(f"{self.url}: mechanism must be one of {', '.join(MECHANISMS)}, "
                                      f"got {self.mechanism!r}")
        if bool(self.username) != (self.password is not None):
            raise KafkaTransportError(f"{self.url}: give both a user name and a password "
                                      "(kafka://USER:PASSWORD@HOST:PORT) or neither")
        if self.ca is not None and not os.path.isfile(self.ca):
            raise KafkaTransportError(f"{self.url}: ca={self.ca}: no such file")
        if self.payload_format is not None:
            from ingest.formats import FORMATS
            if self.payload_format not in FORMATS:
                raise KafkaTransportError(f"{self.url}: format must be one of {', '.join(FORMATS)}, got "
                                 f"{self.payload_format!r}")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> "KafkaSettings":
        """``kafka://[USER:PASSWORD@]host:port[,host:port]?group=G&topic=T&alerts=T&deadletter=T&scores=T&events=T&client_id=…
        &format=…&tls=1&ca=PATH&mechanism=SCRAM-SHA-512``.  A user and password mean SASL (SCRAM-SHA-256
        unless ``mechanism`` says otherwise; percent-encode ``@ : /`` in them); ``tls=1`` or a ``ca``
        file mean TLS (SASL_SSL with a password)."""
        parts = urlsplit(url.strip())
        if parts.scheme != "kafka" or not parts.netloc:
            raise KafkaTransportError(f"{redact(url)}: not a Kafka address (want kafka://HOST:9092)")
        userinfo, _, netloc = parts.netloc.rpartition("@")
        username = password = None
        if userinfo:
            user, sep, secret = userinfo.partition(":")
            if not user or not sep:
                raise KafkaTransportError(f"{redact(url)}: want kafka://USER:PASSWORD@HOST:PORT")
            username, password = unquote(user), unquote(secret)
        url = redact(url)
        hosts = [h if ":" in h else f"{h}:9092" for h in netloc.split(",") if h]
        for h in hosts:
            port = h.rsplit(":", 1)[1]
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise KafkaTransportError(f"{url}: port must be a number 1..65535, got {port!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        known = {"group", "topic", "alerts", "deadletter", "scores", "events", "client_id", "format", "max_batch",
                 "offset_reset", "tls", "ca", "mechanism"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise KafkaTransportError(f"{url}: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")
        try:
            max_batch = int(query.get("max_batch", MAX_BATCH))
        except ValueError:
            raise KafkaTransportError(f"{url}: option 'max_batch' must be an integer") from None
        values: dict[str, Any] = dict(
            bootstrap=",".join(hosts), group=query.get("group") or cls.group,
            topic=query.get("topic") or READINGS_TOPIC, alerts_topic=query.get("alerts") or ALERTS_TOPIC,
            deadletter_topic=query.get("deadletter") or DEADLETTER_TOPIC, client_id=query.get("client_id") or None,
            scores_topic=query.get("scores") or SCORES_TOPIC, events_topic=query.get("events") or EVENTS_TOPIC,
            payload_format=query.get("format") or None, max_batch=max_batch,
            offset_reset=query.get("offset_reset") or "earliest", username=username, password=password,
            mechanism=(query.get("mechanism") or "SCRAM-SHA-256").upper(),
            tls=query.get("tls", "0").lower() in ("1", "true", "yes", "on") or bool(query.get("ca")),
            ca=query.get("ca") or None)
        if query.get("tls", "0").lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off", ""):
            raise KafkaTransportError(f"{url}: option 'tls' must be 1 or 0, got {query['tls']!r}")
        values.update(overrides)
        return cls(**values)

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}?group={self.group}&topic={self.topic}"

    def effective_client_id(self, role: str) -> str:
        return self.client_id or f"ioc-{role}-{socket.gethostname()}"

    def security_options(self) -> dict[str, Any]:
        """The aiokafka keyword arguments for TLS and SASL (empty: plaintext, no authentication)."""
        opts: dict[str, Any] = {}
        if self.tls:
            opts["ssl_context"] = ssl.create_default_context(cafile=self.ca)
            opts["security_protocol"] = "SSL"
        if self.username:
            opts.update(security_protocol="SASL_SSL" if self.tls else "SASL_PLAINTEXT", sasl_mechanism=self.mechanism,
                        sasl_plain_username=self.username, sasl_plain_password=self.password)
        return opts

    def explain_connect(self, exc: BaseException, cause: str = "") -> str:
        """Why a connection failed, in one line a user can act on (the password never shown).

        ``cause``: what aiokafka logged while connecting (:class:`ConnectCause`) -- it reports a
        refused login or certificate only there, and raises "Unable to bootstrap"."""
        text = explain(exc)
        if cause and "unable to bootstrap" in text.lower():
            text = cause
        low = text.lower()
        if self.username and ("authentication" in low or "sasl" in low or "credentials" in low):
            return (f"the brokers refused the login ({text}); check the user name {self.username!r} and its "
                    f"password, and the mechanism {self.mechanism}")
        if isinstance(exc, ssl.SSLCertVerificationError) or "certificate" in low:
            return f"TLS: the broker's certificate was not accepted ({text}); check ca= (now {self.ca or 'the system CAs'})"
        if self.tls and ("wrong version" in low or "record layer" in low or "eof occurred" in low):
            return f"TLS failed ({text}); is this port a TLS (SSL or SASL_SSL) listener?"
        return text


MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


class ConnectCause(logging.Handler):
    """While a client starts (``with ConnectCause() as cause:``), the last error aiokafka logged,
    as one line without the address it repeats (``cause.text``)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.text = re.sub(r'^Unable connect to "[^"]*": ', "", message.splitlines()[0] if message else "")

    def __enter__(self) -> "ConnectCause":
        logger = logging.getLogger("aiokafka")
        self._level = logger.level
        if not logger.isEnabledFor(logging.ERROR):     # silenced (a benchmark does): still hear the cause
            logger.setLevel(logging.ERROR)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("aiokafka")
        logger.removeHandler(self)
        logger.setLevel(self._level)


def explain(exc: BaseException) -> str:
    """The first line of an aiokafka error, for a one-line message."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


async def quiet_stop(client: Any) -> None:
    """Stop an aiokafka consumer or producer, never raising."""
    try:
        await client.stop()
    except Exception:              # noqa: BLE001 - stopping must not raise
        pass


async def next_delivery(consumer: Any, stopping: "asyncio.Future[Any]", *, url: str, who: str,
                        timeout_ms: int = 200, max_records: int | None = None) -> dict[Any, list[Any]] | None:
    """One ``getmany`` of ``consumer``, or None once ``stopping`` is done (the fetch is cancelled).

    A retriable broker error is logged (``who`` names the client), waited out for 0.5 s and
    answered with an empty delivery; any other is a :class:`KafkaTransportError` naming ``url``."""
    from aiokafka import errors as kerr

    fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=timeout_ms, max_records=max_records))
    await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not fetch.done():
        fetch.cancel()
        return None
    try:
        return fetch.result()
    except kerr.KafkaError as exc:
        if getattr(exc, "retriable", False):
            logging.getLogger("ingest.kafka").warning("%s: %s; retrying", who, explain(exc))
            await asyncio.sleep(0.5)
            return {}
        raise KafkaTransportError(f"{redact(url)}: {explain(exc)}") from None
