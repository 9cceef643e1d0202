"""Broker-agnostic ingest: raw broker batches -> decoded, de-duplicated ReadingBatches.

A *source* (:class:`~ingest.mqtt.MqttSource`, :class:`~ingest.kafka.KafkaSource`)
yields :class:`Delivery` batches of raw ``(topic, payload)`` messages and
acknowledges them on ``commit``.  A :class:`Feed` turns a source into what the
pipeline consumes::

    async with open_feed("kafka://127.0.0.1:9092", registry, last_seen=core.last_seen) as feed:
        async for item in feed:                  # FeedItem: batch, dead letters, clock
            scores = core.update(item.batch)     # ... or pipeline.process(item.batch, item.sim_now)
            await feed.commit(item)              # at-least-once: only after processing

Per delivery the feed

1. decodes every message with :func:`ingest.formats.decode_many` (all three
   payload formats, bad input -> :class:`~ingest.formats.DeadLetter`);
2. drops redelivered readings and passes late ones on.  A reading newer than the
   newest one already scored for its sensor (the core's ``last_seen`` and the
   feed's own record) is new.  An older one is either a *redelivery* (the broker
   sends again what was not acknowledged, or a producer retried) or genuinely
   *late* (a gateway that buffered it, a replay that fills a gap).  The feed keeps,
   per sensor, the timestamps of the last :data:`RECENT` readings it handed out and
   the newest one it no longer holds (its *floor*; at start, the core's
   ``last_seen``): an older reading that is among the recent ones, or not above the
   floor, is a duplicate -- counted, never scored twice; one above the floor and
   not among them was never handed out, so it is late and goes on to the core,
   which scores it and flags it ``LATE`` without learning from it.  Within one
   delivery an exact ``(sensor, ts)`` repeat is a duplicate too;
3. sends the dead letters to their sink (Kafka ``ioc.deadletter``, or a
   :class:`~ingest.deadletters.DeadLetterFile` in MQTT/embedded mode) before the
   batch is handed out, so a dead letter is never lost either;
4. stamps the batch with an event-time clock ``sim_now``: the newest reading
   seen, and at least the previous value advanced by the wall time since -- the
   pipeline's "now" for heartbeats, whether the stream is live or a replay.

Counters (:meth:`Feed.stats`) feed ``/metrics``.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping, Protocol, Sequence

import numpy as np

from processing.batch import ReadingBatch
from processing.registry import Registry
from processing.errors import TransportError

__all__ = ["BrokerSource", "DeadLetterSink", "Delivery", "Feed", "FeedItem", "FeedStats", "FileDeadLetters",
           "SourceError", "open_feed", "open_source", "scheme_of"]

log = logging.getLogger(__name__)

#: Timestamps per sensor the feed remembers handing out, to tell a redelivery from a late reading.
RECENT = 16


class SourceError(TransportError):
    """A source address that cannot be used; one line naming it."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One batch of raw messages from a broker, and the token that acknowledges it."""

    messages: Sequence[tuple[str, bytes]]   # (topic, payload)
    received: float                         # wall clock when drained (epoch seconds)
    token: Any = None                       # source-specific: MQTT mids, Kafka offsets
    replay: bool = False                    # re-read after a warm start, already alerted on (Kafka)
    behind: bool = False                    # the broker holds more records than delivered (a backlog)


class BrokerSource(Protocol):
    """What :class:`Feed` needs of a transport (MQTT and Kafka sources both fit)."""

    name: str                               # address for messages (no password)
    formats: str | Mapping[str, str | None] | None

    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc: object) -> None: ...
    def deliveries(self, idle_s: float | None = None) -> AsyncIterator[Delivery]: ...
    async def commit(self, delivery: Delivery) -> None: ...


class DeadLetterSink(Protocol):
    async def send_dead(self, letters: Sequence[Any]) -> None: ...


class FileDeadLetters:
    """A :class:`~ingest.deadletters.DeadLetterFile` as a dead-letter sink (MQTT and embedded modes)."""

    def __init__(self, path: str | Path) -> None:
        from ingest.deadletters import DeadLetterFile

        self.file = DeadLetterFile(path)

    async def send_dead(self, letters: Sequence[Any]) -> None:
        self.file.append(letters)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A decoded delivery, ready to score; hand it back to :meth:`Feed.commit` once processed."""

    batch: ReadingBatch                     # good, new readings, sensor by sensor in time order
    dead: tuple                             # DeadLetter, already sent to the sink
    duplicates: int                         # readings dropped as redeliveries
    sim_now: float                          # event-time clock (epoch seconds)
    received: float                         # wall clock when drained
    queued_at: float                        # time.perf_counter() when drained (queue latency)
    delivery: Delivery
    replay: bool = False                    # the delivery's replay flag: learn it, do not alert on it again
    behind: bool = False                    # catching up a backlog: partitions are read unevenly, so a
                                            # sensor's quiet is no evidence of silence yet


@dataclass(frozen=True)
class FeedStats:
    messages: int = 0
    readings: int = 0                       # handed out to be scored
    duplicates: int = 0
    late: int = 0                           # older than their sensor's newest, never seen: handed out
    deadletters: int = 0
    deadletters_by_reason: Mapping[str, int] = field(default_factory=dict)
    commits: int = 0


class Feed:
    """Decode, de-duplicate and dead-letter what a :class:`BrokerSource` yields; see the module docstring.

    ``last_seen`` returns the core's per-sensor newest timestamp (NaN: none);
    ``dead_letters`` receives dead letters (None: they are only counted);
    ``formats`` overrides the source's payload format(s); ``idle_s`` makes the
    feed yield an empty item after that long without messages, so the pipeline
    still ticks (silence checks) on a quiet stream.
    """

    def __init__(self, source: BrokerSource, registry: Registry, *,
                 last_seen: Callable[[], np.ndarray] | None = None, dead_letters: DeadLetterSink | None = None,
                 formats: str | Mapping[str, str | None] | None = None, idle_s: float | None = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.registry = registry
        self._last_seen = last_seen
        self._dead_sink = dead_letters
        self._formats = formats if formats is not None else getattr(source, "formats", None)
        self._idle_s = idle_s
        self._clock = clock
        self._newest = np.full(len(registry), np.nan)
        self._recent = np.full((len(registry), RECENT), np.nan)   # handed-out timestamps, a ring per sensor
        self._slot = np.zeros(len(registry), dtype=np.int64)       # each ring's next slot
        self._floor: np.ndarray | None = None                      # newest handed-out ts no longer in a ring
        self._late = 0
        self._sim_now: float | None = None
        self._wall_at: float = 0.0
        self._messages = 0
        self._readings = 0
        self._duplicates = 0
        self._dead: dict[str, int] = {}
        self._commits = 0
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> "Feed":
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self.source)   # type: ignore[arg-type]
        self._stack = stack
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        return self.items()

    async def items(self) -> AsyncIterator[FeedItem]:
        from ingest.formats import decode_many

        async for delivery in self.source.deliveries(self._idle_s):
            t_drained = time.perf_counter()
            behind = bool(getattr(delivery, "behind", False))
            if not delivery.messages and behind and self._sim_now is None:
                continue                 # a tick before the first record of a backlog: no clock to give yet
            if delivery.messages:
                decoded = decode_many(delivery.messages, registry=self.registry, received=delivery.received,
                                      formats=self._formats)
                batch, dead = decoded.batch, decoded.dead
            else:
                batch, dead = ReadingBatch.empty(), ()
            batch, dups = self.deduplicate(batch, sensor_order=True)
            replay = bool(getattr(delivery, "replay", False))
            if dead:
                for d in dead:
                    self._dead[d.code] = self._dead.get(d.code, 0) + 1
                if self._dead_sink is not None and not replay:     # a replay's were sent the first time
                    await self._dead_sink.send_dead(dead)
            self._messages += len(delivery.messages)
            self._readings += len(batch)
            self._duplicates += dups
            yield FeedItem(batch, tuple(dead), dups, self._advance_clock(batch), delivery.received, t_drained,
                           delivery, replay, behind)

    async def commit(self, item: FeedItem) -> None:
        """Acknowledge a processed item to its broker (PUBACKs / offsets)."""
        await self.source.commit(item.delivery)
        self._commits += 1

    async def positions(self) -> dict[str, int]:
        """The source's consumed position, ``"topic:partition"`` -> next offset, of every partition it
        holds (Kafka); ``{}`` for a source without offsets (MQTT)."""
        get = getattr(self.source, "positions", None)
        return dict(await get()) if get is not None else {}

    def deduplicate(self, batch: ReadingBatch, *, sensor_order: bool = False) -> tuple[ReadingBatch, int]:
        """``batch`` without readings already handed out (see the module docstring), and how many went.

        ``sensor_order``: the rows come sensor by sensor, each sensor's in time order -- the order
        the pipeline scores in (:meth:`ReadingBatch.by_sensor`), which finding the duplicates
        sorts them into anyway, so a delivery is sorted once on its way to the alert list.

        >>> feed = Feed(None, Registry.synthetic(2))                     # type: ignore[arg-type]
        >>> b, n = feed.deduplicate(ReadingBatch.from_arrays([0, 0, 1, 0], [10, 10, 5, 11], [1, 1, 2, 3]))
        >>> b.ts.tolist(), n                                              # (0, 10) twice: once
        ([10.0, 5.0, 11.0], 1)
        >>> b, n = feed.deduplicate(ReadingBatch.from_arrays([0, 1, 1], [11, 5, 6], [3, 2, 4]))
        >>> b.ts.tolist(), n                                              # redelivered: only (1, 6) is new
        ([6.0], 2)
        >>> b, n = feed.deduplicate(ReadingBatch.from_arrays([0, 0], [10.5, 10], [7, 1]))
        >>> b.ts.tolist(), n, feed.stats().late                           # 10.5 is late, 10 was seen
        ([10.5], 1, 1)
        """
        m = len(batch)
        if m == 0:
            return batch, 0
        seen = self._last_seen() if self._last_seen is not None else None
        if self._floor is None:                   # what the core scored before this feed: not in the rings
            self._floor = (np.full(len(self._newest), -np.inf) if seen is None
                           else np.where(np.isnan(seen), -np.inf, seen))
        newest = self._newest if seen is None else np.fmax(self._newest, seen)
        s, ts = batch.sensor, batch.ts
        keep = ~(ts <= newest[s])                 # NaN newest (never seen) keeps everything
        n_late = 0
        if not keep.all():                        # older than the newest: redelivered, or late?
            c = np.flatnonzero(~keep)
            sc, tc = s[c], ts[c]
            late = (tc > self._floor[sc]) & ~(self._recent[sc] == tc[:, None]).any(axis=1)
            keep[c[late]] = True
            n_late = int(np.count_nonzero(late))
        order = np.lexsort((ts, s))
        so, to = s[order], ts[order]
        if m > 1:
            repeat = np.zeros(m, dtype=bool)
            repeat[1:] = (so[1:] == so[:-1]) & (to[1:] == to[:-1])
            if repeat.any():
                if n_late:                        # a late reading twice in one delivery is late once
                    n_late -= int(np.count_nonzero(repeat & keep[order] & (to <= newest[so])))
                keep[order[repeat]] = False
        # the newest timestamp per sensor in this batch: the last of each sensor's run in (sensor, ts) order
        last = np.r_[np.flatnonzero(so[1:] != so[:-1]), m - 1]
        idx = so[last]
        self._newest[idx] = np.fmax(self._newest[idx], to[last])
        rows = order[keep[order]]
        self._remember(rows, s, ts)
        self._late += n_late
        dups = int(m - np.count_nonzero(keep))
        if sensor_order:
            return batch.take(rows), dups
        return (batch if dups == 0 else batch.take(keep)), dups

    def _remember(self, rows: np.ndarray, sensor: np.ndarray, ts: np.ndarray) -> None:
        """Put the handed-out readings ``rows`` (in (sensor, ts) order) in their sensors' rings; what
        a ring lets go of (and what never fits in it) raises its sensor's floor."""
        if rows.size == 0:
            return
        assert self._floor is not None
        sk, tk = sensor[rows], ts[rows]
        starts = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
        counts = np.diff(np.r_[starts, rows.size])
        group = np.repeat(np.arange(starts.size), counts)
        rank = np.arange(rows.size) - starts[group]
        fits = np.minimum(counts, RECENT)
        skip = counts - fits                       # the oldest of a sensor's many: straight to the floor
        ins = rank >= skip[group]
        if not ins.all():
            np.maximum.at(self._floor, sk[~ins], tk[~ins])
        si = sk[ins]
        slot = (self._slot[si] + rank[ins] - skip[group[ins]]) % RECENT
        gone = self._recent[si, slot]
        held = ~np.isnan(gone)
        if held.any():
            np.maximum.at(self._floor, si[held], gone[held])
        self._recent[si, slot] = tk[ins]
        first = sk[starts]
        self._slot[first] = (self._slot[first] + fits) % RECENT

    def _advance_clock(self, batch: ReadingBatch) -> float:
        """The event-time clock after ``batch``: its newest reading, and at least the previous value
        advanced by the wall time since.  It starts at the first reading; an idle stream starts it at
        the newest reading the core already holds (a warm start resumes the stream's own time, so a
        replay of old records is not judged against today), or at the wall clock (a cold, live start)."""
        wall = self._clock()
        newest = float(batch.ts.max()) if len(batch) else None
        if self._sim_now is None:
            if newest is None:
                held = self._last_seen() if self._last_seen is not None else np.empty(0)
                held = held[np.isfinite(held)]
                newest = float(held.max()) if held.size else wall
            self._sim_now = newest
        else:
            self._sim_now = max(self._sim_now + max(0.0, wall - self._wall_at), newest if newest is not None else 0.0)
        self._wall_at = wall
        return self._sim_now

    def stats(self) -> FeedStats:
        return FeedStats(self._messages, self._readings, self._duplicates, self._late, sum(self._dead.values()),
                         dict(self._dead), self._commits)


# -------------------------------------------------------------------------- addresses

def redact(url: str) -> str:
    """A broker address as it may be printed or logged: the password of ``USER:PASSWORD@`` is ``***``.

    >>> redact("kafka://ioc:s3cret@10.0.0.7:9093?tls=1")
    'kafka://ioc:***@10.0.0.7:9093?tls=1'
    """
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{rest[len(userinfo) + 1:]}"


def scheme_of(url: str) -> str:
    """``"mqtt"`` or ``"kafka"`` for a broker address; :class:`SourceError` otherwise."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("mqtt", "mqtts", "tcp", "ssl"):
        return "mqtt"
    if scheme == "kafka":
        return "kafka"
    raise SourceError(f"{redact(url)}: not a broker address (want mqtt://HOST:1883[/topic] or kafka://HOST:9092)")


def open_source(url: str, *, role: str = "ingest", start_offsets: Mapping[str, int] | None = None,
                replay_until: Mapping[str, int] | None = None) -> BrokerSource:
    """An (unstarted) source for ``mqtt://…`` or ``kafka://…``.  ``start_offsets``
    (``"topic:partition"`` -> offset; Kafka only, other topics ignored): where to resume
    instead of the group's committed offsets; ``replay_until`` (same keys): records before
    these offsets come in deliveries marked ``replay``."""
    if scheme_of(url) == "mqtt":
        from ingest.mqtt import MqttError, MqttSettings, MqttSource

        try:
            return MqttSource(MqttSettings.from_url(url), client_id_role=role)
        except MqttError as exc:
            raise SourceError(str(exc)) from None
    from ingest.kafka import KafkaTransportError, KafkaSettings, KafkaSource

    try:
        settings = KafkaSettings.from_url(url)
        def of_topic(offsets: Mapping[str, int] | None) -> dict[int, int]:
            out = {}
            for key, offset in (offsets or {}).items():
                topic, _, part = key.rpartition(":")
                if topic == settings.topic and part.isdigit():
                    out[int(part)] = int(offset)
            return out

        return KafkaSource(settings, start_offsets=of_topic(start_offsets), replay_until=of_topic(replay_until))
    except KafkaTransportError as exc:
        raise SourceError(str(exc)) from None


@contextlib.asynccontextmanager
async def open_feed(url: str, registry: Registry, *, last_seen: Callable[[], np.ndarray] | None = None,
                    dead_letter_file: str | Path | None = None, idle_s: float | None = 1.0,
                    start_offsets: Mapping[str, int] | None = None,
                    replay_until: Mapping[str, int] | None = None) -> AsyncIterator[Feed]:
    """A started :class:`Feed` on ``url`` with the right dead-letter sink: Kafka ``ioc.deadletter``
    for a Kafka source, else ``dead_letter_file`` (JSON lines) when given; ``start_offsets``,
    ``replay_until``: see :func:`open_source`."""
    source = open_source(url, start_offsets=start_offsets, replay_until=replay_until)
    async with contextlib.AsyncExitStack() as stack:
        sink: DeadLetterSink | None = None
        if scheme_of(url) == "kafka":
            from ingest.kafka import KafkaSink

            sink = await stack.enter_async_context(KafkaSink(source.settings))  # type: ignore[attr-defined]
        elif dead_letter_file is not None:
            sink = FileDeadLetters(dead_letter_file)
        feed = Feed(source, registry, last_seen=last_seen, dead_letters=sink, idle_s=idle_s)
        await stack.enter_async_context(feed)
        yield feed
