"""Kafka transport (aiokafka): a consumer-group source for the pipeline and a producer sink.

:class:`KafkaSource` reads ``ioc.readings`` (key = sensor id, value = any payload
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

:class:`KafkaSink` produces readings (keyed by sensor), alerts to ``ioc.alerts``
and dead letters to ``ioc.deadletter`` (value = the original bytes, the reason,
code, source and time of reception in headers).  It is idempotent
(``enable_idempotence``), so its own retries never duplicate a record.

Exceptions::

    KafkaTransportError                one line naming the address or topic
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka import errors as kerr

from ingest.kafka_batches import ValueBatch, batch_values
from ingest.lifecycle import FlushingLifecycle, Lifecycle
from ingest.sources import Delivery
from processing.errors import TransportError

__all__ = ["DEADLETTER_TOPIC", "KafkaTransportError", "KafkaSettings", "KafkaSink", "KafkaSource", "READINGS_TOPIC",
           "ALERTS_TOPIC"]

log = logging.getLogger(__name__)

READINGS_TOPIC = "ioc.readings"
ALERTS_TOPIC = "ioc.alerts"
DEADLETTER_TOPIC = "ioc.deadletter"

# --- Tuning constants -------------------------------------------------------------------
# Items one getmany returns at most (scored in one call): record batches on the fast path of
# ingest.kafka_batches, records without it.  What one fetch holds bounds a delivery too.
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
    client_id: str | None = None
    payload_format: str | None = None
    max_batch: int = MAX_BATCH
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    offset_reset: str = "earliest"         # where a new group starts: earliest | latest

    def __post_init__(self) -> None:
        if not self.bootstrap or any(":" not in h for h in self.bootstrap.split(",")):
            raise KafkaTransportError(f"{self.url}: want kafka://HOST:PORT[,HOST:PORT]")
        if not self.group:
            raise KafkaTransportError(f"{self.url}: group must not be empty")
        for name in ("topic", "alerts_topic", "deadletter_topic"):
            value = getattr(self, name)
            if not value or any(c in value for c in " /#+,"):
                raise KafkaTransportError(f"{self.url}: {name} {value!r} is not a valid Kafka topic name")
        if self.max_batch < 1:
            raise KafkaTransportError(f"{self.url}: max_batch must be >= 1, got {self.max_batch}")
        if self.offset_reset not in ("earliest", "latest"):
            raise KafkaTransportError(f"{self.url}: offset_reset must be earliest or latest, got {self.offset_reset!r}")
        if self.payload_format is not None:
            from ingest.formats import FORMATS
            if self.payload_format not in FORMATS:
                raise KafkaTransportError(f"{self.url}: format must be one of {', '.join(FORMATS)}, got "
                                 f"{self.payload_format!r}")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> "KafkaSettings":
        """``kafka://host:port[,host:port]?group=G&topic=T&alerts=T&deadletter=T&client_id=…&format=…``."""
        parts = urlsplit(url.strip())
        if parts.scheme != "kafka" or not parts.netloc:
            raise KafkaTransportError(f"{url}: not a Kafka address (want kafka://HOST:9092)")
        hosts = [h if ":" in h else f"{h}:9092" for h in parts.netloc.split(",") if h]
        for h in hosts:
            port = h.rsplit(":", 1)[1]
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise KafkaTransportError(f"{url}: port must be a number 1..65535, got {port!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        known = {"group", "topic", "alerts", "deadletter", "client_id", "format", "max_batch", "offset_reset"}
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
            payload_format=query.get("format") or None, max_batch=max_batch,
            offset_reset=query.get("offset_reset") or "earliest")
        values.update(overrides)
        return cls(**values)

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}?group={self.group}&topic={self.topic}"

    def effective_client_id(self, role: str) -> str:
        return self.client_id or f"ioc-{role}-{socket.gethostname()}"


def _explain(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------------------ consumer

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
        # partition -> records the broker holds beyond what was handed out (from each fetch's
        # high watermark): a backlog read partition by partition is not silence (Delivery.behind)
        self._lag: dict[TopicPartition, int] = {}
        self._pending: dict[TopicPartition, int] = {}    # offsets processed but not yet committed
        self.commit_failures = 0
        self.records_received = 0

    async def start(self) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(       # subscribed below, once the topic is known to exist
            bootstrap_servers=s.bootstrap, group_id=s.group, client_id=s.effective_client_id("ingest"),
            enable_auto_commit=False, auto_offset_reset=s.offset_reset, fetch_max_wait_ms=s.fetch_max_wait_ms,
            value_deserializer=batch_values,     # values per record batch, see ingest.kafka_batches
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES, request_timeout_ms=30_000,
            session_timeout_ms=10_000, heartbeat_interval_ms=2_000, retry_backoff_ms=200)
        missing = KafkaTransportError(f"{s.url}: topic {s.topic!r} does not exist (start the brokers with "
                             f"'ioc brokers start', which creates it)")
        try:
            await consumer.start()
            topics = await consumer.topics()
        except kerr.UnknownTopicOrPartitionError:
            await _quiet_stop(consumer)
            raise missing from None
        except (kerr.KafkaError, OSError) as exc:
            await _quiet_stop(consumer)
            raise KafkaTransportError(f"cannot connect to {s.url}: {_explain(exc)}") from None
        if s.topic not in topics:
            await _quiet_stop(consumer)
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
        await _quiet_stop(consumer)

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
                    log.warning("kafka: %s: %s; retrying", self.settings.url, _explain(exc))
                    await asyncio.sleep(0.5)
                    continue
                raise KafkaTransportError(f"{self.settings.url}: {_explain(exc)}") from None
            if not data:
                self._lag.clear()                       # nothing to fetch anywhere: caught up
                if idle_s is not None and time.monotonic() - quiet_since >= idle_s:
                    quiet_since = time.monotonic()
                    yield Delivery((), time.time(), {})
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
                high = consumer.highwater(tp)
                self._lag[tp] = max(0, int(high) - end) if high is not None and end is not None else 0
            behind = any(self._lag.values())
            self.records_received += len(messages) + len(replay)
            n_items = sum(map(len, data.values()))
            per_item = 0.5 * per_item + 0.5 * (len(messages) + len(replay)) / n_items
            quiet_since = time.monotonic()
            if replay:
                self.replayed += len(replay)
                yield Delivery(replay, time.time(), replay_token, replay=True, behind=behind)
            if messages or not replay:
                yield Delivery(messages, time.time(), token, behind=behind)

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
                        _explain(exc))
            return
        except kerr.KafkaError as exc:
            self.commit_failures += 1
            log.warning("kafka: commit failed (%s); retrying with the next batch", _explain(exc))
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
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.source._seek_assigned(self.consumer, assigned)


async def _quiet_stop(client: Any) -> None:
    try:
        await client.stop()
    except Exception:              # noqa: BLE001 - stopping must not raise
        pass


# ------------------------------------------------------------------------------- producer

class KafkaSink(FlushingLifecycle):
    """Produce readings, alerts and dead letters; ``async with`` starts and flushes/stops it.

    Sends do not wait per record: :meth:`send` enqueues, :meth:`flush` waits for every
    acknowledgement and raises :class:`KafkaTransportError` if a record could not be written.
    """

    def __init__(self, settings: KafkaSettings, *, linger_ms: int = LINGER_MS) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._futures: list[asyncio.Future] = []
        self.sent = 0

    def _started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        s = self.settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap, client_id=s.effective_client_id("producer"), acks="all",
            enable_idempotence=True, linger_ms=self.linger_ms, max_batch_size=MAX_BATCH_BYTES,
            max_request_size=1_048_576, request_timeout_ms=30_000, retry_backoff_ms=200)
        try:
            await producer.start()
        except (kerr.KafkaError, OSError) as exc:
            await _quiet_stop(producer)
            raise KafkaTransportError(f"cannot connect to kafka://{s.bootstrap}: {_explain(exc)}") from None
        self._producer = producer

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quiet_stop(producer)

    def _need(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaTransportError(f"kafka://{self.settings.bootstrap}: the sink is not started (use 'async with')")
        return self._producer

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Sequence[tuple[str, bytes]] | None = None) -> None:
        """Enqueue one record (waits only when the producer's buffer is full)."""
        producer = self._need()
        try:
            fut = await producer.send(topic, value, key=key, headers=list(headers) if headers else None)
        except kerr.KafkaError as exc:
            raise KafkaTransportError(f"kafka://{self.settings.bootstrap}: cannot send to {topic!r}: {_explain(exc)}") from None
        self._futures.append(fut)
        self.sent += 1
        if len(self._futures) >= 50_000:
            await self._settle(keep_last=10_000)

    async def send_readings(self, messages: Iterable[Any], topic: str | None = None) -> int:
        """Send :class:`~ingest.formats.Message` s (``.key`` = sensor id, ``.payload``) to the readings topic."""
        topic = topic or self.settings.topic
        n = 0
        for m in messages:
            await self.send(topic, m.payload, m.key.encode())
            n += 1
        return n

    async def send_alerts(self, alerts: Iterable[Any]) -> int:
        """Send :class:`~processing.alerts.Alert` s to the alerts topic, keyed by sensor id."""
        from ingest.formats.alerts import encode_alert

        n = 0
        for a in alerts:
            await self.send(self.settings.alerts_topic, encode_alert(a), a.sensor_id.encode())
            n += 1
        await self.flush()
        return n

    async def send_dead(self, letters: Sequence[Any]) -> None:
        """Send dead letters to the dead-letter topic and wait until they are stored."""
        for d in letters:
            payload = d.payload
            headers = [("reason", d.reason.encode()), ("code", d.code.encode()), ("source", d.source.encode()),
                       ("received", repr(d.received).encode())]
            if len(payload) > MAX_DEAD_PAYLOAD:
                headers.append(("truncated", str(len(payload)).encode()))
                payload = payload[:MAX_DEAD_PAYLOAD]
            await self.send(self.settings.deadletter_topic, payload, d.source.encode()[:256], headers)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged."""
        producer = self._need()
        await producer.flush()
        await self._settle(keep_last=0)

    async def _settle(self, keep_last: int) -> None:
        done, self._futures = self._futures[:len(self._futures) - keep_last], self._futures[len(self._futures) - keep_last:]
        for fut in done:
            try:
                await fut
            except kerr.KafkaError as exc:
                raise KafkaTransportError(f"kafka://{self.settings.bootstrap}: a record could not be written: "
                                 f"{_explain(exc)}") from None
