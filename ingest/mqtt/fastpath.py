"""The MQTT read fast path: paho's client with a faster read path and bulk acknowledgements.

What it replaces, and why: at tens of thousands of small messages a second paho's own read
path is most of a subscriber's time -- one ``select()`` per packet, 3-4 ``recv`` calls of a
few bytes each, and for MQTT 5 a ``Properties`` object (two dicts of 27 names) built and
cleared for every PUBLISH even when it carries no property.  :class:`FastClient` overrides
paho's ``loop_read``, ``_packet_read``, ``_sock_recv`` and ``_handle_publish`` (and adds
``ack_many``), so

* ``loop_read`` reads every packet already there, through a 256 KiB receive buffer
  (it returns only when the buffer is empty and the socket has nothing more, so
  ``select()`` stays right);
* a QoS 0/1 PUBLISH without properties goes straight to ``on_raw_message(topic,
  payload, mid, qos)`` when that is set -- parsed from the buffer when it is all
  there, else after paho read it (anything else takes paho's own path);
* :meth:`FastClient.ack_many` sends the PUBACKs of a whole batch as one write.

It rests on paho 2.x internals that have been stable across its 2.x releases
(``_packet_read``, ``_sock_recv``, ``_in_packet``, ``_packet_queue``); paho is pinned ``<3``.

Nothing is patched: importing this module changes no paho class.  The fast path is taken
only by a client made with :func:`client`, which :class:`~ingest.mqtt.source.MqttSource` and
:class:`~ingest.mqtt.publisher.MqttPublisher` call when they start.
"""
from __future__ import annotations

import struct
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from ingest.mqtt.settings import RECONNECT_MAX_S, RECONNECT_MIN_S, MqttSettings, tls_context

__all__ = ["FastClient", "client"]

_PUBACK = 0x40
_RECV_CHUNK = 256 * 1024


class FastClient(mqtt.Client):
    """paho's client with the read path and bulk acknowledgements of the module docstring.

    >>> c = FastClient(CallbackAPIVersion.VERSION2, "t", protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
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


def client(settings: MqttSettings, client_id: str, *, manual_ack: bool, mqtt5: bool = True) -> FastClient:
    """A paho client on the fast path (:class:`FastClient`) with every option of ``settings`` applied:
    the one place paho is configured, called by the source and the publisher when they start."""
    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    paho = FastClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                      reconnect_on_failure=True, manual_ack=manual_ack)
    paho.suppress_exceptions = True            # our callbacks catch everything themselves; belt and braces
    paho.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]  # floats work
    if settings.username:
        paho.username_pw_set(settings.username, settings.password)
    if settings.tls:
        paho.tls_set_context(tls_context(settings))
    return paho
