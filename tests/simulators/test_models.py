"""Sensor models: determinism, daily/weekly shape and ranges per kind."""
from __future__ import annotations

import numpy as np
import pytest

from processing.kinds import KINDS
from processing.sun import sun_times
from simulators.models import (DIURNAL_KINDS, SPIKE_DIRECTION, baseline, expected, finalize, local_hour,
                               local_weekday, sensor_scale)

MONDAY = 1772384400.0          # 2026-03-02 00:00 local (UTC+7)
DAY = 86400.0
WEEK = MONDAY + np.arange(0, 7 * DAY, 300.0)


def at(day: int, hour: float) -> np.ndarray:
    """Instants at a local hour on day ``day`` (0 = Monday) of four consecutive weeks."""
    return MONDAY + day * DAY + hour * 3600.0 + np.arange(4) * 7 * DAY


def hourly_mean(kind: str, hour: float, days=range(5), **kw) -> float:
    ts = np.concatenate([at(d, hour) + off for d in days for off in np.arange(-900, 901, 300.0)])
    return float(np.mean(baseline(kind, ts, np.random.default_rng(0), **kw)))


def test_local_time_helpers():
    assert local_hour(np.array([MONDAY]))[0] == 0.0
    assert local_weekday(np.array([MONDAY, MONDAY + 5 * DAY, MONDAY + 6.9 * DAY])).tolist() == [0, 5, 6]
    assert local_hour(np.array([MONDAY]), utc_offset_s=0)[0] == 17.0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_deterministic_per_seed(kind):
    a = baseline(kind, WEEK, np.random.default_rng(7))
    b = baseline(kind, WEEK, np.random.default_rng(7))
    c = baseline(kind, WEEK, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == WEEK.shape and a.dtype == np.float64


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_values_physically_possible(kind):
    v = baseline(kind, WEEK, np.random.default_rng(1), scale=1.4, weather_key=3)
    assert np.all((v >= KINDS[kind].valid_min) & (v <= KINDS[kind].valid_max))
    assert np.all(np.isfinite(v))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_slow_variation_does_not_depend_on_the_span(kind):
    """Generating in pieces gives the same noise-free values (chunking is safe)."""
    whole = expected(kind, WEEK, weather_key=11)
    parts = np.concatenate([expected(kind, p, weather_key=11) for p in np.array_split(WEEK, 9)])
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-12)
    assert not np.allclose(expected(kind, WEEK, weather_key=12), whole)   # the key matters


def test_traffic_rush_hours_and_weekends():
    night = hourly_mean("vehicle_count", 3.0)
    morning = hourly_mean("vehicle_count", 7.0)
    evening = hourly_mean("vehicle_count", 17.5)
    midday = hourly_mean("vehicle_count", 12.5)
    assert morning > 5 * night and evening > 5 * night
    assert morning > midday and evening > midday
    v = baseline("vehicle_count", WEEK, np.random.default_rng(0))
    assert np.array_equal(v, np.round(v))                        # whole vehicles
    sat_7, sat_9 = hourly_mean("vehicle_count", 7.0, [5]), hourly_mean("vehicle_count", 9.0, [5])
    assert sat_9 > sat_7                                         # later morning peak
    assert hourly_mean("vehicle_count", 7.0, [5, 6]) < 0.7 * morning   # weekends lower
    assert hourly_mean("vehicle_count", 17.5, [5, 6]) < evening


def test_speed_dips_and_occupancy_follows_traffic():
    assert 40 < hourly_mean("avg_speed", 3.0) < 50
    assert hourly_mean("avg_speed", 7.0) < hourly_mean("avg_speed", 3.0) - 10
    assert hourly_mean("avg_speed", 17.5) < hourly_mean("avg_speed", 12.5)
    assert 2 < hourly_mean("occupancy", 3.0) < 6
    assert 28 < hourly_mean("occupancy", 17.5) < 45


def test_particulates_peak_at_rush_and_pm10_ratio():
    for kind in ("pm25", "pm10"):
        assert hourly_mean(kind, 7.5, weather_key=2) > 1.5 * hourly_mean(kind, 13.5, weather_key=2)
        assert hourly_mean(kind, 20.5, weather_key=2) > 1.5 * hourly_mean(kind, 13.5, weather_key=2)
    ratio = expected("pm10", WEEK, weather_key=2) / expected("pm25", WEEK, weather_key=2)
    np.testing.assert_allclose(ratio, 1.6)
    # day-to-day weather: daily means differ noticeably
    daily = expected("pm25", WEEK, weather_key=2).reshape(7, -1).mean(axis=1)
    assert daily.max() / daily.min() > 1.1


def test_noise_temperature_water_power():
    assert 48 < hourly_mean("noise_laeq", 3.0) < 54
    assert 63 < hourly_mean("noise_laeq", 17.5) < 71
    hours = np.arange(24)
    temp = [hourly_mean("temperature", h) for h in hours]
    assert 12 <= int(np.argmax(temp)) <= 16 and 1 <= int(np.argmin(temp)) <= 5
    assert 22 < min(temp) and max(temp) < 35
    assert 2.4 < hourly_mean("water_pressure", 3.0) < 2.6
    assert 1.7 < hourly_mean("water_pressure", 6.75) < 1.95
    p, f = expected("water_pressure", WEEK), expected("water_flow", WEEK)
    assert np.corrcoef(p, f)[0, 1] < -0.99                       # flow mirrors pressure
    load_day = hourly_mean("feeder_load", 11.0)
    assert load_day > 1.5 * hourly_mean("feeder_load", 3.0)
    assert hourly_mean("feeder_load", 19.5) > load_day            # evening peak
    assert hourly_mean("feeder_load", 11.0, [6]) < 0.85 * load_day   # Sunday lower


def test_streetlights_switch_at_dusk_and_dawn():
    assert hourly_mean("streetlight_current", 12.0) < 0.5
    assert 8 < hourly_mean("streetlight_current", 0.0) < 15
    assert 8 < hourly_mean("streetlight_current", 19.0) < 15
    v = baseline("streetlight_current", WEEK, np.random.default_rng(0))
    h = local_hour(WEEK)
    on = v > 5
    # the photocell follows the sun at Bắc Giang (21.27 N, 106.19 E): in early March the sun
    # rises about 06:15 and sets about 18:00; lamps switch within ~16 minutes of those
    day = np.floor((WEEK + 7 * 3600) / DAY)
    rise, sset = sun_times(day, 21.27, 106.19, 7 * 3600)
    rise_h, set_h = rise / 3600.0, sset / 3600.0
    assert (6.1 < rise_h).all() and (rise_h < 6.6).all() and (17.9 < set_h).all() and (set_h < 18.3).all()
    assert on[(h > set_h + 0.3) | (h < rise_h - 0.3)].all()
    assert not on[(h > rise_h) & (h < set_h)].any()
    assert len(np.unique(v)) == len(v)                          # never an exact flatline


def test_streetlight_switch_moves_with_the_season_and_the_place():
    # the same clock minute is dark in December and light in June; further west is later
    def switch_on_hour(start: float, lat: float = 21.27, lon: float = 106.19) -> float:
        ts = start + np.arange(0, DAY, 60.0)
        v = baseline("streetlight_current", ts, np.random.default_rng(0), place=(lat, lon))
        evening = local_hour(ts) > 12
        return float(local_hour(ts)[evening][np.argmax(v[evening] > 5)])
    december, june = MONDAY - 90 * DAY, MONDAY + 110 * DAY
    assert switch_on_hour(june) - switch_on_hour(december) > 1.0
    assert switch_on_hour(MONDAY, lon=103.0) - switch_on_hour(MONDAY) > 0.15   # 3.2 degrees west: ~13 min


def test_river_is_smooth_and_quiet():
    v = baseline("water_level", WEEK, np.random.default_rng(0), weather_key=5)
    assert 1.5 < v.min() and v.max() < 4.0
    assert np.std(np.diff(v)) < 0.01


def test_helpers():
    assert set(SPIKE_DIRECTION) == set(KINDS)
    assert "water_level" not in DIURNAL_KINDS and "vehicle_count" in DIURNAL_KINDS
    assert finalize("vehicle_count", np.array([-3.0, 2.4])).tolist() == [0.0, 2.0]
    s = [sensor_scale("vehicle_count", np.random.default_rng(i)) for i in range(50)]
    assert 0.6 <= min(s) and max(s) <= 1.4
    with pytest.raises(ValueError, match="unknown sensor kind"):
        baseline("rainfall", WEEK, np.random.default_rng(0))
