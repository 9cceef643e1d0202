"""The one rule for what the core takes: known sensor, finite time and value, the kind's possible range."""
from __future__ import annotations

import numpy as np
import pytest

from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec
from processing.validate import (FAULT_CODES, NON_FINITE, OK, OUT_OF_RANGE, UNKNOWN_SENSOR, Limits, count_faults,
                                 faults)

REG = Registry((SensorSpec("AIR", "Trạm", "environment", "pm25", "µg/m³", "w", 106.2, 21.3, 60.0),
                SensorSpec("RIV", "Sông", "environment", "water_level", "m", "w", 106.2, 21.3, 60.0)))
LIMITS = Limits.of(REG)


def test_limits_are_each_sensors_kind_range_and_read_only() -> None:
    assert LIMITS.lo.tolist() == [KINDS["pm25"].valid_min, KINDS["water_level"].valid_min]
    assert LIMITS.hi.tolist() == [KINDS["pm25"].valid_max, KINDS["water_level"].valid_max]
    assert len(LIMITS) == 2
    with pytest.raises(ValueError):
        LIMITS.lo[0] = 1.0


@pytest.mark.parametrize("sensor, ts, value, want", [
    (0, 1.0, 10.0, OK),
    (1, 1.0, KINDS["water_level"].valid_min, OK),                 # both ends are possible
    (1, 1.0, KINDS["water_level"].valid_max, OK),
    (1, 1.0, np.nextafter(KINDS["water_level"].valid_max, np.inf), OUT_OF_RANGE),
    (0, 1.0, np.nextafter(KINDS["pm25"].valid_min, -np.inf), OUT_OF_RANGE),
    (0, np.nan, 10.0, NON_FINITE), (0, 1.0, np.inf, NON_FINITE), (0, -np.inf, 10.0, NON_FINITE),
    (2, 1.0, 10.0, UNKNOWN_SENSOR), (-1, 1.0, 10.0, UNKNOWN_SENSOR),
    (5, np.nan, -1e9, UNKNOWN_SENSOR),                              # unknown first, then non-finite ...
    (0, np.nan, -1e9, NON_FINITE),                                  # ... then out of range
])
def test_each_reading_gets_the_first_fault_that_applies(sensor: int, ts: float, value: float, want: int) -> None:
    got = faults(np.array([sensor]), np.array([ts]), np.array([value]), LIMITS)
    assert got.dtype == np.uint8 and got.tolist() == [want]


def test_a_batch_is_checked_reading_by_reading_and_counted_by_dead_letter_code() -> None:
    sensor = np.array([0, 1, 7, 0, 1, 0])
    ts = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0])
    value = np.array([1.0, 2.0, 3.0, 4.0, -1e6, 1e9])
    codes = faults(sensor, ts, value, LIMITS)
    assert codes.tolist() == [OK, OK, UNKNOWN_SENSOR, NON_FINITE, OUT_OF_RANGE, OUT_OF_RANGE]
    assert count_faults(codes) == {"unknown_sensor": 1, "non_finite": 1, "out_of_range": 2}
    assert count_faults(codes[:2]) == {}
    assert set(FAULT_CODES.values()) == {"unknown_sensor", "non_finite", "out_of_range"}


def test_empty_batches_and_an_empty_registry() -> None:
    empty = np.array([], dtype=np.int32), np.array([]), np.array([])
    assert faults(*empty, LIMITS).tolist() == []
    assert count_faults(faults(*empty, LIMITS)) == {}
    nobody = Limits.of(Registry(()))
    assert faults(np.array([0]), np.array([1.0]), np.array([1.0]), nobody).tolist() == [UNKNOWN_SENSOR]
