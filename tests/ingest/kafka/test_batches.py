"""The aiokafka fast path: record batches in, ValueBatch out, positions exactly as aiokafka's own."""
from __future__ import annotations

import struct

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record._crc32c import crc as crc32c
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from ingest.kafka import batches
from ingest.kafka.batches import ValueBatch, batch_values

TP = TopicPartition("ioc.readings", 0)
BASE = struct.calcsize(">qiibI")      # where the CRC-covered part (attributes on) begins
CRC = struct.calcsize(">qiib")


def record_batch(base_offset: int, values: list[bytes | None], *, control: bool = False) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for k, v in enumerate(values):
        b.append(k, timestamp=1_700_000_000_000 + k, key=b"S%d" % k, value=v, headers=[])
    buf = bytearray(b.build())
    struct.pack_into(">q", buf, 0, base_offset)            # the broker sets the base offset
    if control:
        attrs = struct.unpack_from(">h", buf, BASE)[0] | 0x20
        struct.pack_into(">h", buf, BASE, attrs)
        struct.pack_into(">I", buf, CRC, crc32c(bytes(buf[BASE:])))
    return bytes(buf)


def partition_records(data: bytes, fetch_offset: int, *, deserializer=batch_values, check_crcs: bool = True,
                      isolation_level: int = 0) -> fetcher.PartitionRecords:
    return fetcher.PartitionRecords(TP, MemoryRecords(data), [], fetch_offset, None, deserializer,
                                    check_crcs, isolation_level)


@pytest.fixture(autouse=True, scope="module")
def installed() -> None:
    """The fast path is installed explicitly (as KafkaSource.start does), never by an import."""
    batches.install()


def test_the_fast_path_is_installed_in_this_aiokafka() -> None:
    # if this fails after an aiokafka upgrade, Kafka ingest silently falls back to a record per item
    assert batches.install() is True                   # installing again changes nothing
    assert batches.ACTIVE
    assert fetcher.PartitionRecords.__module__ == "ingest.kafka.batches"


def test_one_value_batch_per_record_batch_in_order() -> None:
    data = record_batch(0, [b"a", b"b", b"c"]) + record_batch(3, [b"d", None])
    pr = partition_records(data, 0)
    items = list(pr)
    assert [type(i) for i in items] == [ValueBatch, ValueBatch]
    assert [i.values for i in items] == [[b"a", b"b", b"c"], [b"d", None]]
    assert [i.next_offset for i in items] == [3, 5]
    assert pr.next_fetch_offset == 5
    assert len(items[0]) == 3 and "3 values" in repr(items[0])


def test_a_fetch_that_starts_inside_a_batch_skips_what_was_consumed() -> None:
    data = record_batch(10, [b"a", b"b", b"c", b"d"])
    items = list(partition_records(data, 12))
    assert [i.values for i in items] == [[b"c", b"d"]]
    assert items[0].next_offset == 14


def test_control_batches_are_skipped_but_move_the_position() -> None:
    data = record_batch(0, [b"a"]) + record_batch(1, [b"\x00\x00\x00\x00"], control=True) + record_batch(2, [b"b"])
    pr = partition_records(data, 0)
    assert [i.values for i in pr] == [[b"a"], [b"b"]]
    assert pr.next_fetch_offset == 3
    only_control = partition_records(record_batch(7, [b"\x00\x00\x00\x00"], control=True), 7)
    assert list(only_control) == [] and only_control.next_fetch_offset == 8


def test_a_corrupt_batch_raises_as_aiokafka_does() -> None:
    data = bytearray(record_batch(0, [b"abc"]))
    at = data.index(b"abc")
    data[at:at + 3] = b"abd"                    # one value byte changed after the CRC was computed
    with pytest.raises(CorruptRecordException, match="Invalid CRC"):
        list(partition_records(bytes(data), 0))
    assert [i.values for i in partition_records(bytes(data), 0, check_crcs=False)] == [[b"abd"]]


def test_the_getall_position_follows_whole_batches() -> None:
    """FetchResult.getall(max_records) counts items; the consumer position lands between batches."""
    data = record_batch(0, [b"a", b"b"]) + record_batch(2, [b"c"]) + record_batch(3, [b"d", b"e"])
    pr = partition_records(data, 0)
    first = next(pr)
    assert first.values == [b"a", b"b"] and pr.next_fetch_offset == 2
    rest = list(pr)
    assert [i.values for i in rest] == [[b"c"], [b"d", b"e"]] and pr.next_fetch_offset == 5


def test_other_consumers_still_get_consumer_records() -> None:
    data = record_batch(5, [b"x", b"y"])
    plain = list(partition_records(data, 5, deserializer=None))
    assert [(r.offset, r.key, r.value) for r in plain] == [(5, b"S0", b"x"), (6, b"S1", b"y")]
    decoded = list(partition_records(data, 6, deserializer=bytes.upper))
    assert [(r.offset, r.value) for r in decoded] == [(6, b"Y")]


def test_read_committed_keeps_the_per_record_path() -> None:
    data = record_batch(0, [b"x", b"y"])
    records = list(partition_records(data, 0, isolation_level=fetcher.READ_COMMITTED))
    assert [(r.offset, r.value) for r in records] == [(0, b"x"), (1, b"y")]
