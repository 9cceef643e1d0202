"""``ioc alerting``: the one active alerting owner of a cluster, and its standbys.

The scoring workers (:mod:`ioc.worker`) publish alert evidence to ``ioc.alert-events``; one
process turns it into alerts -- lifecycle, routing by roster, escalation, incidents -- and
delivers the notifications (webhooks, e-mail, the teams' topics on the cluster's Kafka,
``ioc.alerts``, and with ``mqtt_url`` their MQTT topics ``ioc/alerts/<team>`` on the edge
broker), with the alert store on PostgreSQL::

    ioc.alert-events (every partition) ──▶ EvidenceLedger (one copy per sensor+time)
        ──▶ AlertService.step (engine + PostgreSQL store, with the stream horizon) ──▶ Dispatcher thread

**One active owner.** Each ``ioc alerting`` process opens the store and tries PostgreSQL's
session advisory lock (:meth:`~ioc.alerting.store.AlertStore.try_lead`) every ``lead_poll_s``;
the one that holds it leads, the others wait as standbys.  The lock belongs to the store's own
connection, the one every write of the leader goes through: when the leader dies, PostgreSQL
drops its session and the lock with it, and a standby takes over within one poll.

**Taking over where the last owner stopped.** Each outcome is written with the *horizon*: the
next offset of every partition of ``ioc.alert-events`` and the evidence ledger
(:class:`~processing.alerting.evidence.EvidenceLedger`), in the same transaction as the alerts
and the queued notifications.  A new leader restores the engine from the store, the ledger from
the horizon, and reads on from the horizon's offsets: evidence that made no outcome is read again
(it changes nothing), evidence that did is not, and a range a worker published twice after its
own hand-over is dropped by (sensor, time).  Notifications are queued once by their idempotency
key (``<alert>:<event>:<channel>:<recipient>``); a delivery the old leader claimed but did not
mark sent is sent again by the new one with the same key, which the receiver uses to drop the
copy -- so each alert reaches each channel once.

**Time** is the evidence's: the owner's ``now`` is the newest reading time of any partition,
and silence is judged per partition (a stopped partition pages nobody).  Evidence older than
``quiet_older_than_s`` of the wall clock -- a first start on a topic with days of history -- is
recorded but pages nobody, as the embedded pipeline's pre-roll.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kerr

from ingest.formats.common import DeadLetter
from ingest.formats.scores import Scored, ScoresFormatError, decode as decode_scores
from ingest.kafka.partitions import partition_of
from ingest.kafka.settings import ConnectCause, KafkaSettings, KafkaTransportError, next_delivery, quiet_stop
from ingest.kafka.sink import KafkaSink
from ioc.alerting.channels import Channel, KafkaTopicPublisher, MqttTopicPublisher, TopicChannel
from ioc.alerting.store import AlertStore
from processing.alerting.evidence import EvidenceLedger, LedgerError
from processing.batch import ReadingBatch
from processing.core import Scores
from processing.registry import Registry

__all__ = ["AlertOwner", "OwnerStats", "lead_key"]

log = logging.getLogger("ioc.alerting")

#: event seconds a partition may lag the others before the owner says so (its sensors page nobody meanwhile)
STALL_S = 900.0

#: seconds between tries of an MQTT broker for the alert topics that could not be reached
MQTT_RETRY_S = 10.0


def lead_key(events_topic: str) -> int:
    """The advisory lock of the owner of ``events_topic`` (a signed 64-bit number; one per cluster)."""
    return int.from_bytes(hashlib.sha256(f"ioc.alerting:{events_topic}".encode()).digest()[:8], "big", signed=True)


@dataclass
class OwnerStats:
    records: int = 0            # evidence records read
    rows: int = 0               # evidence rows taken
    copies: int = 0             # rows dropped as copies (sensor + time already taken)
    steps: int = 0
    dead_letters: int = 0


class AlertOwner:
    """Stand by until leading, then alert on ``ioc.alert-events`` until ``stop``."""

    def __init__(self, registry: Registry, settings: KafkaSettings, store_url: str, *, name: str = "",
                 config_path: str | Path | None = None, channels: Mapping[str, Channel] | None = None,
                 environ: Mapping[str, str] | None = None, quiet_older_than_s: float | None = 3600.0,
                 lead_poll_s: float = 0.5, mqtt_url: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.mqtt_url = mqtt_url             # the teams' MQTT alert topics (ioc/alerts/<team>) on this broker
        self.settings = settings
        self.store_url = store_url
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.config_path = config_path
        self.channels = channels
        self.environ = environ
        self.quiet_older_than_s = quiet_older_than_s
        self.lead_poll_s = lead_poll_s
        self.clock = clock
        self.stats = OwnerStats()
        self.leading = asyncio.Event()       # set once this process leads and reads the evidence
        self.service: Any = None
        self.ledger: EvidenceLedger | None = None
        self._offsets: dict[int, int] = {}
        self._key = f"kafka:{settings.events_topic}"
        self._stalled: set[int] = set()

    # ------------------------------------------------------------------ running
    async def run(self, stop: asyncio.Event) -> None:
        store = await asyncio.to_thread(AlertStore, self.store_url)
        try:
            if not await self._wait_to_lead(store, stop):
                return
            await self._lead(store, stop)
        finally:
            await asyncio.to_thread(store.close)     # the session ends: a standby may lead

    async def _wait_to_lead(self, store: AlertStore, stop: asyncio.Event) -> bool:
        key = lead_key(self.settings.events_topic)
        said = False
        while not stop.is_set():
            if await asyncio.to_thread(store.try_lead, key):
                return True
            if not said:
                log.info("alerting %s: standing by (another owner leads %s)", self.name, self.settings.events_topic)
                said = True
            try:
                await asyncio.wait_for(stop.wait(), self.lead_poll_s)
            except asyncio.TimeoutError:
                pass
        return False

    async def _lead(self, store: AlertStore, stop: asyncio.Event) -> None:
        async with contextlib.AsyncExitStack() as stack:
            sink = await stack.enter_async_context(KafkaSink(self.settings))
            mqtt = await self._mqtt_publisher(stack)
            await self._lead_with(store, stop, sink, mqtt)

    async def _mqtt_publisher(self, stack: contextlib.AsyncExitStack) -> Any:
        """The MQTT publisher of the teams' alert topics while leading (None without ``mqtt_url``).

        The edge broker is not the owner's to wait for: while it cannot be reached the owner alerts
        on, its MQTT deliveries wait (retried, as for a receiver that is down) and it tries the
        broker again every ``MQTT_RETRY_S``; paho reconnects by itself after a loss."""
        if not self.mqtt_url:
            return None
        from ingest.mqtt import MqttError, MqttPublisher, MqttSettings

        # unique per process and host: two owners with one id would take the broker session from each other
        client_id = f"ioc-alerting-{uuid.uuid4().hex[:8]}-{os.getpid()}-{socket.gethostname()}"[:64]
        publisher = MqttPublisher(dataclasses.replace(MqttSettings.from_url(self.mqtt_url), client_id=client_id))

        async def connect() -> None:
            while True:
                try:
                    await publisher.start()
                    log.info("alerting %s: sending the MQTT alert topics to %s", self.name, publisher.settings.url)
                    return
                except MqttError as exc:
                    log.warning("alerting %s: MQTT alert topics: %s; trying again in %.0f s", self.name, exc,
                                MQTT_RETRY_S)
                    await asyncio.sleep(MQTT_RETRY_S)

        connecting = asyncio.ensure_future(connect())

        async def close() -> None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await publisher.close()
        stack.push_async_callback(close)
        return publisher

    async def _lead_with(self, store: AlertStore, stop: asyncio.Event, sink: KafkaSink, mqtt: Any) -> None:
        from ioc.alerting.wiring import build_alerting

        s = self.settings
        parts = await sink.partitions_for(s.topic)
        events = await sink.partitions_for(s.events_topic)
        if not parts or events != parts:
            raise KafkaTransportError(
                f"{s.url}: topic {s.events_topic!r} has {events} partitions and {s.topic!r} {parts}: they must "
                "be equal and exist (ioc brokers start creates them)")
        service, dispatcher = await asyncio.to_thread(build_alerting, self.registry, None,
                                                      config_path=self.config_path, channels=self.channels,
                                                      environ=self.environ, store=store)
        if self.channels is None or "kafka" not in self.channels:
            # the teams' Kafka topics (ioc.alerts) on the cluster's broker, as the embedded pipeline does
            dispatcher.channels["kafka"] = TopicChannel(KafkaTopicPublisher(
                sink, asyncio.get_running_loop(), timeout_s=dispatcher.settings.timeout_s))
        if mqtt is not None and (self.channels is None or "mqtt" not in self.channels):
            # ... and their MQTT topics (ioc/alerts/<team>), for field devices on the edge broker
            dispatcher.channels["mqtt"] = TopicChannel(MqttTopicPublisher(
                mqtt, timeout_s=dispatcher.settings.timeout_s))
        self.service = service
        of = partition_of(self.registry.ids, parts)
        horizon = store.horizon() or {}
        self.ledger = EvidenceLedger(of, partitions=parts)
        self._offsets = {}
        if horizon.get("source") == self._key:
            try:
                self.ledger = EvidenceLedger.from_state(of, parts, horizon.get("ledger") or {})
                self._offsets = {int(p): int(o) for p, o in (horizon.get("offsets") or {}).items()}
            except (LedgerError, ValueError) as exc:
                log.warning("alerting %s: the store's horizon is not usable (%s); reading %s from its start",
                            self.name, exc, s.events_topic)
                self.ledger, self._offsets = EvidenceLedger(of, partitions=parts), {}
        consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=s.fetch_max_wait_ms,
                                    client_id=s.effective_client_id(f"alerting-{self.name}"),
                                    **s.security_options())
        try:
            with ConnectCause() as cause:
                await consumer.start()
        except (kerr.KafkaError, OSError) as exc:
            await quiet_stop(consumer)
            raise KafkaTransportError(f"cannot connect to {s.url}: {s.explain_connect(exc, cause.text)}") from None
        halt = threading.Event()
        thread = threading.Thread(target=dispatcher.run_forever, args=(halt,), name="ioc-alert-delivery",
                                  daemon=True)
        try:
            tps = [TopicPartition(s.events_topic, p) for p in range(parts)]
            consumer.assign(tps)
            for tp in tps:
                if tp.partition in self._offsets:
                    consumer.seek(tp, self._offsets[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            thread.start()
            log.info("alerting %s: leading; reading %s from %s (%d open alerts restored)", self.name,
                     s.events_topic, "the horizon" if self._offsets else "its start", len(service.open_alerts()))
            self.leading.set()
            await self._loop(consumer, sink, stop)
        finally:
            halt.set()
            dispatcher.wake()
            if thread.is_alive():
                await asyncio.to_thread(thread.join, 15)
            await quiet_stop(consumer)

    async def _loop(self, consumer: AIOKafkaConsumer, sink: KafkaSink, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                data = await next_delivery(consumer, stopping, url=self.settings.url, who=f"alerting {self.name}",
                                           timeout_ms=500, max_records=self.settings.max_batch)
                if data is None:
                    break
                rows, dead = self._take(data)
                behind = any((consumer.highwater(tp) or 0) > self._offsets.get(tp.partition, 0)
                             for tp in consumer.assignment())
                await asyncio.to_thread(self._step, rows, behind)
                if dead:
                    self.stats.dead_letters += len(dead)
                    await sink.send_dead(dead)
        finally:
            stopping.cancel()

    # ------------------------------------------------------------------ one delivery
    def _take(self, data: Mapping[TopicPartition, list[Any]]) -> tuple[list[Scored], list[DeadLetter]]:
        """Decode the evidence records and keep their new rows (the ledger drops copies)."""
        assert self.ledger is not None
        n = len(self.registry)
        kept: list[Scored] = []
        dead: list[DeadLetter] = []
        for tp, msgs in data.items():
            for m in msgs:
                self._offsets[tp.partition] = m.offset + 1
                self.stats.records += 1
                where = f"{tp.topic}:{tp.partition}@{m.offset}"
                try:
                    rec = decode_scores(m.value or b"", sensors=n)
                except ScoresFormatError as exc:
                    log.warning("alerting %s: %s: %s", self.name, where, exc)
                    dead.append(DeadLetter(where, str(exc), bytes(m.value or b""), time.time(), "bad-evidence"))
                    continue
                new = self.ledger.admit(rec.sensor, rec.ts)
                self.stats.copies += int(new.size - new.sum())
                if new.any():
                    kept.append(rec if new.all() else rec.take(np.flatnonzero(new)))
        return kept, dead

    def _step(self, recs: list[Scored], behind: bool) -> None:
        """One engine step over the new evidence (or a tick with none), recorded with the horizon."""
        assert self.ledger is not None
        now = self.ledger.now
        if not np.isfinite(now):                       # nothing read yet: no clock to alert on
            return
        batch = scores = None
        if recs:
            cat = np.concatenate
            batch = ReadingBatch(cat([r.sensor for r in recs]).astype(np.int32), cat([r.ts for r in recs]),
                                 cat([r.value for r in recs]))
            scores = Scores(cat([r.score for r in recs]).astype(np.float64), cat([r.alert for r in recs]),
                            cat([r.reasons for r in recs]))
            self.stats.rows += len(batch)
        notify = self.quiet_older_than_s is None or now >= self.clock() - self.quiet_older_than_s
        horizon = {"source": self._key, "offsets": {str(p): o for p, o in sorted(self._offsets.items())},
                   "ledger": self.ledger.state(), "owner": self.name}
        self.service.step(batch, scores, None if behind else self.ledger.last_seen(), now, notify=notify,
                          horizon=horizon)
        self.stats.steps += 1
        if not behind:
            stalled = set(self.ledger.stalled(STALL_S))
            if stalled != self._stalled:         # a whole partition quiet: its worker, not its sensors
                if stalled:
                    log.warning("alerting %s: no evidence from partition(s) %s for over %.0f min of the others' "
                                "time: is their worker scoring?", self.name, ", ".join(map(str, sorted(stalled))),
                                STALL_S / 60)
                else:
                    log.info("alerting %s: every partition brings evidence again", self.name)
                self._stalled = stalled
