"""The alerting owner's evidence ledger: copies dropped by (sensor, time), silence per partition, state kept."""
from __future__ import annotations

import numpy as np
import pytest

from processing.alerting.evidence import EvidenceLedger, LedgerError


def test_a_republished_range_is_dropped_row_by_row_and_the_new_rows_pass():
    led = EvidenceLedger(np.array([0, 0, 1, 1]), partitions=2)
    assert led.admit(np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 2.0, 2.0])).all()
    # a new owner of partition 0 publishes again from its checkpoint (t=2) and goes on (t=3)
    again = led.admit(np.array([0, 1, 0, 1]), np.array([2.0, 2.0, 3.0, 3.0]))
    assert again.tolist() == [False, False, True, True]
    assert led.seen.tolist()[:2] == [3.0, 3.0]
    assert np.isnan(led.seen[2:]).all()           # partition 1 never carried anything
    assert not led.admit(np.array([0]), np.array([2.5])).any()      # late: taken as a copy


def test_several_new_readings_of_a_sensor_in_one_record_all_pass():
    led = EvidenceLedger(np.array([0]), partitions=1)
    assert led.admit(np.array([0, 0, 0]), np.array([5.0, 6.0, 7.0])).tolist() == [True, True, True]
    assert led.now == 7.0


def test_silence_is_measured_against_the_sensors_own_partition():
    led = EvidenceLedger(np.array([0, 0, 1, 1]), partitions=2)
    led.admit(np.array([0, 1, 2, 3]), np.array([100.0, 100.0, 100.0, 100.0]))
    # partition 0 goes on to t=500 but sensor 1 stays quiet; partition 1 stops as a whole (its worker died)
    led.admit(np.array([0]), np.array([500.0]))
    seen = led.last_seen()
    assert led.now - seen[1] == 400.0            # silent for 400 s while its partition moved on
    assert led.now - seen[2] == 0.0              # a stopped partition accumulates no silence
    assert led.stalled(60.0) == [1]
    assert led.stalled(600.0) == []
    empty = EvidenceLedger(np.array([0, 1]), partitions=2)
    assert np.isnan(empty.last_seen()).all() and np.isnan(empty.now) and empty.stalled(1.0) == []


def test_the_state_round_trips_and_refuses_another_city():
    led = EvidenceLedger(np.array([0, 1, 1]), partitions=2)
    led.admit(np.array([1, 2]), np.array([10.0, 12.0]))
    back = EvidenceLedger.from_state(np.array([0, 1, 1]), 2, led.state())
    np.testing.assert_array_equal(back.seen, led.seen)
    np.testing.assert_array_equal(back.clock, led.clock)
    assert not back.admit(np.array([2]), np.array([12.0])).any()
    with pytest.raises(LedgerError, match="3 sensors on 2 partitions; this city has 4 sensors on 2"):
        EvidenceLedger.from_state(np.array([0, 1, 1, 0]), 2, led.state())
    with pytest.raises(LedgerError, match="cannot be read"):
        EvidenceLedger.from_state(np.array([0, 1, 1]), 2, {"sensors": 3})
