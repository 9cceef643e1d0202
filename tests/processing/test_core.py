"""Behaviour of the anomaly core: every detector catches its anomaly, clean data stays quiet,
bad input neither crashes nor poisons the state, and results do not depend on batching."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from processing import kernel
from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry, SensorSpec

T0 = 1_772_384_400.0  # 2026-03-02 00:00 +07:00
STEP = 300.0


def one_sensor(values: np.ndarray, *, start: float = T0, step: float = STEP) -> ReadingBatch:
    return ReadingBatch.from_arrays(np.zeros(len(values)), start + step * np.arange(len(values)), values)


def noise(n: int, seed: int = 0, level: float = 50.0, sd: float = 2.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, sd, n)


def daily(n: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n) * STEP
    return 100 + 60 * np.sin(2 * np.pi * t / 86400.0) + np.random.default_rng(seed).normal(0, 2, n)


def registry(n: int = 1, **limits: float) -> Registry:
    return Registry(tuple(SensorSpec(id=f"s{i}", name=f"s{i}", domain="environment", kind="pm25", unit="µg/m³",
                                     ward="w", lon=106.2, lat=21.27, interval_s=STEP, **limits)
                          for i in range(n)))


def run(values: np.ndarray, reg: Registry | None = None, config: CoreConfig | None = None):
    core = AnomalyCore(reg or registry(), config)
    return core, core.update(one_sensor(values))


@pytest.mark.parametrize("seed", [0, 5, 9])
def test_clean_noise_stays_quiet(seed: int) -> None:
    _, res = run(noise(3000, seed=seed))
    assert not res.alert.any()
    assert (res.score >= 0.5).mean() < 0.005   # a new all-time high now and then, no more
    assert np.all((res.score >= 0) & (res.score <= 1))


def test_clean_daily_cycle_stays_quiet() -> None:
    _, res = run(daily(288 * 7))
    assert not res.alert.any()
    assert (res.score >= 0.5).mean() < 0.005


@pytest.mark.parametrize("offset", [40.0, -40.0])
def test_spike_is_caught_with_deviation_and_rate_reasons(offset: float) -> None:
    v = noise(1000)
    v[800] += offset
    _, res = run(v)
    assert res.alert[800]
    assert res.score[800] > 0.9
    assert res.reasons[800] & Reason.DEVIATION and res.reasons[800] & Reason.RATE
    assert not res.alert[:800].any()


def test_level_shift_is_caught() -> None:
    v = noise(1200)
    v[900:] += 25.0
    _, res = run(v)
    assert res.alert[900:905].any()
    assert res.score[900:905].max() > 0.9


def test_slow_drift_is_caught_before_it_ends() -> None:
    # on day 7, once the time-of-day baseline and its level-gap scales have settled
    v = noise(2500)
    v[2000:2100] += np.linspace(0.0, 20.0, 100)   # 10 noise scales over 100 readings
    _, res = run(v)
    onset = np.flatnonzero(res.alert)
    assert onset.size and 2000 <= onset[0] < 2050
    assert res.reasons[onset[0]] & Reason.SHIFT
    assert not res.alert[:2000].any()


def test_variance_burst_is_caught() -> None:
    v = noise(1500)
    v[1000:1030] += np.random.default_rng(7).normal(0, 10.0, 30)   # noise x5
    _, res = run(v)
    assert res.alert[1000:1030].any() and not res.alert[:1000].any()
    assert np.any(res.reasons[1000:1030] & (Reason.BURST | Reason.DEVIATION))


def test_contextual_value_at_wrong_time_of_day_is_caught() -> None:
    n = 288 * 6
    v = daily(n)
    # on day 5 at the daily peak (06:00 UTC+0 in this synthetic cycle), read the trough's value
    peak = 288 * 5 + 72
    v[peak:peak + 6] = v[peak + 144:peak + 150]
    _, res = run(v)
    hit = res.reasons[peak:peak + 6] & Reason.SEASONAL
    assert hit.any() and res.alert[peak:peak + 6].any()


def test_flatline_is_caught() -> None:
    v = noise(1000)
    v[700:760] = v[700]
    _, res = run(v)
    stuck = (res.reasons & Reason.STUCK) > 0
    assert stuck[700:760].any() and not stuck[:700].any()
    assert res.alert[700:760].any()


def test_gap_is_flagged_and_never_reported_sensors_are_known() -> None:
    # when a sensor is *silent* is the alerting's rule (tests/processing/test_alerts.py)
    core = AnomalyCore(registry(2))
    v = noise(200)
    core.update(one_sensor(v))
    last = T0 + STEP * 199
    assert core.never_reported().tolist() == [1]
    res = core.update(ReadingBatch.from_arrays([0], [last + 10 * STEP], [50.0]))
    assert res.reasons[0] & Reason.GAP and res.alert[0]


def test_hard_limit_scores_one_at_once() -> None:
    v = noise(100)
    v[10] = 200.0  # even during warm-up
    _, res = run(v, registry(limit_high=150.0))
    assert res.score[10] == 1.0 and res.alert[10] and res.reasons[10] & Reason.LIMIT


def test_nan_inf_do_not_crash_or_poison() -> None:
    v = noise(600)
    dirty = v.copy()
    dirty[[300, 301, 450]] = [np.nan, np.inf, -np.inf]
    core_clean, _ = run(np.delete(v, [300, 301, 450]))
    core_dirty, res = run(dirty)
    assert np.all(res.reasons[[300, 301, 450]] & Reason.INVALID)
    assert res.score[[300, 301, 450]].max() == 0.0
    assert np.isfinite(res.score).all()
    np.testing.assert_allclose(core_dirty.baseline()[0], core_clean.baseline()[0])


def test_duplicate_and_out_of_order_readings_are_scored_not_learned() -> None:
    core = AnomalyCore(registry())
    core.update(one_sensor(noise(300)))
    before = core.baseline()
    last = T0 + STEP * 299
    res = core.update(ReadingBatch.from_arrays([0, 0], [last, last - 600.0], [9999.0, -9999.0]))
    assert np.all(res.reasons & Reason.LATE)
    np.testing.assert_array_equal(core.baseline()[0], before[0])
    np.testing.assert_array_equal(core.last_seen(), [last])


def test_results_do_not_depend_on_batching_or_other_sensors() -> None:
    rng = np.random.default_rng(3)
    n, sensors = 400, 5
    values = 20 + rng.normal(0, 1, (n, sensors))
    values[300, 2] += 30
    ts = T0 + STEP * np.arange(n)
    whole = ReadingBatch.from_arrays(np.tile(np.arange(sensors), n), np.repeat(ts, sensors), values.ravel())
    a = AnomalyCore(registry(sensors)).update(whole)

    b_core = AnomalyCore(registry(sensors))
    parts = [b_core.update(whole.take(slice(k * sensors, (k + 1) * sensors))) for k in range(n)]
    np.testing.assert_allclose(a.score, np.concatenate([p.score for p in parts]))

    shuffled = np.random.default_rng(0).permutation(len(whole))  # arrival order within the batch
    c = AnomalyCore(registry(sensors)).update(whole.take(shuffled))
    np.testing.assert_allclose(c.score, a.score[shuffled])

    alone = AnomalyCore(registry(1)).update(one_sensor(values[:, 2]))
    np.testing.assert_allclose(a.score[2::sensors], alone.score)


def test_a_batch_in_sensor_order_scores_as_in_time_order_without_a_sort(monkeypatch) -> None:
    rng = np.random.default_rng(4)
    n, sensors = 300, 4
    values = 20 + rng.normal(0, 1, (n, sensors))
    values[200, 1] += 30
    values[250:, 3] += 8
    ts = T0 + STEP * np.arange(n)
    whole = ReadingBatch.from_arrays(np.tile(np.arange(sensors), n), np.repeat(ts, sensors), values.ravel())
    timed = AnomalyCore(registry(sensors))
    a = timed.update(whole)
    order = np.lexsort((whole.ts, whole.sensor))
    by_sensor = whole.by_sensor()
    assert by_sensor.in_sensor_order() and not whole.in_sensor_order() and (by_sensor.ts == whole.ts[order]).all()
    calls = []
    monkeypatch.setattr(np, "argsort", lambda *a, **k: calls.append(1) or np.sort(*a, **k))
    grouped = AnomalyCore(registry(sensors))
    b = grouped.update(by_sensor)
    assert calls == []                                        # not sorted again
    np.testing.assert_array_equal(b.score, a.score[order])
    np.testing.assert_array_equal(b.alert, a.alert[order])
    assert b.alert.any()
    for name, arr in timed.state_arrays().items():           # and it learned the same
        np.testing.assert_array_equal(grouped.state_arrays()[name], arr, err_msg=name)


def test_state_is_bounded_by_sensors_times_window() -> None:
    cfg = CoreConfig(window=64)
    core = AnomalyCore(registry(10), cfg)
    size = core.state_bytes()
    for k in range(5):
        core.update(ReadingBatch.from_arrays(np.arange(10), np.full(10, T0 + STEP * k), np.ones(10)))
    assert core.state_bytes() == size
    fields = len(kernel.FIELDS)
    season = cfg.day_types * cfg.seasonal_slots * len(kernel.SEASON_FIELDS)
    assert size == 10 * (8 * (fields + season + 2 * cfg.short) + 28 * cfg.window)


def test_recent_returns_the_ring_in_time_order() -> None:
    core = AnomalyCore(registry(), CoreConfig(window=16))
    core.update(one_sensor(np.arange(40, dtype=float)))
    recent = core.recent(0)
    np.testing.assert_array_equal(recent["value"], np.arange(24, 40, dtype=float))
    assert np.all(np.diff(recent["ts"]) > 0)


def test_unknown_sensor_index_is_refused() -> None:
    with pytest.raises(IndexError):
        AnomalyCore(registry()).update(ReadingBatch.from_arrays([1], [T0], [1.0]))


def river(n: int, **limits: float) -> Registry:
    return Registry((SensorSpec(id="r", name="r", domain="environment", kind="water_level", unit="m", ward="w",
                                lon=106.2, lat=21.27, interval_s=STEP, **limits),))


def test_a_step_faster_than_the_kind_can_change_alerts_from_the_first_readings() -> None:
    v = 3.0 + np.random.default_rng(1).normal(0, 0.005, 60)
    v[30:] += 2.5                                           # 2.5 m in five minutes: no river does that
    _, res = run(v, river(1))
    assert res.alert[30] and res.reasons[30] & Reason.RATE
    assert not res.alert[:30].any()                          # an hour and a half of data: nothing learned yet


def test_a_gauge_read_every_second_steps_by_its_noise_and_that_is_no_impossible_rate() -> None:
    reg = Registry((dataclasses.replace(river(1).sensors[0], interval_s=1.0),))
    rng = np.random.default_rng(3)
    v = np.round(3.0 + rng.normal(0, 0.02, 600), 2)          # 1 cm steps each second: 36 m/h "rates"
    ts = T0 + np.arange(600, dtype=np.float64)
    res = AnomalyCore(reg).update(ReadingBatch.from_arrays(np.zeros(600, dtype=np.int64), ts, v))
    assert not (res.reasons & Reason.RATE).any() and not res.alert.any()
    v[400:] += 2.5                                           # ... but a 2.5 m jump in a second still is
    res = AnomalyCore(reg).update(ReadingBatch.from_arrays(np.zeros(600, dtype=np.int64), ts, v))
    assert res.alert[400] and res.reasons[400] & Reason.RATE


def test_a_fast_but_possible_flood_rise_is_no_fault_and_other_kinds_may_jump() -> None:
    v = 3.0 + np.random.default_rng(2).normal(0, 0.005, 60)
    v[30:42] += np.linspace(0.0, 1.5, 12)                    # 1.5 m in an hour: a typhoon flood, not a fault
    v[42:] += 1.5
    _, res = run(v, river(1))
    assert not res.alert.any()                               # (baselines unlearned: the flood warning is a limit's job)
    pm = noise(60, level=20.0, sd=1.0)
    pm[30:] += 200.0                                         # smoke: particulates can jump
    _, res = run(pm)
    assert not res.alert.any()
