"""The Kafka consumer of the pipeline: :class:`KafkaSource` reads ``ioc.readings`` (key = sensor id, value = any payload
:mod:`ingest.formats` decodes) as a member of a consumer group::

    async with KafkaSource(KafkaSettings.from_url("kafka://127.0.0.1:9092?group=ioc")) as src:
        async for delivery in src:                 # getmany() batches
            ...                                    # decode, score
            await src.commit(delivery)             # offsets committed only now

* ``enable_auto_commit=False``: the offsets of a batch are committed after it was
  processed (at-least-once).  A commit that fails (broker restarting, group
  rebalancing) is retried with the next one -- offsets are cumulative -- and what
  was not committed is redelivered to whoever owns the partition next;
  :mod:`ingest.sources` drops the duplicates.
* A new group starts at the earliest offset, so nothing published before the
  first start is missed.
* ``start_offsets`` (partition -> offset, e.g. from a core checkpoint, see
  :mod:`ioc.checkpoints`) overrides the group's committed offsets: each such
  partition is sought there the first time this consumer is assigned it, so the
  restored state and the records that follow agree exactly.  :meth:`KafkaSource.positions`
  gives the consumed position of every assigned partition (between two deliveries:
  what was handed out so far).  ``replay_until`` (partition -> offset): records
  before it were already processed, alerts included, by the run that took the
  checkpoint; they come in deliveries of their own marked ``replay`` (learned
  again, not alerted on again).  Record offsets within a record batch are taken
  as consecutive, true of the readings topic (not compacted, not transactional).
* Records of one partition keep their order; producers key readings by sensor id
  (Kafka's murmur2 partitioner, the same as Java's and aiokafka's default), so a
  sensor's readings stay ordered.  ``kcat -P`` must be told
  ``-X partitioner=murmur2_random`` to place keys the same way.

Its consumer asks for whole record batches (:mod:`ingest.kafka.batches`, installed by
:meth:`KafkaSource.start`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka import errors as kerr

from ingest.kafka import batches
from ingest.kafka.batches import ValueBatch, batch_values
from ingest.kafka.settings import (JOIN_TIMEOUT_S, MAX_PARTITION_FETCH_BYTES, ConnectCause, KafkaSettings,
                                   KafkaTransportError, explain, quiet_stop)
from ingest.lifecycle import Lifecycle
from ingest.sources import Delivery

__all__ = ["KafkaSource"]

log = logging.getLogger("ingest.kafka")        # the transport's one logger, whichever module logs


class KafkaSource(Lifecycle):
    """Consume ``settings.topic`` in consumer group ``settings.group``; commit on :meth:`commit`."""

    def __init__(self, settings: KafkaSettings, *, start_offsets: Mapping[int, int] | None = None,
                 replay_until: Mapping[int, int] | None = None) -> None:
        """``start_offsets``: partition of ``settings.topic`` -> offset to start from; ``replay_until``:
        partition -> offset before which records are a replay (see the module docstring)."""
        self.settings = settings
        self.name = settings.url
        self.formats: str | None = settings.payload_format
        self._consumer: AIOKafkaConsumer | None = None
        self._seek_to: dict[int, int] = {int(p): int(o) for p, o in (start_offsets or {}).items()}
        self.sought: dict[int, int] = {}                 # partitions sought to their start offset, and where
        self._replay_until: dict[int, int] = {int(p): int(o) for p, o in (replay_until or {}).items()}
        self.replayed = 0                                 # records handed out as a replay
        # partition -> the offset of the next record to hand out; with each fetch's high watermark it
        # tells whether the broker holds more: a backlog read partition by partition is not silence
        self._next: dict[TopicPartition, int] = {}
        self._pending: dict[TopicPartition, int] = {}    # offsets processed but not yet committed
        self.commit_failures = 0
        self.records_received = 0

    async def start(self) -> None:
        s = self.settings
        batches.install()                  # aiokafka hands over record batches (ingest.kafka.batches)
        consumer = AIOKafkaConsumer(       # subscribed below, once the topic is known to exist
            bootstrap_servers=s.bootstrap, group_id=s.group, client_id=s.effective_client_id("ingest"),
            enable_auto_commit=False, auto_offset_reset=s.offset_reset, fetch_max_wait_ms=s.fetch_max_wait_ms,
            value_deserializer=batch_values,     # values per record batch, see ingest.kafka.batches
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES, request_timeout_ms=30_000,
            session_timeout_ms=10_000, heartbeat_interval_ms=2_000, retry_backoff_ms=200, **s.security_options())
        missing = KafkaTransportError(f"{s.url}: topic {s.topic!r} does not exist (start the brokers with "
                             f"'ioc brokers start', which creates it)")
        try:
            with ConnectCause() as cause:
                await consumer.start()
            topics = await consumer.topics()
        except kerr.UnknownTopicOrPartitionError:
            await quiet_stop(consumer)
            raise missing from None
        except (kerr.KafkaError, OSError) as exc:
            await quiet_stop(consumer)
            raise KafkaTransportError(f"cannot connect to {s.url}: {s.explain_connect(exc, cause.text)}") from None
        if s.topic not in topics:
            await quiet_stop(consumer)
            raise missing
        consumer.subscribe([s.topic], listener=_SeekOnAssign(self, consumer))
        self._consumer = consumer
        # join the group now, so that "latest" means "from when start() returned"
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        log.info("kafka: consuming %s as group %s", s.topic, s.group)

    async def close(self) -> None:
        """Commit what is pending if possible, then leave the group."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        if self._pending:
            try:
                await asyncio.wait_for(self._commit_pending(consumer), 10)
            except Exception:      # noqa: BLE001 - redelivered later, which is allowed
                pass
        await quiet_stop(consumer)

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self.deliveries()

    async def deliveries(self, idle_s: float | None = None) -> AsyncIterator[Delivery]:
        """``getmany`` batches as they come; with ``idle_s``, an empty batch after that long without records."""
        consumer = self._consumer
        if consumer is None:
            raise KafkaTransportError(f"{self.settings.url}: the source is not started (use 'async with')")
        max_batch = self.settings.max_batch
        per_item = float(max_batch)   # records per getmany item, averaged: a record batch holds up to 10k or so
        quiet_since = time.monotonic()
        while True:
            try:
                data = await consumer.getmany(timeout_ms=200, max_records=max(1, int(max_batch / per_item)))
            except (kerr.ConsumerStoppedError, asyncio.CancelledError):
                raise
            except kerr.KafkaError as exc:
                if getattr(exc, "retriable", False):
                    log.warning("kafka: %s: %s; retrying", self.settings.url, explain(exc))
                    await asyncio.sleep(0.5)
                    continue
                raise KafkaTransportError(f"{self.settings.url}: {explain(exc)}") from None
            if not data:                                # nothing handed out for 200 ms
                if idle_s is not None and time.monotonic() - quiet_since >= idle_s:
                    quiet_since = time.monotonic()
                    # caught up, or only waiting for a slow first fetch (a restart on a loaded machine):
                    # an idle tick says which, so a backlog still to come is not taken for silence
                    yield Delivery((), time.time(), {}, behind=await self._behind(consumer))
                continue
            messages: list[tuple[str, bytes]] = []
            token: dict[TopicPartition, int] = {}
            replay: list[tuple[str, bytes]] = []
            replay_token: dict[TopicPartition, int] = {}
            for tp, items in data.items():
                topic = tp.topic
                until = self._replay_until.get(tp.partition) if topic == self.settings.topic else None
                end = None
                for item in items:
                    if type(item) is ValueBatch:        # the fast path: one item per record batch
                        values, end = item.values, item.next_offset
                    else:                               # a ConsumerRecord (aiokafka without the fast path)
                        values, end = [item.value], item.offset + 1
                    if until is not None:               # after a warm start: already alerted on?
                        k = max(0, min(len(values), until - (end - len(values))))
                        if k:
                            replay += [(topic, v if v is not None else b"") for v in values[:k]]
                            replay_token[tp] = end - len(values) + k
                            values = values[k:]
                        if end >= until:
                            del self._replay_until[tp.partition]
                            until = None
                    if values:
                        messages += [(topic, v if v is not None else b"") for v in values]
                        token[tp] = end
                if end is not None:
                    self._next[tp] = end
            behind = await self._behind(consumer)
            self.records_received += len(messages) + len(replay)
            n_items = sum(map(len, data.values()))
            per_item = 0.5 * per_item + 0.5 * (len(messages) + len(replay)) / n_items
            quiet_since = time.monotonic()
            if replay:
                self.replayed += len(replay)
                yield Delivery(replay, time.time(), replay_token, replay=True, behind=behind)
            if messages or not replay:
                yield Delivery(messages, time.time(), token, behind=behind)

    async def _behind(self, consumer: AIOKafkaConsumer) -> bool:
        """True while any assigned partition may hold more than was handed out: its high watermark lies
        beyond the next offset, or no fetch has answered for it yet.  One fetch can return records of some
        partitions only, so the ones not heard from are a backlog still to come, not silent sensors."""
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                return True
            nxt = self._next.get(tp)
            if nxt is None:
                nxt = self._next[tp] = int(await consumer.position(tp))
            if int(high) > nxt:
                return True
        return False

    async def commit(self, delivery: Delivery) -> None:
        """Commit the offsets of a processed batch (with any earlier ones that failed to commit)."""
        consumer = self._consumer
        if consumer is None or not delivery.token:
            return
        for tp, offset in delivery.token.items():
            if offset > self._pending.get(tp, -1):
                self._pending[tp] = offset
        await self._commit_pending(consumer)

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        lost = [tp for tp in self._pending if tp not in assigned]
        for tp in lost:                      # another member owns it now and will re-read from its commit
            del self._pending[tp]
        if not self._pending:
            return
        offsets = dict(self._pending)
        try:
            await consumer.commit(offsets)
        except (kerr.CommitFailedError, kerr.IllegalStateError) as exc:
            # the group rebalanced: these records will be redelivered (and de-duplicated)
            self.commit_failures += 1
            self._pending.clear()
            log.warning("kafka: commit after a rebalance failed (%s); the batch will be redelivered",
                        explain(exc))
            return
        except kerr.KafkaError as exc:
            self.commit_failures += 1
            log.warning("kafka: commit failed (%s); retrying with the next batch", explain(exc))
            return
        for tp, offset in offsets.items():
            if self._pending.get(tp) == offset:
                del self._pending[tp]

    def _seek_assigned(self, consumer: AIOKafkaConsumer, assigned: Iterable[TopicPartition]) -> None:
        for tp in assigned:
            if tp.topic == self.settings.topic and tp.partition in self._seek_to:
                offset = self._seek_to.pop(tp.partition)
                consumer.seek(tp, offset)
                self.sought[tp.partition] = offset
                self._next.pop(tp, None)
                self._pending.pop(tp, None)
        if self.sought and not self._seek_to:
            log.info("kafka: %s resumed at the given offsets %s", self.settings.topic, self.sought)

    async def positions(self) -> dict[str, int]:
        """``"topic:partition"`` -> the offset of the next record to hand out, for every assigned partition."""
        consumer = self._consumer
        if consumer is None:
            return {}
        return {f"{tp.topic}:{tp.partition}": int(await consumer.position(tp))
                for tp in sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))}

    async def committed(self) -> dict[int, int | None]:
        """Committed offset of every partition of the topic (for tests and status)."""
        consumer = self._consumer
        if consumer is None:
            return {}
        parts = consumer.partitions_for_topic(self.settings.topic) or set()
        return {p: await consumer.committed(TopicPartition(self.settings.topic, p)) for p in sorted(parts)}


class _SeekOnAssign(ConsumerRebalanceListener):
    """Seeks newly assigned partitions to the source's start offsets (once each)."""

    def __init__(self, source: KafkaSource, consumer: AIOKafkaConsumer) -> None:
        self.source = source
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:                   # its position is another member's now
            self.source._next.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.source._seek_assigned(self.consumer, assigned)
