"""The MQTT publisher for simulators and alert topics: :class:`MqttPublisher` publishes at QoS 1
without waiting per message: paho keeps up to the broker's Receive Maximum in flight, and
:meth:`MqttPublisher.flush` waits once for every outstanding PUBACK.  Its paho client is made by
:func:`ingest.mqtt.fastpath.client` when the publisher starts.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.lifecycle import FlushingLifecycle
from ingest.mqtt import fastpath
from ingest.mqtt.fastpath import FastClient
from ingest.mqtt.link import Link, connect_properties, reason_name, resolve
from ingest.mqtt.settings import MAX_OUTSTANDING, PUBLISH_INFLIGHT, MqttError, MqttSettings

__all__ = ["MqttPublisher"]


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
        self._link = Link(settings, "publisher")
        self._client: FastClient | None = None
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
        client = fastpath.client(s, self.client_id, manual_ack=False, mqtt5=self.mqtt5)
        # paho's own window costs a scan of every in-flight message per PUBACK (O(n) each);
        # with 0 it keeps none and this class bounds what is unacknowledged instead
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda c, u: self._link.connect_failed()
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        props = connect_properties(session_expiry_s=0, receive_maximum=s.receive_maximum) if self.mqtt5 else None
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
            if self._link.refused(rc, self._wake):
                return
            # never more unacknowledged messages than the broker's Receive Maximum allows,
            # or it disconnects us for exceeding it
            limit = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
            self.broker_receive_maximum = int(limit) if limit else 65535
            self._window = max(1, min(self.max_inflight, self.broker_receive_maximum))
            self._link.up()
        except Exception as exc:   # noqa: BLE001
            self._link.fail(exc, self._wake)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                       properties: Properties | None) -> None:
        self._link.connected.clear()
        self._link.disconnects += 1
        self._link.last_problem = f"disconnected: {reason_name(rc)}"

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode,
                    properties: Properties | None) -> None:
        with self._lock:
            self._acked += 1
            if rc.is_failure:
                self._failed += 1
                if not self._first_failure:
                    self._first_failure = reason_name(rc)
            wake = 0 <= self._wait_for <= self._acked
        if wake:
            self._link.wake(self._wake)

    def _wake(self) -> None:
        resolve(self._future)

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
