"""The scoring worker's delivery logic with fakes for Kafka and PostgreSQL (the real ones: tests/integration/test_workers.py)."""
from __future__ import annotations


import numpy as np
import pytest
from aiokafka import TopicPartition

from ingest.formats.scores import decode as decode_scores
from ingest.kafka import KafkaSettings
from ingest.kafka.partitions import partition_of
from ioc.core_state import PartitionCheckpoint
from ioc.worker import Worker, WorkerConfig
from processing.partitions import PartitionMap
from processing.registry import Registry

T0 = 1772412000.0


class FakeRecord:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value


class FakeConsumer:
    def __init__(self, log_start: int = 0) -> None:
        self.log_start = log_start
        self.sought: list[tuple[int, int]] = []
        self.commits: list[dict] = []
        self.paused: set[int] = set()

    async def commit(self, offsets) -> None:
        self.commits.append({tp.partition: o for tp, o in offsets.items()})

    def seek(self, tp, offset) -> None:
        self.sought.append((tp.partition, offset))

    async def seek_to_beginning(self, tp) -> None:
        self.sought.append((tp.partition, self.log_start))

    async def position(self, tp) -> int:
        return self.log_start

    def pause(self, tp) -> None:
        self.paused.add(tp.partition)

    def resume(self, tp) -> None:
        self.paused.discard(tp.partition)

    async def beginning_offsets(self, tps):
        return {tp: self.log_start for tp in tps}


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int | None]] = []
        self.dead: list = []

    async def send(self, topic, value, key=None, headers=None, partition=None) -> None:
        self.sent.append((topic, value, partition))

    async def send_dead(self, letters) -> None:
        self.dead += letters

    async def flush(self) -> None:
        pass


class FakeState:
    def __init__(self) -> None:
        self.saved: dict[int, PartitionCheckpoint] = {}
        self.down = False

    def save(self, partition, next_offset, data, worker) -> bool:
        self.saved[partition] = PartitionCheckpoint(next_offset, data, worker)
        return True

    def load(self, partition):
        if self.down:
            raise OSError("connection refused")
        return self.saved.get(partition)


@pytest.fixture
def worker() -> Worker:
    registry = Registry.synthetic(12, "pm25", 60.0)
    w = Worker(registry, KafkaSettings(topic="r"), FakeState(), config=WorkerConfig(name="t", checkpoint_every_s=1))
    w.map = PartitionMap(partition_of(registry.ids, 3), partitions=3)
    w._consumer = FakeConsumer()
    w._sink = FakeSink()
    return w


def _records(registry: Registry, partition: int, pmap: PartitionMap, start: int, n: int) -> list[FakeRecord]:
    sid = registry.ids[int(pmap.rows(partition)[0])]
    return [FakeRecord(start + i, b'{"id": "%s", "ts": %d, "v": %d}' % (sid.encode(), int(T0) + 60 * (start + i), i))
            for i in range(n)]


async def test_scores_go_to_the_same_partition_and_a_hand_over_resumes_at_the_checkpoint(worker):
    tp = TopicPartition("r", 1)
    await worker.take([1])
    assert worker._consumer.sought == [(1, 0)]
    await worker._deliver(worker._consumer, {tp: _records(worker.registry, 1, worker.map, 0, 5)})
    (topic, value, partition), (etopic, evalue, epartition) = worker._sink.sent
    rec = decode_scores(value)
    assert (topic, partition, rec.first_offset, rec.next_offset, len(rec)) == ("ioc.scores", 1, 0, 5, 5)
    # the alert evidence on the same partition: nothing flagged here, so only the sensor's newest reading
    ev = decode_scores(evalue)
    assert (etopic, epartition, ev.ts.tolist()) == ("ioc.alert-events", 1, [T0 + 60 * 4])
    await worker.give_up([1])
    assert worker.state.saved[1].next_offset == 5 and worker.stats.checkpoints == 1
    assert worker._consumer.commits == [{1: 5}]           # the group's offset follows the checkpoint, never ahead
    other = Worker(worker.registry, worker.settings, worker.state, config=WorkerConfig(name="u"))
    other.map, other._consumer, other._sink = worker.map, FakeConsumer(), FakeSink()
    await other.take([1])
    assert other._consumer.sought == [(1, 5)] and other.stats.resumed == 1
    np.testing.assert_array_equal(other.owned[1].core.state_arrays()["st"], worker._released[1].core.state_arrays()["st"])


async def test_a_fetch_past_the_core_is_read_again_unless_retention_took_the_records(worker):
    tp = TopicPartition("r", 2)
    await worker.take([2])
    await worker._deliver(worker._consumer, {tp: _records(worker.registry, 2, worker.map, 3, 2)})
    assert worker._consumer.sought[-1] == (2, 0) and worker.stats.readings == 0     # sought back, nothing scored
    worker._consumer.log_start = 3                                                 # records 0..2 are gone
    await worker._deliver(worker._consumer, {tp: _records(worker.registry, 2, worker.map, 3, 2)})
    assert worker.stats.readings == 2 and worker.stats.skipped == 3 and worker.owned[2].next_offset == 5


async def test_a_reading_on_the_wrong_partition_is_a_dead_letter_naming_both(worker):
    tp = TopicPartition("r", 0)
    await worker.take([0])
    wrong = _records(worker.registry, 1, worker.map, 0, 1)      # a sensor of partition 1 arriving on 0
    await worker._deliver(worker._consumer, {tp: wrong})
    (letter,) = worker._sink.dead
    assert letter.code == "misplaced" and "arrived on partition 0" in letter.reason
    assert "its key places it on partition 1" in letter.reason and letter.source == "r:0"
    assert worker._sink.sent == [] and worker.owned[0].next_offset == 1


async def test_a_partition_whose_state_cannot_be_loaded_is_paused_not_scored_cold(worker):
    tp = TopicPartition("r", 1)
    worker.state.down = True
    await worker.take([1])
    assert 1 not in worker.owned and worker._consumer.paused == {1} and worker._consumer.sought == []
    await worker._deliver(worker._consumer, {tp: _records(worker.registry, 1, worker.map, 0, 3)})
    assert worker.stats.readings == 0                        # nothing scored without its state
    worker.state.down = False
    await worker.take(sorted(worker._unloaded))              # what the loop does every 2 s
    assert 1 in worker.owned and worker._consumer.paused == set() and worker._consumer.sought == [(1, 0)]
