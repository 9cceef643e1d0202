"""Sunrise and sunset from coordinates and date, and the solar clock of streetlights."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from processing.sun import solar_phase, sun_day, sun_times

VN = 7 * 3600


def local_day(y: int, m: int, d: int) -> float:
    return float((dt.date(y, m, d) - dt.date(1970, 1, 1)).days)


def hm(seconds: float) -> float:
    return seconds / 3600.0


@pytest.mark.parametrize(("date", "rise", "set_"), [
    # Hà Nội (21.03 N, 105.85 E), published almanac times, local (UTC+7)
    ((2026, 6, 21), 5 + 13 / 60, 18 + 42 / 60),
    ((2026, 12, 21), 6 + 31 / 60, 17 + 20 / 60),
    ((2026, 3, 20), 6 + 4 / 60, 18 + 11 / 60),
])
def test_hanoi_matches_the_almanac_within_four_minutes(date, rise, set_) -> None:
    r, s = sun_day(local_day(*date), 21.03, 105.85, VN)
    assert abs(hm(r) - rise) < 4 / 60 and abs(hm(s) - set_) < 4 / 60


def test_equinox_day_at_the_equator_is_twelve_hours_and_a_few_minutes() -> None:
    r, s = sun_day(local_day(2026, 3, 20), 0.0, 105.0, VN)   # 105 E is the zone's own meridian
    assert 12.0 < hm(s - r) < 12.2                          # refraction adds ~6 minutes
    assert abs(hm(r + s) / 2 - 12.0) < 0.2                   # solar noon near 12:00 (equation of time)


def test_polar_night_and_day_clamp_to_the_whole_day() -> None:
    r, s = sun_day(local_day(2026, 12, 21), 80.0, 15.0, 3600)
    assert s - r <= 1.0
    r, s = sun_day(local_day(2026, 6, 21), 80.0, 15.0, 3600)
    assert s - r >= 86399.0


def test_vectorised_times_equal_the_scalar_ones_and_move_a_little_each_day() -> None:
    days = local_day(2026, 1, 1) + np.arange(365)
    rise, set_ = sun_times(days, 21.27, 106.19, VN)
    for k in (0, 100, 364):
        assert (rise[k], set_[k]) == sun_day(days[k], 21.27, 106.19, VN)
    assert np.abs(np.diff(set_)).max() < 90                  # at most a minute and a half a day
    assert hm(set_.max() - set_.min()) > 1.0                 # over a year, more than an hour


def test_solar_clock_puts_sunrise_at_six_and_sunset_at_eighteen() -> None:
    rise, set_ = 6.25 * 3600, 17.9 * 3600
    assert solar_phase(rise, rise, set_) == pytest.approx(6 * 3600)
    assert solar_phase(set_, rise, set_) == pytest.approx(18 * 3600)
    sod = np.arange(0, 86400, 60.0)
    phase = np.array([solar_phase(x, rise, set_) for x in sod])
    assert ((phase >= 0) & (phase < 86400)).all()
    shifted = (phase - solar_phase(0.0, rise, set_)) % 86400  # monotone through the day from midnight
    assert (np.diff(shifted) > 0).all()
    # a lamp that switches 10 minutes after sunset sits in the same solar minute all year
    a = solar_phase(set_ + 600, rise, set_)
    b = solar_phase(set_ - 1800 + 600, rise - 1200, set_ - 1800)
    assert abs(a - b) < 120
