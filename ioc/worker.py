"""``ioc worker``: score the partitions of ``ioc.readings`` this process owns in a Kafka consumer group.

Any number of workers join one group; Kafka spreads the partitions of the readings topic
over them and moves them when a worker joins, leaves or dies.  Readings are keyed by sensor
id, so a partition is a fixed set of sensors (:class:`processing.partitions.PartitionMap`)
and a worker keeps one :class:`~processing.core.AnomalyCore` per partition it owns -- the
memory of a worker is that of its share of the city.

**State hand-over.** Each partition's core is checkpointed to PostgreSQL
(:class:`ioc.core_state.CoreStateStore`) with the offset of the next record it has not seen:
every ``checkpoint_every_s`` seconds, and when the partition is revoked.  A worker that is
assigned a partition loads its checkpoint and seeks to that offset (no checkpoint: to the
earliest retained record, learning from the whole history); the records after it are
scored again by the new owner, from the same state, so they get the same scores.  The
scores after a hand-over therefore equal those of one uninterrupted worker -- whether the
partition was handed over in order (revoke) or taken from a worker that was killed.

A partition whose checkpoint cannot be loaded (PostgreSQL away) is paused, not scored cold,
and its load is tried again every 2 s.

**Per delivery** (one ``getmany``), under one lock the rebalance callbacks also take, so a
checkpoint always falls between two deliveries:

1. decode each partition's records (:func:`ingest.formats.decode_many`); bad input and
   readings whose sensor the key does not place on that partition go to the dead letters;
2. score them with the partition's core;
3. publish the scores (:mod:`ingest.formats.scores`) to ``ioc.scores`` and the alert evidence
   (:func:`processing.partitions.alert_evidence`: flagged readings, the reading that ends each
   run, each sensor's newest) to ``ioc.alert-events``, both on the same partition number, and
   wait until Kafka has them;
and after each checkpoint, commit its offsets to the group (for lag monitoring; where a
partition resumes is its checkpoint's offset, and the committed offset is never ahead of it).

Scores are published at least once: after a hand-over a range is published again, with the
same values; consumers keep one per (sensor, timestamp).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka import errors as kerr

from ingest.formats import decode_many
from ingest.formats.common import DeadLetter
from ingest.formats.scores import Scored, encode as encode_scores
from ingest.kafka import batches
from ingest.kafka.batches import ValueBatch, batch_values
from ingest.kafka.partitions import partition_of
from ingest.kafka.settings import MAX_PARTITION_FETCH_BYTES, ConnectCause, KafkaSettings, KafkaTransportError, \
    explain, next_delivery, quiet_stop
from ingest.kafka.sink import KafkaSink
from ioc.core_state import CoreStateStore
from processing.batch import ReadingBatch
from processing.checkpoint import CheckpointError, decode as decode_checkpoint, encode as encode_checkpoint
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.partitions import PartitionMap, alert_evidence
from processing.registry import Registry

__all__ = ["Worker", "WorkerConfig", "WorkerStats"]

log = logging.getLogger("ioc.worker")

#: Rows per scores record: 20,000 x 27 bytes = 540 kB, under Kafka's 1 MB default record limit.
MAX_RECORD_ROWS = 20_000


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker checkpoints and how fast the group notices it is gone."""

    name: str = ""                      # in logs, in every scores record, in the state table
    checkpoint_every_s: float = 30.0    # wall seconds between checkpoints of each partition
    session_timeout_ms: int = 6_000     # a killed worker's partitions move after this (broker minimum 6 s)
    heartbeat_ms: int = 1_000

    def __post_init__(self) -> None:
        if not self.checkpoint_every_s > 0:
            raise ValueError(f"checkpoint_every_s must be > 0, got {self.checkpoint_every_s}")
        if self.heartbeat_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_ms must be at most a third of session_timeout_ms")


@dataclass
class WorkerStats:
    readings: int = 0            # scored (replays included)
    deliveries: int = 0
    dead_letters: int = 0
    checkpoints: int = 0
    checkpoint_bytes: int = 0
    assigned: int = 0            # partitions taken on
    resumed: int = 0             # ... of which from a checkpoint
    skipped: int = 0             # records deleted by retention before this worker could score them


class _Owned:
    """A partition this worker owns: its core and where it stands."""

    __slots__ = ("partition", "core", "next_offset", "saved_offset", "registry")

    def __init__(self, partition: int, registry: Registry, core: AnomalyCore, next_offset: int) -> None:
        self.partition = partition
        self.registry = registry
        self.core = core
        self.next_offset = next_offset      # the next record of the partition to score
        self.saved_offset = next_offset     # where the stored checkpoint stands


class Worker:
    """One scoring worker (``ioc worker``); :meth:`run` until ``stop`` is set."""

    def __init__(self, registry: Registry, settings: KafkaSettings, state: CoreStateStore, *,
                 core_config: CoreConfig | None = None, config: WorkerConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.settings = settings
        self.state = state
        self.core_config = core_config or CoreConfig()
        self.config = config or WorkerConfig()
        self.name = self.config.name or default_name()
        self.clock = clock
        self.stats = WorkerStats()
        self.map: PartitionMap | None = None
        self.owned: dict[int, _Owned] = {}
        self._released: dict[int, _Owned] = {}   # handed over; reused if it comes straight back unchanged
        self._unloaded: set[int] = set()          # assigned, but the state store did not answer: paused
        self._retry_at = 0.0
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._sink: KafkaSink | None = None
        self._last_checkpoint = clock()
        self.ready = asyncio.Event()          # set once the worker is in the group

    # ------------------------------------------------------------------ running
    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        batches.install()
        async with KafkaSink(s) as sink:
            self._sink = sink
            consumer = AIOKafkaConsumer(
                bootstrap_servers=s.bootstrap, group_id=s.group, client_id=s.effective_client_id(f"worker-{self.name}"),
                enable_auto_commit=False, auto_offset_reset="earliest", value_deserializer=batch_values,
                fetch_max_wait_ms=s.fetch_max_wait_ms, max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
                session_timeout_ms=self.config.session_timeout_ms, heartbeat_interval_ms=self.config.heartbeat_ms,
                request_timeout_ms=30_000, retry_backoff_ms=200, **s.security_options())
            try:
                with ConnectCause() as cause:
                    await consumer.start()
                parts = await self._partitions(sink)
            except (kerr.KafkaError, OSError) as exc:
                await quiet_stop(consumer)
                raise KafkaTransportError(f"cannot connect to {s.url}: {s.explain_connect(exc, cause.text)}") from None
            except KafkaTransportError:
                await quiet_stop(consumer)
                raise
            self.map = PartitionMap(partition_of(self.registry.ids, parts), partitions=parts)
            self._consumer = consumer
            consumer.subscribe([s.topic], listener=_Handover(self))
            log.info("worker %s: scoring %s (%d partitions) in group %s", self.name, s.topic, parts, s.group)
            try:
                await self._loop(consumer, stop)
                async with self._lock:                 # a clean stop hands every partition over up to date
                    await self._checkpoint(list(self.owned.values()))
            finally:
                self._consumer = None
                await quiet_stop(consumer)             # leaves the group: the others take over at once
                self._sink = None

    async def _partitions(self, sink: KafkaSink) -> int:
        """The readings topic's partition count."""
        topic = self.settings.topic
        parts = await sink.partitions_for(topic)
        if not parts:
            raise KafkaTransportError(f"{self.settings.url}: topic {topic!r} does not exist (start the brokers "
                                      "with 'ioc brokers start', which creates it)")
        return parts

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if consumer.assignment():
                    self.ready.set()
                data = await next_delivery(consumer, stopping, url=self.settings.url, who=f"worker {self.name}",
                                           max_records=self.settings.max_batch)
                if data is None:
                    break
                if data:
                    async with self._lock:
                        await self._deliver(consumer, data)
                if self._unloaded and self.clock() >= self._retry_at:
                    self._retry_at = self.clock() + 2.0
                    async with self._lock:
                        await self.take(sorted(self._unloaded))
                if self.clock() - self._last_checkpoint >= self.config.checkpoint_every_s:
                    async with self._lock:
                        await self._checkpoint(list(self.owned.values()))
        finally:
            stopping.cancel()

    async def _deliver(self, consumer: AIOKafkaConsumer, data: dict[TopicPartition, list[Any]]) -> None:
        sink = self._sink
        assert sink is not None
        s = self.settings
        dead: list[DeadLetter] = []
        for tp, items in data.items():
            owned = self.owned.get(tp.partition)
            if owned is None or not items:          # revoked while the fetch was in flight
                continue
            values: list[tuple[str, bytes]] = []
            end = owned.next_offset
            for item in items:
                if type(item) is ValueBatch:
                    vs, end = item.values, item.next_offset
                else:
                    vs, end = [item.value], item.offset + 1
                values += [(tp.topic, v if v is not None else b"") for v in vs]
            first = end - len(values)
            if first > owned.next_offset:            # never skip a record the broker still has
                start = int((await consumer.beginning_offsets([tp]))[tp])
                if start <= owned.next_offset:
                    log.warning("worker %s: partition %d: fetch starts at %d, the core stands at %d; reading "
                                "again", self.name, tp.partition, first, owned.next_offset)
                    consumer.seek(tp, owned.next_offset)
                    continue
                log.warning("worker %s: partition %d: records %d..%d are gone (retention) since the checkpoint; "
                            "the core goes on without them", self.name, tp.partition, owned.next_offset, start - 1)
                self.stats.skipped += first - owned.next_offset
            if first < owned.next_offset:            # records before the position (a whole record batch)
                values = values[owned.next_offset - first:]
                first = owned.next_offset
            rec, evidence, letters = self._score(owned, values, first, end)
            dead += letters
            owned.next_offset = end
            if rec is None:
                continue
            for chunk in rec.chunks(MAX_RECORD_ROWS):      # a Kafka record stays well under 1 MB
                await sink.send(s.scores_topic, encode_scores(chunk), partition=tp.partition)
            if evidence.size:
                for chunk in rec.take(evidence).chunks(MAX_RECORD_ROWS):
                    await sink.send(s.events_topic, encode_scores(chunk), partition=tp.partition)
        if dead:
            self.stats.dead_letters += len(dead)
            await sink.send_dead(dead)
        await sink.flush()                           # scores are in Kafka before a checkpoint can cover them
        self.stats.deliveries += 1

    def _score(self, owned: _Owned, values: list[tuple[str, bytes]], first: int,
               end: int) -> tuple[Scored | None, np.ndarray, list[DeadLetter]]:
        """Decode and score one partition's records: the scores record, its rows that are alert
        evidence, and the dead letters."""
        assert self.map is not None
        none = np.empty(0, dtype=np.intp)
        if not values:
            return None, none, []
        decoded = decode_many(values, registry=self.registry, received=time.time(),
                              formats=self.settings.payload_format)
        letters = list(decoded.dead)
        batch, misplaced = self.map.split(owned.partition, decoded.batch)
        if misplaced.size:
            letters += self._misplaced(decoded.batch, misplaced, owned.partition)
        if len(batch) == 0:
            return None, none, letters
        before = owned.core.in_alert().copy()
        scores = owned.core.update(batch)
        self.stats.readings += len(batch)
        evidence = alert_evidence(batch.sensor, batch.ts, scores.alert, before)
        rows = self.map.rows(owned.partition)
        rec = Scored(owned.partition, first, end, self.name, rows[batch.sensor].astype(np.int32), batch.ts,
                     batch.value, scores.score.astype(np.float32), scores.alert, scores.reasons)
        return rec, evidence, letters

    def _misplaced(self, batch: ReadingBatch, rows: np.ndarray, partition: int) -> list[DeadLetter]:
        assert self.map is not None
        topic = f"{self.settings.topic}:{partition}"
        out = []
        for r in rows.tolist():
            sid = self.registry.sensors[int(batch.sensor[r])].id
            payload = orjson.dumps({"id": sid, "ts": float(batch.ts[r]), "v": float(batch.value[r])})
            out.append(DeadLetter(topic, f"sensor {sid!r} arrived on partition {partition}, but its key places it "
                                  f"on partition {int(self.map.of[batch.sensor[r]])}: key readings by sensor id",
                                  payload, time.time(), "misplaced"))
        return out

    # ------------------------------------------------------------------ hand-over
    async def _checkpoint(self, parts: list[_Owned]) -> None:
        """Save the cores of ``parts`` that moved since their last checkpoint (called under the lock)."""
        self._last_checkpoint = self.clock()
        todo = [p for p in parts if p.next_offset > p.saved_offset]
        if not todo:
            return
        blobs = [(p, p.next_offset, p.core.state_arrays(copy=True)) for p in todo]

        def save() -> int:
            size = 0
            for p, offset, arrays in blobs:
                data = encode_checkpoint(arrays, {"partition": p.partition, "next_offset": offset,
                                                  "worker": self.name}, p.registry, self.core_config)
                self.state.save(p.partition, offset, data, self.name)
                size += len(data)
            return size

        try:
            size = await asyncio.to_thread(save)
        except Exception as exc:                      # noqa: BLE001 - the next checkpoint tries again
            log.warning("worker %s: checkpoint failed (%s); trying again in %.0f s", self.name,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.config.checkpoint_every_s)
            return
        for p, offset, _ in blobs:
            p.saved_offset = offset
        self.stats.checkpoints += len(blobs)
        self.stats.checkpoint_bytes += size
        # the group's offsets follow the checkpoints (never ahead of them): lag monitoring reads them
        consumer = self._consumer
        if consumer is not None:
            offsets = {TopicPartition(self.settings.topic, p.partition): offset for p, offset, _ in blobs
                       if p.partition in self.owned}
            try:
                if offsets:
                    await asyncio.wait_for(consumer.commit(offsets), 10)
            except (kerr.KafkaError, asyncio.TimeoutError) as exc:   # a rebalance: the checkpoint is what counts
                log.info("worker %s: offset commit skipped (%s)", self.name, explain(exc))

    async def take(self, partitions: list[int]) -> None:
        """Partitions assigned to us: load each one's checkpoint and seek where it stands."""
        assert self.map is not None and self._consumer is not None
        consumer = self._consumer
        for p in partitions:
            if p in self.owned:
                continue
            registry = self.map.registry_of(self.registry, p)
            core = AnomalyCore(registry, self.core_config)
            tp = TopicPartition(self.settings.topic, p)
            try:
                ckpt = await asyncio.to_thread(self.state.load, p)
            except Exception as exc:                  # noqa: BLE001 - PostgreSQL away: wait, never score cold
                if p not in self._unloaded:
                    log.warning("worker %s: partition %d: cannot load its checkpoint (%s); paused until the "
                                "state store answers", self.name, p, str(exc).splitlines()[0] if str(exc) else
                                type(exc).__name__)
                self._unloaded.add(p)
                consumer.pause(tp)
                continue
            if p in self._unloaded:
                self._unloaded.discard(p)
                consumer.resume(tp)
                log.info("worker %s: partition %d: state store answers again", self.name, p)
            kept = self._released.pop(p, None)
            if (kept is not None and ckpt is not None and ckpt.worker == self.name
                    and ckpt.next_offset == kept.saved_offset == kept.next_offset):
                consumer.seek(tp, kept.next_offset)     # an eager rebalance gave it straight back: no reload
                self.owned[p] = kept
                self.stats.assigned += 1
                continue
            offset = 0
            if ckpt is not None:
                try:
                    decoded = decode_checkpoint(ckpt.data, registry, self.core_config)
                    core.restore_state(decoded.arrays)
                    offset = ckpt.next_offset
                    self.stats.resumed += 1
                except CheckpointError as exc:
                    log.warning("worker %s: partition %d: checkpoint of %s refused (%s); replaying the "
                                "partition from its start", self.name, p, ckpt.worker, exc)
                    core = AnomalyCore(registry, self.core_config)
            if offset > 0:
                consumer.seek(tp, offset)
            else:
                await consumer.seek_to_beginning(tp)
                offset = int(await consumer.position(tp))
            self.owned[p] = _Owned(p, registry, core, offset)
            self.stats.assigned += 1
            log.info("worker %s: took partition %d at offset %d (%s)", self.name, p, offset,
                     f"checkpoint of {ckpt.worker}" if ckpt is not None and offset == ckpt.next_offset
                     else "from its start")

    async def give_up(self, partitions: list[int]) -> None:
        """Partitions revoked from us: checkpoint them for their next owner, then drop them."""
        self._unloaded.difference_update(partitions)
        parts = [self.owned[p] for p in partitions if p in self.owned]
        await self._checkpoint(parts)
        for p in parts:
            del self.owned[p.partition]
            self._released[p.partition] = p
        if parts:
            log.info("worker %s: handed over partitions %s", self.name, [p.partition for p in parts])


class _Handover(ConsumerRebalanceListener):
    """The group's rebalance callbacks, run between two deliveries (the worker's lock)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        topic = self.worker.settings.topic
        async with self.worker._lock:
            await self.worker.give_up(sorted(tp.partition for tp in revoked if tp.topic == topic))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        topic = self.worker.settings.topic
        async with self.worker._lock:
            await self.worker.take(sorted(tp.partition for tp in assigned if tp.topic == topic))
