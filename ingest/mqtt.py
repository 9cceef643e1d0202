"""MQTT transport (paho-mqtt 2.x, callback API v2, MQTT 5): a subscriber for the pipeline
and a publisher for simulators and alert topics.

:class:`MqttSource` -- at-least-once ingest::

    async with MqttSource(MqttSettings.from_url("mqtt://127.0.0.1:1883/city/#?group=ioc")) as src:
        async for delivery in src:                 # batches of (topic, payload)
            ...                                    # decode, score
            await src.commit(delivery)             # PUBACKs go out only now

* QoS 1 with ``manual_ack``: a message is acknowledged after the batch it came in
  was processed, so a crash before that gets it redelivered (duplicates are
  dropped downstream, :mod:`ingest.sources`).
* A persistent session: a fixed client id, clean start off and a Session Expiry
  Interval, so readings published while the consumer is away are queued by the
  broker and arrive when it reconnects.
* ``$share/<group>/<filter>`` shared subscriptions (``?group=G``): several workers split
  the load.  Not the default: Mosquitto 2.0 does not restore shared subscriptions from
  its persistence file, so readings published after a broker restart and before the
  workers re-subscribe (a fraction of a second) match no subscriber and are dropped
  (tests/integration/test_faults.py shows it).  A plain persistent subscription is
  restored with the session and loses nothing across a broker restart.
* Reconnects with exponential backoff (paho's ``reconnect_delay_set``).
* Receive Maximum sized for throughput: it bounds the unacknowledged messages the
  broker sends, which is also the most this process ever buffers.

Thread model: paho's network thread (``loop_start``) only appends
``(topic, payload, mid, qos, generation)`` to a deque and, when the asyncio
consumer is asleep waiting for data, wakes it with ``loop.call_soon_threadsafe``;
it never blocks.  The consumer drains the deque in batches.  An exception on
paho's thread (in one of our callbacks, or a fatal refusal by the broker) is kept
and re-raised in the consumer's ``async for``, as quix-streams' MQTT source does.

:class:`MqttPublisher` publishes at QoS 1 without waiting per message: paho keeps
up to the broker's Receive Maximum in flight, and :meth:`MqttPublisher.flush`
waits once for every outstanding PUBACK.

Exceptions::

    MqttError                 one line naming the broker address or topic
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncIterator, Iterable
from urllib.parse import parse_qs, quote, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.lifecycle import FlushingLifecycle, Lifecycle
from ingest.sources import Delivery
from processing.errors import TransportError

__all__ = ["MqttError", "MqttPublisher", "MqttSettings", "MqttSource"]

log = logging.getLogger(__name__)

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

# CONNACK / DISCONNECT reason codes after which retrying cannot help.
_FATAL_CONNECT = {"Bad user name or password", "Not authorized", "Client identifier not valid", "Banned",
                  "Unsupported protocol version", "Bad authentication method", "Malformed packet",
                  "Protocol error", "Topic Name invalid"}
_FATAL_DISCONNECT = {"Session taken over", "Not authorized", "Bad user name or password"}


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
        with the shared subscription ``$share/G/<filter>`` (see the module docstring).
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


# ---------------------------------------------------------------------- shared client setup

_PUBACK = 0x40
_RECV_CHUNK = 256 * 1024


class _PahoClient(mqtt.Client):
    """paho's client with a faster read path and bulk acknowledgements.

    At tens of thousands of small messages a second paho's own read path is most of a
    subscriber's time: one ``select()`` per packet, 3-4 ``recv`` calls of a few bytes
    each, and for MQTT 5 a ``Properties`` object (two dicts of 27 names) built and
    cleared for every PUBLISH even when it carries no property.  Here

    * ``loop_read`` reads every packet already there, through a 256 KiB receive buffer
      (it returns only when the buffer is empty and the socket has nothing more, so
      ``select()`` stays right);
    * a QoS 0/1 PUBLISH without properties goes straight to ``on_raw_message(topic,
      payload, mid, qos)`` when that is set -- parsed from the buffer when it is all
      there, else after paho read it (anything else takes paho's own path);
    * :meth:`ack_many` sends the PUBACKs of a whole batch as one write.

    Only paho 2.x internals that have been stable across its 2.x releases are used
    (``_packet_read``, ``_sock_recv``, ``_in_packet``, ``_packet_queue``); paho is
    pinned ``<3``.

    >>> c = _PahoClient(CallbackAPIVersion.VERSION2, "t", protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
    >>> got = []
    >>> c.on_raw_message = lambda *m: got.append(m)
    >>> publish = bytes([0x32, 13, 0, 3]) + b"a/b" + bytes([0, 7, 0]) + b"hello"  # QoS 1, mid 7, no properties
    >>> c._rbuf = publish + publish[:6]                                           # and the start of the next
    >>> int(c._packet_read()), got, c._rpos
    (0, [(b'a/b', b'hello', 7, 1)], 15)
    """

    _rbuf: bytes = b""
    _rpos: int = 0
    on_raw_message: Any = None

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0          # bytes of a lost connection are not this one's
        return super().reconnect()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        try:
            while True:
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                rc = self._packet_read()
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    if self._rpos >= len(self._rbuf):      # paho may also pause inside a huge packet
                        return MQTTErrorCode.MQTT_ERR_SUCCESS
                elif rc > 0:
                    return self._loop_rc_handle(rc)
        finally:
            with self._msgtime_mutex:                       # keepalive bookkeeping, once per read
                self._last_bytes_received = time.monotonic()

    def _packet_read(self) -> MQTTErrorCode:
        # A whole QoS 0/1 PUBLISH without properties already in the buffer: parse it here.
        raw = self.on_raw_message
        buf, pos = self._rbuf, self._rpos
        if raw is not None and pos + 5 < len(buf) and self._in_packet["command"] == 0:
            cmd = buf[pos]
            if cmd & 0xF0 == 0x30 and cmd & 0x06 in (0, 2) and self._protocol == MQTTProtocolVersion.MQTTv5:
                length = shift = 0
                p = pos + 1
                while True:                                 # remaining length, 1-4 bytes
                    b = buf[p]
                    p += 1
                    length |= (b & 0x7F) << shift
                    if b < 0x80 or p - pos > 4:
                        break
                    shift += 7
                    if p >= len(buf):
                        b = 0x80
                        break
                end = p + length
                if b < 0x80 and end <= len(buf) and length >= 3:
                    qos = (cmd & 0x06) >> 1
                    q = p + 2 + (buf[p] << 8 | buf[p + 1])
                    mid = 0
                    if qos:
                        mid = buf[q] << 8 | buf[q + 1] if q + 1 < end else -1
                        q += 2
                    if q < end and buf[q] == 0 and mid != -1:   # no properties
                        self._rpos = end
                        with self._in_callback_mutex:
                            raw(buf[p + 2:p + 2 + (buf[p] << 8 | buf[p + 1])], buf[q + 1:end], mid, qos)
                        if qos == 1 and not self._manual_ack:
                            return self._send_puback(mid)
                        return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(_RECV_CHUNK)    # BlockingIOError when nothing is there
            if not buf:
                return buf                          # connection closed
            self._rbuf = buf
            pos = 0
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]

    def _handle_publish(self) -> MQTTErrorCode:
        raw = self.on_raw_message
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if raw is None or qos == 2 or self._protocol != MQTTProtocolVersion.MQTTv5:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            pos = 2 + (packet[0] << 8 | packet[1])
            topic = bytes(packet[2:pos])
            mid = 0
            if qos:
                mid = packet[pos] << 8 | packet[pos + 1]
                pos += 2
            if packet[pos] != 0:                        # it has properties: paho's own path
                return super()._handle_publish()
        except IndexError:
            return super()._handle_publish()         # malformed: let paho say so
        with self._in_callback_mutex:
            raw(topic, bytes(packet[pos + 1:]), mid, qos)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK every QoS 1 message id in ``mids``, in one write (thread-safe like ``publish``)."""
        if not mids or not self._manual_ack:
            return
        packet = b"".join([struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids])
        self._packet_queue(_PUBACK, packet, 0, 0)


def _client(settings: MqttSettings, client_id: str, *, manual_ack: bool, mqtt5: bool = True) -> _PahoClient:
    """A paho client with every option of ``settings`` applied (the one place paho is configured)."""
    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    client = _PahoClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         reconnect_on_failure=True, manual_ack=manual_ack)
    client.suppress_exceptions = True          # our callbacks catch everything themselves; belt and braces
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]  # floats work
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set_context(tls_context(settings))
    return client


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The client's TLS context: the broker's certificate checked against ``ca`` (else the system's CAs)
    and its host name; raises :class:`MqttError` when the CA file cannot be used."""
    try:
        return ssl.create_default_context(cafile=str(settings.ca) if settings.ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise MqttError(f"{settings.url}: cannot use CA certificate {settings.ca}: {exc}") from None


def _tls_problem(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the broker's certificate was not accepted ({exc.verify_message}); check ca= and that the "
                f"host name is in the certificate")
    return f"TLS handshake failed ({exc}); is this the broker's TLS port?"


def _refusal_hint(reason: str, settings: MqttSettings) -> str:
    if reason not in ("Not authorized", "Bad user name or password"):
        return ""
    if settings.username:
        return f" (check the user name {settings.username!r} and its password)"
    return " (the broker wants a user name and password: mqtt://USER:PASSWORD@HOST)"


def _connect_properties(settings: MqttSettings, *, session_expiry_s: int, receive_maximum: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = receive_maximum
    return props


def _reason(rc: Any) -> str:
    return getattr(rc, "getName", lambda: str(rc))()


def _resolve(fut: asyncio.Future | None) -> None:
    """Wake whoever awaits ``fut`` (on the loop's thread)."""
    if fut is not None and not fut.done():
        fut.set_result(None)


class _Link:
    """Connection bookkeeping shared by the source and the publisher (paho thread -> asyncio)."""

    def __init__(self, settings: MqttSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None      # fatal: re-raised in the caller
        self.last_problem = "no answer yet"           # why the latest attempt failed (for timeouts)
        self.connected = threading.Event()
        self.generation = 0                           # bumped on every CONNACK (ack only current-connection mids)
        self.connects = 0
        self.disconnects = 0

    def fail(self, exc: BaseException, wake: Any) -> None:
        if self.error is None:
            self.error = exc
        self.wake(wake)

    def wake(self, callback: Any) -> None:
        """Run ``callback`` on the asyncio loop, from paho's thread (nothing if the loop is gone)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:                      # loop closed meanwhile
                pass

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    async def probe(self) -> None:
        """Fail at once, naming the address, when nothing listens there (paho would retry for ever)."""
        s = self.settings
        try:
            conn = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), min(5.0, s.connect_timeout_s))
        except (OSError, asyncio.TimeoutError) as exc:
            why = "timed out" if isinstance(exc, asyncio.TimeoutError) else \
                (os.strerror(exc.errno).lower() if exc.errno else str(exc))
            raise MqttError(f"cannot connect to {s.url}: {why}") from None
        conn[1].close()
        if s.tls:       # paho would retry a refused certificate until the timeout, saying only "unreachable"
            problem = await asyncio.to_thread(self.tls_problem)
            if problem:
                raise MqttError(f"cannot connect to {s.url}: {problem}")

    def tls_problem(self, timeout: float = 5.0) -> str | None:
        """What a TLS handshake with the broker says, or None when it succeeds or when nothing
        answers at all (not a TLS problem) -- blocking."""
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout)
        except OSError:
            return None
        try:
            with sock, tls_context(s).wrap_socket(sock, server_hostname=s.host):
                return None
        except MqttError as exc:
            return str(exc)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            return _tls_problem(exc)
        except OSError as exc:
            return f"TLS handshake failed ({exc}); is this the broker's TLS port?"

    def refused(self, reason: str, wake: Any) -> None:
        """A CONNACK with a failure reason (paho's thread); a reason no retry can mend ends the attempt."""
        self.last_problem = f"the broker refused the connection: {reason}{_refusal_hint(reason, self.settings)}"
        if reason in _FATAL_CONNECT:
            self.fail(MqttError(f"{self.settings.url}: {self.last_problem}"), wake)

    def connect_failed(self) -> None:
        """paho could not connect (its thread): keep the best explanation for the caller."""
        problem = self.tls_problem() if self.settings.tls else None
        self.last_problem = problem or "connection refused or unreachable"

    async def wait_connected(self, timeout: float, ready: threading.Event) -> None:
        """Wait for ``ready`` (CONNACK, or SUBACK for a subscriber); a fatal error or the timeout raises."""
        deadline = time.monotonic() + timeout
        while not ready.is_set():
            self.check()
            if time.monotonic() > deadline:
                raise MqttError(f"cannot connect to {self.settings.url} within {timeout:g} s: {self.last_problem}")
            await asyncio.sleep(0.02)
        self.check()


# ------------------------------------------------------------------------------ subscriber

class MqttSource(Lifecycle):
    """Subscribe and yield :class:`~ingest.sources.Delivery` batches; acknowledge on :meth:`commit`.

    ``async with`` connects (raising :class:`MqttError` naming the address when the
    broker cannot be reached or refuses us) and disconnects, keeping the session:
    what was not committed is redelivered to the next connection with the same
    client id.  ``async for`` yields batches of up to ``max_batch`` messages, as soon
    as any are there.
    """

    def __init__(self, settings: MqttSettings, *, client_id_role: str = "ingest") -> None:
        self.settings = settings
        self.client_id = settings.effective_client_id(client_id_role)
        self.formats: str | None = settings.payload_format
        self.name = settings.url
        self._link = _Link(settings, "subscriber")
        self._queue: deque[tuple[str, bytes, int, int, int]] = deque()
        self._waiting = False
        self._future: asyncio.Future | None = None
        self._subscribed = threading.Event()
        self._client: _PahoClient | None = None
        self.messages_received = 0
        self.messages_acked = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        s = self.settings
        self._link.loop = asyncio.get_running_loop()
        await self._link.probe()
        client = _client(s, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_raw_message = self._on_raw_message
        self._client = client
        props = _connect_properties(s, session_expiry_s=s.session_expiry_s, receive_maximum=s.receive_maximum)
        try:
            client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props)
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {s.url}: {exc}") from None
        client.loop_start()
        try:
            await self._link.wait_connected(s.connect_timeout_s, self._subscribed)
        except BaseException:
            await self.close()
            raise
        log.info("mqtt: subscribed to %s on %s as %s", s.subscription, s.url, self.client_id)

    async def close(self) -> None:
        """Disconnect (the broker keeps the session and every unacknowledged message)."""
        client, self._client = self._client, None
        if client is None:
            return
        client.on_message = None
        client.on_raw_message = None
        try:
            client.disconnect()
        except Exception:          # noqa: BLE001 - closing must not raise
            pass
        await asyncio.to_thread(client.loop_stop)
        self._queue.clear()

    # ------------------------------------------------------------- paho thread
    # Each callback runs on paho's network thread; an exception is kept for the caller.
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                    properties: Properties | None) -> None:
        try:
            if rc.is_failure:
                self._link.refused(_reason(rc), self._wake)
                return
            link = self._link
            link.generation += 1
            link.connects += 1
            link.connected.set()
            if link.connects > 1:
                log.warning("mqtt: reconnected to %s (session present: %s)", self.settings.url,
                            getattr(flags, "session_present", "?"))
            result, _mid = client.subscribe(self.settings.subscription,
                                            options=SubscribeOptions(qos=self.settings.qos))
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                link.last_problem = f"subscribe failed: {mqtt.error_string(result)}"
        except Exception as exc:   # noqa: BLE001
            self._link.fail(exc, self._wake)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._link.connect_failed()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                       properties: Properties | None) -> None:
        try:
            link = self._link
            link.connected.clear()
            link.disconnects += 1
            name = _reason(rc)
            if name in _FATAL_DISCONNECT:
                hint = (" (another client uses the same client id: give each worker its own client_id=)"
                        if name == "Session taken over" else "")
                link.fail(MqttError(f"{self.settings.url}: disconnected by the broker: {name}{hint}"), self._wake)
            elif self._client is not None and link.error is None:     # after a fatal refusal: no "reconnecting"
                link.last_problem = f"disconnected: {name}"
                log.warning("mqtt: lost %s (%s); reconnecting", self.settings.url, name)
        except Exception as exc:   # noqa: BLE001
            self._link.fail(exc, self._wake)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        try:
            bad = [rc for rc in reason_codes if rc.is_failure]
            if bad:
                self._link.fail(MqttError(f"{self.settings.url}: subscribing to {self.settings.subscription!r} "
                                          f"refused: {_reason(bad[0])}"), self._wake)
            else:
                self._subscribed.set()
        except Exception as exc:   # noqa: BLE001
            self._link.fail(exc, self._wake)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._on_raw_message(msg._topic, msg.payload, msg.mid, msg.qos)

    def _on_raw_message(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        # The hot path on paho's thread: append, and wake the consumer only if it sleeps.
        try:
            name = topic.decode()
        except UnicodeDecodeError:
            name = topic.decode("utf-8", "replace")      # the decoder names it in the dead letter
        self._queue.append((name, payload, mid, qos, self._link.generation))
        if self._waiting:
            self._waiting = False
            self._link.wake(self._wake)

    # ----------------------------------------------------------------- asyncio
    def _wake(self) -> None:
        _resolve(self._future)

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self.deliveries()

    async def deliveries(self, idle_s: float | None = None) -> AsyncIterator[Delivery]:
        """Batches as they arrive; with ``idle_s``, an empty batch after that long without messages."""
        if self._client is None:
            raise MqttError(f"{self.settings.url}: the source is not started (use 'async with')")
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            self._link.check()
            if not queue:
                fut = loop.create_future()
                self._future = fut
                self._waiting = True
                if not queue and self._link.error is None:
                    try:
                        if idle_s is None:
                            await fut
                        else:
                            await asyncio.wait_for(fut, idle_s)
                    except asyncio.TimeoutError:
                        pass
                self._waiting = False
                self._future = None
                self._link.check()
                if not queue:
                    if idle_s is not None:
                        yield Delivery((), time.time(), ())
                    continue
            n = min(len(queue), self.settings.max_batch)
            pop = queue.popleft
            items = [pop() for _ in range(n)]
            self.messages_received += n
            messages = [(it[0], it[1]) for it in items]
            acks = [(it[2], it[4]) for it in items if it[3] > 0]
            yield Delivery(messages, time.time(), acks)

    async def commit(self, delivery: Delivery) -> None:
        """Acknowledge the messages of a processed batch (PUBACKs; only those of the current connection:
        after a reconnect the broker redelivers the others, and they are acknowledged then)."""
        client = self._client
        if client is None or not delivery.token:
            return
        generation = self._link.generation
        mids = [mid for mid, gen in delivery.token if gen == generation]
        client.ack_many(mids)
        self.messages_acked += len(mids)

    @property
    def reconnects(self) -> int:
        return max(0, self._link.connects - 1)


# ------------------------------------------------------------------------------- publisher

class MqttPublisher(FlushingLifecycle):
    """Publish at QoS 1 (or 0) without a round trip per message; :meth:`flush` waits for all PUBACKs.

    It speaks MQTT 3.1.1 unless ``mqtt5=True``: a publisher needs no MQTT 5 feature, and
    paho builds a ``Properties`` object for every MQTT 5 PUBACK, which halves its rate.

    ``publish`` queues in paho (up to ``max_outstanding`` unacknowledged messages;
    beyond that :meth:`publish_many` waits).  A connection lost meanwhile is
    re-established by paho and unacknowledged messages are sent again (at least once).
    """

    def __init__(self, settings: MqttSettings, *, max_outstanding: int = MAX_OUTSTANDING,
                 client_id: str | None = None, max_inflight: int = PUBLISH_INFLIGHT, mqtt5: bool = False) -> None:
        self.settings = settings
        self.mqtt5 = mqtt5
        self.max_inflight = max_inflight
        self.broker_receive_maximum: int | None = None
        self._window = max_inflight
        self.max_outstanding = max_outstanding
        self.client_id = client_id or f"ioc-pub-{socket.gethostname()}-{id(self):x}"[:64]
        self._link = _Link(settings, "publisher")
        self._client: _PahoClient | None = None
        self._lock = threading.Lock()
        self._sent = 0
        self._acked = 0
        self._failed = 0
        self._first_failure = ""
        self._future: asyncio.Future | None = None
        self._wait_for = -1                     # wake the waiter when acked reaches this

    def _started(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        s = self.settings
        self._link.loop = asyncio.get_running_loop()
        await self._link.probe()
        client = _client(s, self.client_id, manual_ack=False, mqtt5=self.mqtt5)
        # paho's own window costs a scan of every in-flight message per PUBACK (O(n) each);
        # with 0 it keeps none and this class bounds what is unacknowledged instead
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda c, u: self._link.connect_failed()
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        props = _connect_properties(s, session_expiry_s=0, receive_maximum=s.receive_maximum) if self.mqtt5 else None
        try:
            client.connect_async(s.host, s.port, keepalive=s.keepalive_s, properties=props)
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {s.url}: {exc}") from None
        client.loop_start()
        try:
            await self._link.wait_connected(s.connect_timeout_s, self._link.connected)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
        except Exception:          # noqa: BLE001
            pass
        await asyncio.to_thread(client.loop_stop)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                    properties: Properties | None) -> None:
        try:
            if rc.is_failure:
                self._link.refused(_reason(rc), self._wake)
                return
            # never more unacknowledged messages than the broker's Receive Maximum allows,
            # or it disconnects us for exceeding it
            limit = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
            self.broker_receive_maximum = int(limit) if limit else 65535
            self._window = max(1, min(self.max_inflight, self.broker_receive_maximum))
            self._link.connects += 1
            self._link.connected.set()
        except Exception as exc:   # noqa: BLE001
            self._link.fail(exc, self._wake)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                       properties: Properties | None) -> None:
        self._link.connected.clear()
        self._link.disconnects += 1
        self._link.last_problem = f"disconnected: {_reason(rc)}"

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode,
                    properties: Properties | None) -> None:
        with self._lock:
            self._acked += 1
            if rc.is_failure:
                self._failed += 1
                if not self._first_failure:
                    self._first_failure = _reason(rc)
            wake = 0 <= self._wait_for <= self._acked
        if wake:
            self._link.wake(self._wake)

    def _wake(self) -> None:
        _resolve(self._future)

    @property
    def outstanding(self) -> int:
        return self._sent - self._acked

    @property
    def acked(self) -> int:
        return self._acked

    @property
    def connected(self) -> bool:
        """Connected to the broker now (paho reconnects by itself after a loss)."""
        return self._link.connected.is_set()

    def publish(self, topic: str, payload: bytes, *, qos: int | None = None,
                retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Queue one message (never blocks; see :meth:`publish_many` for back-pressure); the returned
        paho ``MQTTMessageInfo`` tells when its PUBACK came (``wait_for_publish``)."""
        client = self._client
        if client is None:
            raise MqttError(f"{self.settings.url}: the publisher is not started (use 'async with')")
        self._link.check()
        q = self.settings.qos if qos is None else qos
        info = client.publish(topic, payload, qos=q, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise MqttError(f"{self.settings.url}: cannot publish to {topic!r}: {mqtt.error_string(info.rc)}")
        if q > 0:
            with self._lock:
                self._sent += 1
        return info

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Publish ``(topic, payload)`` pairs, waiting whenever ``max_outstanding`` are unacknowledged."""
        n = 0
        publish = self.publish
        for topic, payload in messages:
            limit = min(self.max_outstanding, self._window)
            if self._sent - self._acked >= limit:
                await self._until_acked(self._sent - limit // 2)
            publish(topic, payload)
            n += 1
        return n

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every message published so far has its PUBACK (raises :class:`MqttError` on timeout
        or when the broker refused some)."""
        try:
            await asyncio.wait_for(self._until_acked(self._sent), timeout)
        except asyncio.TimeoutError:
            raise MqttError(f"{self.settings.url}: {self.outstanding} messages still unacknowledged after "
                            f"{timeout:g} s ({self._link.last_problem})") from None
        if self._failed:
            failed, self._failed = self._failed, 0
            raise MqttError(f"{self.settings.url}: the broker refused {failed} messages: {self._first_failure}")

    async def _until_acked(self, target: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._link.check()
            with self._lock:
                if self._acked >= target:
                    self._wait_for = -1
                    return
                fut = loop.create_future()
                self._future = fut
                self._wait_for = target
            try:
                await asyncio.wait_for(fut, 1.0)      # wake up now and then to notice a fatal error
            except asyncio.TimeoutError:
                pass
            finally:
                self._future = None


def with_topic(settings: MqttSettings, topic: str) -> MqttSettings:
    """``settings`` with another topic (alert topic beside the readings filter)."""
    return replace(settings, topic=topic)
