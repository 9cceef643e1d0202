"""KafkaSource without a broker: after a warm start, seeking each partition once to the
checkpoint's offset and handing out what the alert store had already seen as a replay;
marking deliveries taken from a backlog."""
from __future__ import annotations

from aiokafka import TopicPartition

from ingest.kafka import KafkaSettings, KafkaSource
from ingest.kafka.batches import ValueBatch
from ingest.sources import open_source

P0, P1, OTHER = TopicPartition("ioc.readings", 0), TopicPartition("ioc.readings", 1), TopicPartition("x", 0)


class FakeConsumer:
    """``getmany`` returns the prepared fetches in turn, each with the high watermarks its fetch
    answered (they stay known, as aiokafka keeps them); ``seek`` is recorded."""

    def __init__(self, fetches: list[dict], highwater: list[dict] | None = None,
                 assigned: set | None = None, positions: dict | None = None) -> None:
        self.fetches = fetches
        self.highwaters = highwater or [{} for _ in fetches]     # per fetch: partition -> high watermark
        self.high: dict = {}
        self.assigned = assigned if assigned is not None else {tp for f in fetches for tp in f}
        self.positions = positions or {}
        self.sought: list[tuple[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        self.high.update(self.highwaters.pop(0))
        return self.fetches.pop(0)

    def assignment(self) -> set:
        return self.assigned

    async def position(self, tp: TopicPartition) -> int:
        return self.positions.get(tp, 0)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))


def values(first: int, n: int) -> list[bytes]:
    return [b"%d" % (first + k) for k in range(n)]


async def take(src: KafkaSource, n: int) -> list:
    out = []
    async for d in src.deliveries(idle_s=None):
        out.append(d)
        if len(out) == n:
            return out
    return out


def source(consumer: FakeConsumer, **kw) -> KafkaSource:
    src = KafkaSource(KafkaSettings(), **kw)
    src._consumer = consumer                 # type: ignore[assignment]
    return src


async def test_records_before_the_alert_horizon_come_as_a_replay_of_their_own() -> None:
    consumer = FakeConsumer([
        # partition 0 resumes at 100; the previous run had alerted on it up to 105
        {P0: [ValueBatch(values(100, 3), 103), ValueBatch(values(103, 4), 107)], P1: [ValueBatch(values(7, 2), 9)]},
        {P0: [ValueBatch(values(107, 2), 109)]},
    ])
    src = source(consumer, replay_until={0: 105})
    replay, live, later = await take(src, 3)
    assert replay.replay and [v for _, v in replay.messages] == values(100, 5)
    assert replay.token == {P0: 105}
    assert not live.replay and [v for _, v in live.messages] == values(105, 2) + values(7, 2)
    assert live.token == {P0: 107, P1: 9}
    assert not later.replay and later.token == {P0: 109}       # past the horizon: all live from now on
    assert src.replayed == 5 and src.records_received == 11


async def test_without_a_horizon_nothing_is_a_replay() -> None:
    src = source(FakeConsumer([{P0: [ValueBatch(values(0, 3), 3)]}]))
    [d] = await take(src, 1)
    assert not d.replay and d.token == {P0: 3} and len(d.messages) == 3


def test_each_partition_is_sought_to_its_start_offset_once() -> None:
    consumer = FakeConsumer([])
    src = source(consumer, start_offsets={0: 100, 1: 7})
    src._seek_assigned(consumer, {P0, OTHER})                  # partition 1 went to another worker
    assert consumer.sought == [(P0, 100)] and src.sought == {0: 100}
    src._seek_assigned(consumer, {P0, P1})                     # a rebalance gives it to us later
    assert consumer.sought == [(P0, 100), (P1, 7)]             # partition 0 is not sent back again


def test_open_source_takes_the_offsets_of_its_own_topic() -> None:
    src = open_source("kafka://127.0.0.1:9092?topic=t1", start_offsets={"t1:0": 5, "t2:0": 9, "t1:3": 1},
                      replay_until={"t1:0": 8})
    assert isinstance(src, KafkaSource)
    assert src._seek_to == {0: 5, 3: 1} and src._replay_until == {0: 8}


async def test_a_delivery_is_behind_while_any_partition_holds_more_than_was_handed_out() -> None:
    consumer = FakeConsumer(
        [{P0: [ValueBatch(values(0, 3), 3)]},             # P0 has 10, P1 not fetched yet (unknown)
         {P1: [ValueBatch(values(0, 5), 5)]},             # P1 caught up; P0 still 7 behind
         {P0: [ValueBatch(values(3, 7), 10)]},            # both caught up
         {},                                              # nothing anywhere
         {P1: [ValueBatch(values(5, 1), 6)]}],            # a new record, read at once
        [{P0: 10}, {P1: 5}, {P0: 10}, {}, {P1: 6}])
    src = source(consumer)
    out = []
    async for d in src.deliveries(idle_s=0.0):
        out.append(d)
        if len(out) == 5:
            break
    assert [d.behind for d in out] == [True, True, False, False, False]
    assert out[3].messages == () and out[4].token == {P1: 6}


async def test_a_partition_no_fetch_has_answered_for_yet_is_behind_not_silent() -> None:
    # after a restart, the first fetch brought P0 only: P0 is caught up, P1 (resumed at 40) unknown
    consumer = FakeConsumer(
        [{P0: [ValueBatch(values(0, 3), 3)]},
         {P0: [ValueBatch(values(3, 1), 4)]},             # P1's fetch answered: 40 is all there is
         {P0: [ValueBatch(values(4, 1), 5)]}],            # P1's high watermark moved: 2 records wait
        [{P0: 3}, {P0: 4, P1: 40}, {P0: 5, P1: 42}], assigned={P0, P1}, positions={P1: 40})
    out = await take(source(consumer), 3)
    assert [d.behind for d in out] == [True, False, True]


async def test_a_revoked_partition_forgets_its_position() -> None:
    consumer = FakeConsumer([{P0: [ValueBatch(values(0, 3), 3)]}], [{P0: 3}], assigned={P0})
    src = source(consumer)
    await take(src, 1)
    assert src._next == {P0: 3}
    from ingest.kafka.source import _SeekOnAssign
    await _SeekOnAssign(src, consumer).on_partitions_revoked({P0})
    assert src._next == {}
