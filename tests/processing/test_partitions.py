"""The city split by partition: each partition's core scores its sensors exactly as one core over the city."""
from __future__ import annotations

import numpy as np
import pytest

from processing.batch import ReadingBatch
from processing.checkpoint import decode, encode
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.alerts import AlertList
from processing.partitions import PartitionMap, alert_evidence
from processing.registry import Registry
from simulators.city import CitySimulator

T0 = 1772412000.0


@pytest.fixture(scope="module")
def city() -> tuple[Registry, ReadingBatch]:
    registry = Registry.synthetic(40, "pm25", 60.0)
    batch, labels = CitySimulator(registry, seed=4, anomaly_rate=8.0).generate(T0, T0 + 6 * 3600)
    assert labels
    return registry, batch


def test_rows_and_local_indices_cover_every_sensor_once():
    rng = np.random.default_rng(1)
    part = rng.integers(0, 5, 200)
    pm = PartitionMap(part, partitions=5)
    rows = np.concatenate([pm.rows(p) for p in range(5)])
    assert sorted(rows.tolist()) == list(range(200))
    for p in range(5):
        assert (part[pm.rows(p)] == p).all()
        assert pm.local[pm.rows(p)].tolist() == list(range(pm.rows(p).size))


def test_bad_partitions_are_refused():
    with pytest.raises(ValueError, match="outside 0..2"):
        PartitionMap(np.array([0, 3]), partitions=3)
    with pytest.raises(ValueError, match=">= 1"):
        PartitionMap(np.array([], dtype=int), partitions=0)


def test_partition_cores_score_like_one_core_even_across_a_hand_over(city):
    """Each partition scored by its own core, checkpointed mid-stream and restored into a new
    core (the hand-over), gives the whole-city core's scores bit for bit."""
    registry, batch = city
    expected = AnomalyCore(registry).update(batch)
    pm = PartitionMap(np.arange(len(registry)) % 3, partitions=3)
    config = CoreConfig()
    score = np.full(len(batch), np.nan)
    alert = np.zeros(len(batch), bool)
    for p in range(3):
        sub = pm.registry_of(registry, p)
        rows = np.flatnonzero(pm.of[batch.sensor] == p)
        half = rows.size // 2
        core = AnomalyCore(sub, config)
        for part, fresh in ((rows[:half], False), (rows[half:], True)):
            if fresh:   # hand-over: the next owner loads the checkpoint into a core of its own
                ckpt = decode(encode(core.state_arrays(), {"next_offset": int(half)}, sub, config), sub, config)
                core = AnomalyCore(sub, config)
                core.restore_state(ckpt.arrays)
            local, misplaced = pm.split(p, batch.take(part))
            assert misplaced.size == 0
            s = core.update(local)
            score[part], alert[part] = s.score, s.alert
    np.testing.assert_array_equal(score, expected.score)
    np.testing.assert_array_equal(alert, expected.alert)
    assert alert.any()


def test_a_checkpoint_of_another_partition_is_refused(city):
    registry, _ = city
    pm = PartitionMap(np.arange(len(registry)) % 2, partitions=2)
    config = CoreConfig()
    zero, one = pm.registry_of(registry, 0), pm.registry_of(registry, 1)
    data = encode(AnomalyCore(zero, config).state_arrays(), {}, zero, config)
    with pytest.raises(ValueError, match="registry"):
        decode(data, one, config)


def test_split_names_the_misplaced_rows():
    pm = PartitionMap(np.array([0, 1, 0]), partitions=2)
    batch = ReadingBatch.from_arrays([0, 1, 2, 1], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    local, misplaced = pm.split(0, batch)
    assert local.sensor.tolist() == [0, 1] and local.ts.tolist() == [1.0, 3.0]
    assert misplaced.tolist() == [1, 3]


def test_alert_evidence_keeps_flagged_ending_and_newest_rows_in_time_order():
    # sensor 0 enters (t=1), stays (t=2), leaves (t=3: the run's end), t=6 is its newest; sensor 1 was in
    # alert and leaves at t=5 (its newest too); rows out of time order are taken in time order
    sensor = np.array([0, 1, 0, 0, 1, 0, 0])
    ts = np.array([3.0, 5.0, 1.0, 2.0, 4.0, 6.0, 5.5])
    alert = np.array([False, False, True, True, True, False, False])
    before = np.array([False, True])
    assert alert_evidence(sensor, ts, alert, before).tolist() == [0, 1, 2, 3, 4, 5]
    quiet = np.zeros(7, dtype=bool)       # nothing flagged, nothing carried over: only the newest of each
    assert alert_evidence(sensor, ts, quiet, np.array([False, False])).tolist() == [1, 5]
    assert alert_evidence(sensor, ts, quiet, np.array([True, False])).tolist() == [1, 2, 5]   # sensor 0 ends at t=1
    assert alert_evidence(sensor[:0], ts[:0], alert[:0], before).tolist() == []


def test_the_alert_list_makes_the_same_alerts_from_the_evidence_as_from_every_reading(city):
    """What lets an alerting owner read only the evidence: same alerts, same counts, batch after batch."""
    registry, batch = city
    scores = AnomalyCore(registry).update(batch)
    assert scores.alert.sum() > 20
    full, thin = AlertList(registry), AlertList(registry)
    before = np.zeros(len(registry), dtype=bool)
    kept = 0
    for rows in np.array_split(np.arange(len(batch)), 37):
        part = batch.take(rows)
        a, sc, r = scores.alert[rows], scores.score[rows], scores.reasons[rows]
        full.ingest(part, a, sc, r)
        ev = alert_evidence(part.sensor, part.ts, a, before)
        thin.ingest(part.take(ev), a[ev], sc[ev], r[ev])
        kept += ev.size
        last = np.lexsort((part.ts, part.sensor))
        before[part.sensor[last]] = a[last]           # the newest of each sensor wins
    assert full.alerts() == thin.alerts()
    assert len(full.alerts()) > 5
    assert kept < len(batch) / 4      # ~10 readings a sensor per batch here: mostly the newest of each
