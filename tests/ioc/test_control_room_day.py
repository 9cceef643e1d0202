"""`ioc control-room-day`: the embedded pipeline over simulated hours, its alerts matched
against the anomalies the simulator injected."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ioc.control_room_day import run_day
from processing.alarm_rate import ISA_ACCEPTABLE_PER_H

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def six_hours():
    return run_day(seed=2, hours=6.0)


def test_most_alerts_of_a_default_run_match_an_injected_anomaly(six_hours) -> None:
    r = six_hours
    assert r.preroll_hours == 84.0 and r.speed == 60.0
    # measured (deterministic: seed 2, injected clock): 34 injected, 20 caught; 30 alerts, 2 of
    # them hard-limit breaches, 26 matching an injected anomaly (26 of the 28 statistical ones)
    assert r.injected >= 20 and r.caught / r.injected >= 0.5
    assert r.alerts >= 10 and r.matched / r.alerts >= 0.75
    assert r.statistical_matched_share >= 0.85


def test_alarm_rate_per_team_is_within_the_isa_figure(six_hours) -> None:
    rate = six_hours.rate
    assert rate.window_s == pytest.approx(6 * 3600, rel=1e-3)
    assert set(rate.teams.tolist()) >= {"giao_thong", "ha_tang", "moi_truong"}
    np.testing.assert_allclose(rate.per_hour, rate.count * 3600 / rate.window_s)
    assert rate.total_count == six_hours.alerts
    assert (rate.per_hour <= ISA_ACCEPTABLE_PER_H).all() and not rate.flood.any()


def test_the_command_prints_both_tables() -> None:
    done = subprocess.run([sys.executable, "-m", "ioc.cli", "control-room-day", "--seeds", "4", "--hours", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| 4 | " in done.stdout and "ISA-18.2" in done.stdout and "| **all** |" in done.stdout
    assert "84 h pre-roll, then 1 simulated hours" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "ioc.cli", "control-room-day", "--hours", "0"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--hours" in bad.stderr and "Traceback" not in bad.stderr
