"""The city simulator: grids, determinism, labelled anomalies, stream == generate."""
from __future__ import annotations

import numpy as np
import pytest

from processing.batch import ReadingBatch
from simulators.anomalies import ANOMALY_KINDS
from simulators.city import CitySimulator

MONDAY = 1772384400.0          # 2026-03-02 00:00 local (UTC+7)
DAY = 86400.0
T0, T1 = MONDAY, MONDAY + 5 * DAY


def per_sensor(batch: ReadingBatch, i: int) -> tuple[np.ndarray, np.ndarray]:
    m = batch.sensor == i
    return batch.ts[m], batch.value[m]


def test_grid_order_and_dtypes(city_registry):
    batch, _ = CitySimulator(city_registry, seed=1, anomaly_rate=0.0).generate(T0 + 123.0, T1)
    assert batch.sensor.dtype == np.int32 and batch.ts.dtype == np.float64
    assert np.all(np.diff(batch.ts) >= 0)
    assert batch.ts.min() >= T0 + 123.0 and batch.ts.max() < T1
    for i, spec in enumerate(city_registry.sensors):
        ts, _ = per_sensor(batch, i)
        assert np.all(ts % spec.interval_s == 0)
        assert np.all(np.diff(ts) == spec.interval_s)                 # complete grid without anomalies
        assert len(ts) == int(np.ceil(T1 / spec.interval_s) - np.ceil((T0 + 123.0) / spec.interval_s))


def test_equal_times_keep_sensor_order(city_registry):
    batch, _ = CitySimulator(city_registry, seed=1, anomaly_rate=0.0).generate(T0, T0 + DAY)
    same = batch.ts[:-1] == batch.ts[1:]
    assert same.any() and np.all(batch.sensor[1:][same] > batch.sensor[:-1][same])


def test_deterministic_for_a_seed(city_registry):
    a, la = CitySimulator(city_registry, seed=5, anomaly_rate=2.0).generate(T0, T1)
    b, lb = CitySimulator(city_registry, seed=5, anomaly_rate=2.0).generate(T0, T1)
    c, lc = CitySimulator(city_registry, seed=6, anomaly_rate=2.0).generate(T0, T1)
    for col in ("sensor", "ts", "value"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert la == lb and la != lc
    assert len(a.value) != len(c.value) or not np.array_equal(a.value, c.value)


def test_adding_a_sensor_changes_no_other(registry_of):
    small = registry_of([("A", "pm25", 300.0), ("B", "vehicle_count", 300.0)])
    big = registry_of([("Z", "feeder_load", 60.0), ("B", "vehicle_count", 300.0), ("A", "pm25", 300.0)])
    a, la = CitySimulator(small, seed=3, anomaly_rate=3.0).generate(T0, T1)
    b, lb = CitySimulator(big, seed=3, anomaly_rate=3.0).generate(T0, T1)
    for sid in ("A", "B"):
        ta, va = per_sensor(a, small.index_of(sid))
        tb, vb = per_sensor(b, big.index_of(sid))
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(va, vb)
        assert [x for x in la if x.sensor_id == sid] == [x for x in lb if x.sensor_id == sid]


def test_anomalies_change_readings_only_inside_their_labels(city_registry):
    clean, none = CitySimulator(city_registry, seed=9, anomaly_rate=0.0).generate(T0, T1)
    dirty, labels = CitySimulator(city_registry, seed=9, anomaly_rate=3.0).generate(T0, T1)
    assert none == [] and len(labels) > 20
    assert {lab.kind for lab in labels} == set(ANOMALY_KINDS)
    for i, spec in enumerate(city_registry.sensors):
        tc, vc = per_sensor(clean, i)
        td, vd = per_sensor(dirty, i)
        mine = [lab for lab in labels if lab.sensor_id == spec.id]
        inside = np.zeros(tc.size, dtype=bool)
        for lab in mine:
            span = (tc >= lab.start) & (tc <= lab.end)
            assert span.any() and not (inside & span).any()             # non-overlapping
            inside |= span
            if lab.kind == "dropout":
                assert not np.isin(tc[span], td).any()                  # the whole span is missing
                continue
            now = vd[np.searchsorted(td, tc[span])]
            if lab.kind == "stuck":
                assert np.all(now == now[0]) and now[0] == vc[span][0]
            elif lab.kind in ("spike", "level_shift"):
                assert np.all(now != vc[span]), lab
            else:                                                        # drift, burst, contextual
                assert np.mean(now != vc[span]) > 0.5, lab
        missing = ~np.isin(tc, td)
        dropped = np.zeros(tc.size, dtype=bool)
        for lab in mine:
            if lab.kind == "dropout":
                dropped |= (tc >= lab.start) & (tc <= lab.end)
        np.testing.assert_array_equal(missing, dropped)                  # dropout removes exactly its span
        keep = ~inside
        np.testing.assert_array_equal(vd[np.searchsorted(td, tc[keep])], vc[keep])


def test_labels_respect_warmup_and_kind_rules(city_registry):
    sim = CitySimulator(city_registry, seed=2, anomaly_rate=4.0)
    batch, labels = sim.generate(T0, T1)
    assert all(lab.start >= T0 + 0.2 * (T1 - T0) for lab in labels)
    assert all(lab.start <= lab.end < T1 for lab in labels)
    assert labels == sorted(labels, key=lambda x: (x.start, city_registry.index_of(x.sensor_id)))
    assert not any(lab.kind == "contextual" and lab.sensor_id == "BG-water_level" for lab in labels)
    per_day = len(labels) / len(city_registry) / (0.8 * 5)
    assert 2.0 < per_day < 6.0
    for lab in labels:                                                   # bounds are reading times
        iv = city_registry[lab.sensor_id].interval_s
        assert lab.start % iv == 0 and lab.end % iv == 0
    only = CitySimulator(city_registry, seed=2, anomaly_rate=4.0, kinds=("spike", "stuck")).generate(T0, T1)[1]
    assert {lab.kind for lab in only} == {"spike", "stuck"}
    spikes = [lab for lab in only if lab.kind == "spike"]
    assert all((lab.end - lab.start) / city_registry[lab.sensor_id].interval_s <= 2 for lab in spikes)


def test_spike_direction_follows_the_kind(registry_of):
    reg = registry_of([("S", "avg_speed", 300.0), ("C", "vehicle_count", 300.0)])
    clean, _ = CitySimulator(reg, seed=4, anomaly_rate=0.0).generate(T0, T0 + 20 * DAY)
    dirty, labels = CitySimulator(reg, seed=4, anomaly_rate=6.0, kinds=("spike",)).generate(T0, T0 + 20 * DAY)
    assert len(labels) > 20
    for lab in labels:
        i = reg.index_of(lab.sensor_id)
        tc, vc = per_sensor(clean, i)
        td, vd = per_sensor(dirty, i)
        at = (td >= lab.start) & (td <= lab.end)
        delta = vd[at] - vc[np.isin(tc, td[at])]
        assert np.all(delta < 0) if lab.sensor_id == "S" else np.all(delta > 0)


def test_stream_equals_generate(city_registry):
    sim = CitySimulator(city_registry, seed=13, anomaly_rate=3.0)
    t0, t1 = T0 + 1234.5, T0 + 3.5 * DAY
    batch, labels = sim.generate(t0, t1)
    stream = sim.stream(t0, warmup_s=0.2 * (t1 - t0))
    rng = np.random.default_rng(0)
    clock = np.sort(rng.uniform(t0, t1, 40)).tolist() + [np.nextafter(t1, -np.inf)]
    parts, got = [], []
    seen_until = t0
    for now in clock:
        b, labs = stream.advance(now)
        assert np.all(b.ts <= now) and np.all(b.ts >= seen_until)
        assert all(lab.start <= now for lab in labs)
        parts.append(b)
        got.extend(labs)
        seen_until = now
    assert stream.now == clock[-1]
    streamed = ReadingBatch.concat(parts)
    for col in ("sensor", "ts", "value"):
        np.testing.assert_array_equal(getattr(streamed, col), getattr(batch, col))
    assert got == labels
    assert len(stream.advance(clock[-1])[0]) == 0                        # each reading once


def test_stream_first_call_includes_t0_and_never_goes_back(city_registry):
    sim = CitySimulator(city_registry, seed=1, anomaly_rate=0.0)
    stream = sim.stream(T0)
    first, _ = stream.advance(T0)
    assert len(first) == len(city_registry) and np.all(first.ts == T0)
    assert len(stream.advance(T0 - 600.0)[0]) == 0
    nxt, _ = stream.advance(T0 + 900.0)
    assert nxt.ts.min() > T0


def test_jitter_delays_readings_within_the_interval(city_registry):
    sim = CitySimulator(city_registry, seed=1, anomaly_rate=1.0, jitter_s=30.0)
    batch, _ = sim.generate(T0, T0 + 2 * DAY)
    iv = city_registry.interval_s[batch.sensor]
    late = batch.ts - np.floor(batch.ts / iv) * iv
    assert np.all(late < 30.0) and late.max() > 0
    assert np.all(np.diff(batch.ts) >= 0)
    stream = sim.stream(T0, warmup_s=0.2 * 2 * DAY)
    streamed = ReadingBatch.concat([stream.advance(T0 + h * 3600.0)[0] for h in range(1, 48)]
                                   + [stream.advance(np.nextafter(T0 + 2 * DAY, 0))[0]])
    np.testing.assert_array_equal(streamed.ts, batch.ts)
    np.testing.assert_array_equal(streamed.value, batch.value)


def test_bad_arguments(city_registry):
    with pytest.raises(ValueError, match="seed"):
        CitySimulator(city_registry, seed=-1, anomaly_rate=1.0)
    with pytest.raises(ValueError, match="anomaly_rate"):
        CitySimulator(city_registry, seed=1, anomaly_rate=-1.0)
    with pytest.raises(ValueError, match="unknown anomaly kinds"):
        CitySimulator(city_registry, seed=1, anomaly_rate=1.0, kinds=("spike", "meteor"))
    with pytest.raises(ValueError, match="jitter_s"):
        CitySimulator(city_registry, seed=1, anomaly_rate=1.0, jitter_s=300.0)
    with pytest.raises(ValueError, match="t0 < t1"):
        CitySimulator(city_registry, seed=1, anomaly_rate=1.0).generate(T1, T0)
