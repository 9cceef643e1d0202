"""ReadingBatch: the one data type that flows through City IOC.

A batch is three equal-length numpy columns -- sensor index (int32, into the
pipeline's :class:`~processing.registry.Registry`), timestamp (float64, epoch
seconds, UTC) and value (float64).  Decoders produce batches, simulators emit
them, the anomaly core consumes them.  There is no per-reading object.

Unlike the first design note, a batch does not carry its registry: the registry
is fixed for a pipeline and handed to the core once, so a batch stays three
plain arrays that are cheap to slice, concatenate and send between processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = ["ReadingBatch"]


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Columnar readings: ``sensor[i]`` read ``value[i]`` at ``ts[i]``.

    >>> b = ReadingBatch.from_arrays([0, 1], [10.0, 10.0], [1.5, 2.5])
    >>> len(b), b.sensor.dtype.name, b.value.tolist()
    (2, 'int32', [1.5, 2.5])
    """

    sensor: np.ndarray
    ts: np.ndarray
    value: np.ndarray

    def __post_init__(self) -> None:
        n = self.sensor.shape
        if self.sensor.ndim != 1 or self.ts.shape != n or self.value.shape != n:
            raise ValueError(
                "ReadingBatch columns must be 1-D and of equal length, got "
                f"sensor{self.sensor.shape} ts{self.ts.shape} value{self.value.shape}"
            )
        if self.sensor.dtype != np.int32 or self.ts.dtype != np.float64 or self.value.dtype != np.float64:
            raise TypeError(
                "ReadingBatch dtypes must be int32/float64/float64, got "
                f"{self.sensor.dtype}/{self.ts.dtype}/{self.value.dtype}; use ReadingBatch.from_arrays"
            )

    @classmethod
    def from_arrays(cls, sensor: Iterable[int] | np.ndarray, ts: Iterable[float] | np.ndarray,
                    value: Iterable[float] | np.ndarray) -> "ReadingBatch":
        """Build a batch, converting the columns to the canonical dtypes."""
        return cls(
            np.ascontiguousarray(sensor, dtype=np.int32).reshape(-1),
            np.ascontiguousarray(ts, dtype=np.float64).reshape(-1),
            np.ascontiguousarray(value, dtype=np.float64).reshape(-1),
        )

    @classmethod
    def empty(cls) -> "ReadingBatch":
        return cls(np.empty(0, np.int32), np.empty(0, np.float64), np.empty(0, np.float64))

    @classmethod
    def concat(cls, batches: Iterable["ReadingBatch"]) -> "ReadingBatch":
        parts = [b for b in batches if len(b)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([b.sensor for b in parts]),
            np.concatenate([b.ts for b in parts]),
            np.concatenate([b.value for b in parts]),
        )

    def __len__(self) -> int:
        return int(self.sensor.shape[0])

    def take(self, index: np.ndarray) -> "ReadingBatch":
        """Rows selected by an integer index or boolean mask."""
        return ReadingBatch(self.sensor[index], self.ts[index], self.value[index])

    def in_sensor_order(self) -> bool:
        """Whether rows run sensor by sensor, each sensor's in time order (one pass, no sort).

        >>> ReadingBatch.from_arrays([0, 0, 2], [5.0, 7.0, 1.0], [1, 2, 3]).in_sensor_order()
        True
        >>> ReadingBatch.from_arrays([0, 2, 0], [5.0, 1.0, 7.0], [1, 2, 3]).in_sensor_order()
        False
        """
        if len(self) < 2:
            return True
        ds = np.diff(self.sensor)
        if (ds < 0).any():
            return False
        same = ds == 0
        return not (same & (self.ts[1:] < self.ts[:-1])).any()

    def by_sensor(self) -> "ReadingBatch":
        """Rows sensor by sensor, each sensor's in time order (stable: equal timestamps keep arrival
        order); the batch itself when it already is.  The pipeline sorts a batch this way once, and
        every later stage (core, alert list, the display's newest values) reads it without sorting:
        a sensor's state depends only on its own readings in time order.

        >>> ReadingBatch.from_arrays([2, 0, 0], [1.0, 7.0, 5.0], [1, 2, 3]).by_sensor().value.tolist()
        [3.0, 2.0, 1.0]
        """
        if self.in_sensor_order():
            return self
        return self.take(np.lexsort((self.ts, self.sensor)))

    def sorted_by_time(self) -> "ReadingBatch":
        """Rows in time order (stable, so equal timestamps keep arrival order)."""
        order = np.argsort(self.ts, kind="stable")
        return self.take(order)
