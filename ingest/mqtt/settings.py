"""Where and how an MQTT client connects: :class:`MqttSettings` (built from an ``mqtt[s]://``
address), the tuning constants behind its defaults, the TLS context it asks for, and
:class:`MqttError`, the one error of the MQTT transport (one line naming the address or topic)."""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from processing.errors import TransportError

__all__ = ["MqttError", "MqttSettings", "tls_context"]

# --- Tuning constants -------------------------------------------------------------------
# Unacknowledged QoS 1 messages the broker may send us (MQTT 5 Receive Maximum; 65535
# is the protocol's maximum). Mosquitto honours an MQTT 5 client's value. A batch is
# acknowledged only after it was scored, so the window must hold the batch being
# scored *and* the next one arriving meanwhile; 65535 messages of ~60 bytes is 4 MB.
RECEIVE_MAXIMUM = 65_535
# Messages handed to the pipeline at most per batch (a batch is scored in one call).
MAX_BATCH = 20_000
# A day: the broker keeps our subscription and queues readings this long while we are away.
SESSION_EXPIRY_S = 86_400
KEEPALIVE_S = 30
# Reconnect backoff: first retry after RECONNECT_MIN_S, doubling up to RECONNECT_MAX_S.
RECONNECT_MIN_S = 0.25
RECONNECT_MAX_S = 10.0
# The first connection (and SUBACK) must come within this, else the address is reported.
CONNECT_TIMEOUT_S = 15.0
# QoS 1 messages a publisher has on the wire unacknowledged (paho's in-flight window; at most
# what the broker accepts: Mosquitto's max_inflight_messages, 1000 in deploy/mosquitto).
PUBLISH_INFLIGHT = 1000
# A publisher never keeps more than this many messages waiting for their PUBACK.
MAX_OUTSTANDING = 20_000


class MqttError(TransportError):
    """An MQTT problem a user can fix; the message is one line naming the address or topic."""


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to connect; build it with :meth:`from_url`.

    >>> s = MqttSettings.from_url("mqtt://ioc:secret@10.0.0.5:1884/city/+/traffic/#?group=g1&client_id=w1")
    >>> s.subscription, s.port, s.username, s.url
    ('$share/g1/city/+/traffic/#', 1884, 'ioc', 'mqtt://ioc:***@10.0.0.5:1884/city/+/traffic/#?group=g1')
    >>> MqttSettings.from_url("mqtt://localhost").subscription
    'city/#'
    """

    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "city/#"                  # topic filter subscribed to (a topic to publish under for a publisher)
    group: str | None = None               # shared-subscription group ($share/<group>/…); None: a plain one
    qos: int = 1
    client_id: str | None = None           # None: "ioc-<group>-<hostname>" (stable, so the session persists)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca: Path | None = None                 # CA certificate (PEM); None: the system's CAs
    payload_format: str | None = None      # compact | senml | ngsi-ld; None: sniff each message
    session_expiry_s: int = SESSION_EXPIRY_S
    receive_maximum: int = RECEIVE_MAXIMUM
    max_batch: int = MAX_BATCH
    keepalive_s: int = KEEPALIVE_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        where = self.url
        if not self.host:
            raise MqttError(f"{where}: no broker host")
        if not 0 < self.port < 65536:
            raise MqttError(f"{where}: port must be 1..65535, got {self.port}")
        if self.qos not in (0, 1):
            raise MqttError(f"{where}: qos must be 0 or 1, got {self.qos}")
        if not self.topic or any(part not in ("+", "#") and ("+" in part or "#" in part)
                                 for part in self.topic.split("/")) or "#" in self.topic[:-1]:
            raise MqttError(f"{where}: topic filter {self.topic!r} is not valid ('#' only last, '+' alone in a level)")
        if self.group is not None and (not self.group or any(c in self.group for c in "/+#")):
            raise MqttError(f"{where}: group {self.group!r} must be non-empty without '/', '+' or '#'")
        if not 1 <= self.receive_maximum <= 65535:
            raise MqttError(f"{where}: receive_maximum must be 1..65535, got {self.receive_maximum}")
        if self.max_batch < 1:
            raise MqttError(f"{where}: max_batch must be >= 1, got {self.max_batch}")
        if self.payload_format is not None:
            from ingest.formats import FORMATS
            if self.payload_format not in FORMATS:
                raise MqttError(f"{where}: format must be one of {', '.join(FORMATS)}, got {self.payload_format!r}")
        if self.ca is not None and not Path(self.ca).is_file():
            raise MqttError(f"{where}: CA certificate {self.ca} not found")

    # ------------------------------------------------------------------ addresses
    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> "MqttSettings":
        """``mqtt[s]://[user:pass@]host[:port][/topic-filter]?group=G&qos=1&tls=1&ca=PATH&client_id=…&format=…``.

        The topic filter may hold ``+`` and a trailing ``#`` as typed (no escaping);
        ``mqtts://`` (or ``tls=1``) means TLS, default port 8883; ``group=G`` subscribes
        with the shared subscription ``$share/G/<filter>`` (see :mod:`ingest.mqtt.source`).
        """
        raw = url.strip()
        # '#' is a URL fragment marker, but in a topic filter it is the multi-level wildcard
        parts = urlsplit(raw.replace("#", "%23"))
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise MqttError(f"{url}: not an MQTT address (want mqtt://host:port[/topic])")
        try:
            port = parts.port
        except ValueError:
            raise MqttError(f"{url}: port must be a number 1..65535") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        known = {"group", "qos", "tls", "ca", "client_id", "format", "session_expiry", "receive_maximum",
                 "max_batch", "keepalive"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise MqttError(f"{url}: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")

        def integer(name: str, default: int) -> int:
            if name not in query:
                return default
            try:
                return int(query[name])
            except ValueError:
                raise MqttError(f"{url}: option {name!r} must be an integer, got {query[name]!r}") from None

        tls = parts.scheme in ("mqtts", "ssl") or query.get("tls", "0").lower() in ("1", "true", "yes", "on")
        topic = unquote(parts.path[1:]) if len(parts.path) > 1 else cls.topic
        group: str | None = query.get("group", cls.group)
        values: dict[str, Any] = dict(
            host=parts.hostname or cls.host, port=port or (8883 if tls else 1883), topic=topic,
            group=group or None, qos=integer("qos", cls.qos), client_id=query.get("client_id") or None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None, tls=tls,
            ca=Path(query["ca"]) if query.get("ca") else None, payload_format=query.get("format") or None,
            session_expiry_s=integer("session_expiry", SESSION_EXPIRY_S),
            receive_maximum=integer("receive_maximum", RECEIVE_MAXIMUM),
            max_batch=integer("max_batch", MAX_BATCH), keepalive_s=integer("keepalive", KEEPALIVE_S))
        values.update(overrides)
        return cls(**values)

    @property
    def url(self) -> str:
        """The address without the password (for messages)."""
        user = f"{quote(self.username)}:***@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        group = f"?group={self.group}" if self.group else ""
        topic = f"/{self.topic}" if self.topic != "city/#" else ""
        return f"{scheme}://{user}{self.host}:{self.port}{topic}{group}"

    @property
    def subscription(self) -> str:
        """The filter actually subscribed: ``$share/<group>/<topic>`` or the topic itself."""
        return f"$share/{self.group}/{self.topic}" if self.group else self.topic

    def effective_client_id(self, role: str = "ingest") -> str:
        if self.client_id:
            return self.client_id
        return f"ioc-{role}-{self.group or 'solo'}-{socket.gethostname()}"[:64]


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The client's TLS context: the broker's certificate checked against ``ca`` (else the system's CAs)
    and its host name; raises :class:`MqttError` when the CA file cannot be used."""
    try:
        return ssl.create_default_context(cafile=str(settings.ca) if settings.ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise MqttError(f"{settings.url}: cannot use CA certificate {settings.ca}: {exc}") from None
