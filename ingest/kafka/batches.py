"""aiokafka fast path: a consumer's records handed over as one list of values per record batch.

aiokafka builds a ``ConsumerRecord`` (eleven fields, headers tuple, a Python
``__init__``) for every record it returns; for one-reading records that costs more
than everything else the IOC does with a reading, and held Kafka ingest to about a
quarter of ``kcat -C``.  The pipeline needs only each record's value and, per
partition, the offset to commit.  So a consumer created with
``value_deserializer=batch_values`` gets, from ``getmany``, :class:`ValueBatch` items --
one per Kafka record batch (what a producer sent in one go, often thousands of
records) -- instead of one ``ConsumerRecord`` per record::

    install()                         # once per process; KafkaSource.start does it
    consumer = AIOKafkaConsumer(topic, value_deserializer=batch_values, ...)
    for tp, items in (await consumer.getmany()).items():
        for item in items:            # ValueBatch, or ConsumerRecord (see below)
            ...

Everything else -- fetching, CRC checks, control batches, positions, commits,
rebalancing -- stays aiokafka's.  The hook is aiokafka's ``PartitionRecords`` class,
replaced in :mod:`aiokafka.consumer.fetcher` by a subclass -- for the whole process,
so not on import: :func:`install` does it, explicitly and once (it is idempotent), and
:meth:`ingest.kafka.KafkaSource.start` calls it.  Once installed, consumers without the
marker deserializer behave exactly as before, and a ``read_committed`` consumer (aborted
transactions are filtered per record) keeps the per-record path.  If a future aiokafka
no longer has that class, nothing is replaced (:func:`install` returns False,
:data:`ACTIVE` stays False) and consumers get ``ConsumerRecord`` s, slower but correct;
``tests/ingest/kafka/test_batches.py`` says so loudly.
"""
from __future__ import annotations

from typing import Any, Iterator

from aiokafka.consumer import fetcher as _fetcher

__all__ = ["ACTIVE", "ValueBatch", "batch_values", "install"]


class ValueBatch:
    """The values of one record batch, in offset order, and the offset that follows it."""

    __slots__ = ("values", "next_offset")

    def __init__(self, values: list[bytes | None], next_offset: int) -> None:
        self.values = values
        self.next_offset = next_offset

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"ValueBatch({len(self.values)} values, next_offset={self.next_offset})"


def batch_values(value: bytes | None) -> bytes | None:
    """Marker ``value_deserializer``: ask for :class:`ValueBatch` items (identity if the fast path is off)."""
    return value


_Base: Any = getattr(_fetcher, "PartitionRecords", None)
_READ_COMMITTED = getattr(_fetcher, "READ_COMMITTED", 1)
# this aiokafka has the hook the fast path needs
_AVAILABLE = _Base is not None and callable(getattr(_Base, "_unpack_records", None))
#: The fast path is installed in this process (see :func:`install`).
ACTIVE = False

if _AVAILABLE:
    class _BatchingPartitionRecords(_Base):  # type: ignore[misc, valid-type]
        """aiokafka's PartitionRecords; with the marker deserializer, one item per record batch."""

        def _unpack_records(self) -> Iterator[Any]:
            if self._value_deserializer is not batch_values or self._isolation_level == _READ_COMMITTED:
                yield from super()._unpack_records()
                return
            tp, records = self._tp, self._records
            while records.has_next():
                batch = records.next_batch()
                if self._check_crcs and not batch.validate_crc():
                    # as aiokafka does: the iterator ends here and the batch is fetched again
                    raise _fetcher.Errors.CorruptRecordException(f"Invalid CRC - {tp}")
                if batch.is_control_batch:
                    self.next_fetch_offset = batch.next_offset
                    continue
                start = self.next_fetch_offset
                if getattr(batch, "base_offset", -1) >= start:
                    values = [r.value for r in batch]
                else:      # a batch that begins before our position (e.g. compressed message sets)
                    values = [r.value for r in batch if r.offset >= start]
                self.next_fetch_offset = batch.next_offset
                if values:
                    yield ValueBatch(values, batch.next_offset)


def install() -> bool:
    """Put the fast path into aiokafka's fetcher (once; later calls change nothing) and say whether
    it is in place -- False only for an aiokafka without the hook."""
    global ACTIVE
    if _AVAILABLE and not ACTIVE:
        _fetcher.PartitionRecords = _BatchingPartitionRecords
        ACTIVE = True
    return ACTIVE
