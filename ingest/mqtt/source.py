"""The MQTT subscriber of the pipeline: :class:`MqttSource`, at-least-once ingest::

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

Its paho client is made by :func:`ingest.mqtt.fastpath.client` (the read fast path) when the
source starts.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any, AsyncIterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.lifecycle import Lifecycle
from ingest.mqtt import fastpath
from ingest.mqtt.fastpath import FastClient
from ingest.mqtt.link import FATAL_DISCONNECT, Link, connect_properties, reason_name, resolve
from ingest.mqtt.settings import MqttError, MqttSettings
from ingest.sources import Delivery

__all__ = ["MqttSource"]

log = logging.getLogger("ingest.mqtt")         # the transport's one logger, whichever module logs


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
        self._link = Link(settings, "subscriber")
        self._queue: deque[tuple[str, bytes, int, int, int]] = deque()
        self._waiting = False
        self._future: asyncio.Future | None = None
        self._subscribed = threading.Event()
        self._client: FastClient | None = None
        self.messages_received = 0
        self.messages_acked = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        s = self.settings
        self._link.loop = asyncio.get_running_loop()
        await self._link.probe()
        client = fastpath.client(s, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_raw_message = self._on_raw_message
        self._client = client
        props = connect_properties(session_expiry_s=s.session_expiry_s, receive_maximum=s.receive_maximum)
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
            link = self._link
            if link.refused(rc, self._wake):
                return
            link.generation += 1
            if link.up() > 1:
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
            name = reason_name(rc)
            if name in FATAL_DISCONNECT:
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
                                          f"refused: {reason_name(bad[0])}"), self._wake)
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
        resolve(self._future)

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

