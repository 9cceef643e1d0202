"""What a reading must be for the core to take it, in one place.

A reading is taken when its sensor is in the registry, its time and value are finite
numbers, and its value (in the kind's canonical unit) lies in the kind's physically
possible range (:data:`processing.kinds.KINDS` ``valid_min..valid_max``).  Anything else
is a *fault* with a code, the same code its dead letter carries.

Readings are checked once, where they enter: the decoders (:mod:`ingest.formats`) explain
each fault in its dead letter; the pipeline checks only what it is handed unchecked (the
simulator's readings, a replay), never a batch a decoder already checked.

>>> from processing.registry import Registry, SensorSpec
>>> reg = Registry((SensorSpec("A", "Trạm A", "environment", "pm25", "µg/m³", "w", 106.2, 21.3, 60.0),))
>>> limits = Limits.of(reg)
>>> faults(np.array([0, 1, 0, 0]), np.array([1.0, 1.0, np.nan, 1.0]), np.array([5.0, 5.0, 5.0, -3.0]), limits)
array([0, 1, 2, 3], dtype=uint8)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.registry import Registry

__all__ = ["FAULT_CODES", "NON_FINITE", "OK", "OUT_OF_RANGE", "UNKNOWN_SENSOR", "Limits", "count_faults", "faults"]

OK, UNKNOWN_SENSOR, NON_FINITE, OUT_OF_RANGE = 0, 1, 2, 3
#: fault number -> the dead-letter code it is reported under
FAULT_CODES: dict[int, str] = {UNKNOWN_SENSOR: "unknown_sensor", NON_FINITE: "non_finite", OUT_OF_RANGE: "out_of_range"}


@dataclass(frozen=True, eq=False)
class Limits:
    """Each sensor's possible range (its kind's), by registry index."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, registry: Registry) -> "Limits":
        """The registry's ranges (its read-only ``valid_min`` / ``valid_max`` arrays, not copied)."""
        return cls(registry.valid_min, registry.valid_max)

    def __len__(self) -> int:
        return int(self.lo.size)


def faults(sensor: np.ndarray, ts: np.ndarray, value: np.ndarray, limits: Limits) -> np.ndarray:
    """The fault of each reading (``OK`` = 0 when it is fine), the first that applies in the
    order unknown sensor, non-finite time or value, out of range."""
    sensor = np.asarray(sensor)
    value = np.asarray(value, dtype=np.float64)
    known = (sensor >= 0) & (sensor < len(limits))
    finite = np.isfinite(value) & np.isfinite(np.asarray(ts, dtype=np.float64))
    at = np.where(known, sensor, 0)
    with np.errstate(invalid="ignore"):
        in_range = (value >= limits.lo[at]) & (value <= limits.hi[at]) if len(limits) else np.zeros(value.size, bool)
    out = np.full(value.size, OUT_OF_RANGE, dtype=np.uint8)
    out[in_range] = OK
    out[~finite] = NON_FINITE
    out[~known] = UNKNOWN_SENSOR
    return out


def count_faults(codes: np.ndarray) -> dict[str, int]:
    """How many readings have each fault, by dead-letter code (faults that did not occur left out)."""
    counts = np.bincount(codes, minlength=len(FAULT_CODES) + 1)
    return {name: int(counts[k]) for k, name in FAULT_CODES.items() if counts[k]}
