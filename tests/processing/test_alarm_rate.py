"""Alarm-rate figures (ISA-18.2 / EEMUA 191): counts, rates, nuisance share, floods."""
from __future__ import annotations

import numpy as np
import pytest

from processing.alarm_rate import (FLOOD_COUNT, ISA_ACCEPTABLE_PER_H, alarm_rate, peak_count, rating)

NOW = 100_000.0
NAN = float("nan")


def test_counts_only_alarms_opened_inside_the_window_per_team() -> None:
    opened = np.array([NOW - 4000, NOW - 3600, NOW - 3599, NOW - 100, NOW - 50, NOW, NOW + 1])
    cleared = np.full(opened.size, NAN)
    team = np.array(["a", "a", "a", "b", "a", "b", "b"])
    r = alarm_rate(opened, cleared, team, NOW, 3600.0)
    # (now - 3600, now]: the one at exactly now - 3600 and the future one are out
    assert r.total_count == 4 and r.total_per_hour == pytest.approx(4.0)
    assert r.teams.tolist() == ["a", "b"] and r.count.tolist() == [2, 2]
    assert r.per_hour.tolist() == pytest.approx([2.0, 2.0])
    half = alarm_rate(opened, cleared, team, NOW, 1800.0)     # 3 alarms in half an hour = 6 per hour
    assert half.total_count == 3 and half.total_per_hour == pytest.approx(6.0)
    assert r.team("b")["count"] == 2 and r.team("nobody")["count"] == 0


def test_nuisance_share_is_alarms_that_cleared_by_themselves_within_ten_minutes() -> None:
    opened = np.array([NOW - 3000, NOW - 2000, NOW - 1000, NOW - 900])
    cleared = np.array([NOW - 3000 + 60, NOW - 2000 + 600, NOW - 1000 + 601, NAN])
    team = np.array(["x", "y", "x", "y"])
    r = alarm_rate(opened, cleared, team, NOW, 3600.0)
    assert r.total_nuisance == 2 and r.total_nuisance_share == pytest.approx(0.5)
    assert r.nuisance.tolist() == [1, 1] and r.nuisance_share.tolist() == pytest.approx([0.5, 0.5])
    strict = alarm_rate(opened, cleared, team, NOW, 3600.0, nuisance_s=60.0)
    assert strict.total_nuisance == 1


def test_flood_is_ten_alarms_in_ten_minutes() -> None:
    t = NOW - 1000 + np.arange(FLOOD_COUNT) * 60.0          # 10 alarms 60 s apart: span 540 s
    team = np.array(["a"] * 5 + ["b"] * 5)
    r = alarm_rate(t, np.full(t.size, NAN), team, NOW, 3600.0)
    assert r.total_peak == FLOOD_COUNT and r.total_flood
    assert r.peak.tolist() == [5, 5] and not r.flood.any()
    spread = NOW - 3000 + np.arange(FLOOD_COUNT) * 67.0    # span 603 s: never 10 within 600 s
    assert peak_count(spread) == 9
    assert not alarm_rate(spread, np.full(10, NAN), np.array(["a"] * 10), NOW, 3600.0).total_flood


def test_empty_input_and_validation() -> None:
    r = alarm_rate(np.array([]), np.array([]), np.array([], dtype=str), NOW, 3600.0)
    assert r.total_count == 0 and r.total_per_hour == 0.0 and np.isnan(r.total_nuisance_share)
    assert r.teams.size == 0 and r.total_peak == 0 and not r.total_flood
    with pytest.raises(ValueError):
        alarm_rate(np.array([1.0]), np.array([]), np.array(["a"]), NOW, 3600.0)
    with pytest.raises(ValueError):
        alarm_rate(np.array([]), np.array([]), np.array([]), NOW, 0.0)


def test_rating_follows_isa_18_2() -> None:
    assert rating(0.0) == "acceptable" and rating(ISA_ACCEPTABLE_PER_H) == "acceptable"
    assert rating(7.0) == "manageable" and rating(12.0) == "manageable"
    assert rating(12.5) == "overloaded" and rating(1.0, flood=True) == "flood"
