"""The city split by Kafka partition: which sensors a partition holds, and each partition's own core.

Readings are keyed by sensor id, so every reading of a sensor arrives on one partition of
``ioc.readings`` and a scoring worker that owns a partition owns those sensors outright.
A :class:`PartitionMap` is given each sensor's partition (computed by the adapter from the
Kafka partitioner, :func:`ingest.kafka.partitions.partition_of`) and answers, with arrays:

* :meth:`PartitionMap.rows` -- the registry indices of partition ``p``'s sensors;
* :meth:`PartitionMap.registry_of` -- a :class:`~processing.registry.Registry` of just those
  sensors, for an :class:`~processing.core.AnomalyCore` of the partition: a worker holds state
  only for the partitions it owns, and a partition's checkpoint is that core's whole state;
* :meth:`PartitionMap.split` -- a decoded batch from partition ``p`` in the partition's own
  indices, and the rows whose sensor the key does not place there (misplaced).

A sensor's readings are scored by its partition's core in the same order as by one core over
the whole city, and a sensor's state depends on its own readings only, so the scores agree
exactly with the single-process reference however the partitions move between workers.

>>> from processing.registry import Registry
>>> pm = PartitionMap(np.array([1, 0, 1, 2]), partitions=3)
>>> pm.rows(1).tolist(), pm.local[[0, 2]].tolist()
([0, 2], [0, 1])
>>> from processing.batch import ReadingBatch
>>> local, misplaced = pm.split(1, ReadingBatch.from_arrays([2, 1, 0], [1.0, 1.0, 2.0], [5.0, 6.0, 7.0]))
>>> local.sensor.tolist(), misplaced.tolist()
([1, 0], [1])
"""
from __future__ import annotations

import numpy as np

from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["PartitionMap", "alert_evidence"]


class PartitionMap:
    """Each registry sensor's partition, and the index of each sensor within its partition."""

    def __init__(self, partition_of: np.ndarray, *, partitions: int) -> None:
        part = np.asarray(partition_of, dtype=np.int32)
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if part.size and (part.min() < 0 or part.max() >= partitions):
            raise ValueError(f"a sensor's partition lies outside 0..{partitions - 1}")
        self.partitions = int(partitions)
        self.of = part
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(partitions + 1))
        self._rows = [np.ascontiguousarray(order[bounds[p]:bounds[p + 1]]) for p in range(partitions)]
        self.local = np.empty(part.size, dtype=np.int32)      # registry index -> index in its partition
        for rows in self._rows:
            self.local[rows] = np.arange(rows.size, dtype=np.int32)

    def rows(self, partition: int) -> np.ndarray:
        """Registry indices of the sensors of ``partition``, ascending."""
        return self._rows[partition]

    def registry_of(self, registry: Registry, partition: int) -> Registry:
        """The sensors of ``partition`` as a registry of their own (positions = :attr:`local` indices)."""
        return Registry(tuple(registry.sensors[i] for i in self._rows[partition]))

    def split(self, partition: int, batch: ReadingBatch) -> tuple[ReadingBatch, np.ndarray]:
        """``batch`` (registry indices, read from ``partition``) restricted to the partition's sensors,
        in the partition's indices and the batch's order; and the rows of the batch that are not."""
        here = self.of[batch.sensor] == partition
        if here.all():
            return ReadingBatch(self.local[batch.sensor], batch.ts, batch.value), np.empty(0, dtype=np.intp)
        kept = batch.take(here)
        return ReadingBatch(self.local[kept.sensor], kept.ts, kept.value), np.flatnonzero(~here)


def alert_evidence(sensor: np.ndarray, ts: np.ndarray, alert: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Rows of a scored batch the alerting owner needs, in batch order: every flagged reading, each
    reading that ends a run of flagged ones, and each sensor's newest reading (when it was last
    heard: the owner judges silence from it).

    The alert list acts on nothing else: a run's alert, peak, reasons and count come from its
    flagged readings, its end from the first unflagged one, so
    :meth:`processing.alerts.AlertList.ingest` of these rows makes the same changes as of the whole
    batch.  ``before``: each sensor's alert state before the batch (by sensor index).  Each sensor's
    readings are taken in time order, ties in batch order, as the core applies them.

    >>> alert_evidence(np.array([0, 1, 0, 0, 0, 1]), np.array([1., 1., 2., 3., 4., 2.]),
    ...                np.array([True, False, True, False, False, False]), np.array([False, False])).tolist()
    [0, 2, 3, 4, 5]
    """
    if sensor.size == 0:
        return np.empty(0, dtype=np.intp)
    order = np.lexsort((ts, sensor))             # by sensor, then time; stable for ties
    s, a = sensor[order], np.asarray(alert, dtype=bool)[order]
    change = s[1:] != s[:-1]
    first = np.r_[True, change]
    newest = np.r_[change, True]
    prev = np.where(first, before[s], np.r_[False, a[:-1]])
    return np.sort(order[a | prev | newest])
