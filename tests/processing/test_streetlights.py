"""A streetlight circuit through the whole core: its dusk and dawn switching, which follow
the sun, never alert; a circuit that stays dark after dusk does."""
from __future__ import annotations

import numpy as np
import pytest

from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry, SensorSpec
from processing.sun import sun_times
from simulators.models import baseline

LAT, LON, VN = 21.2753, 106.1956, 7 * 3600
START = 1_772_384_400.0           # 2026-03-02 00:00 local
STEP = 300.0
DAYS = 28                         # four weeks: sunset moves ~10 minutes over them
REG = Registry((SensorSpec(id="BG-UTL-046", name="tủ số 1", domain="utility", kind="streetlight_current",
                           unit="A", ward="Ngô Quyền", lon=LON, lat=LAT, interval_s=STEP, limit_high=100.0),))


def lamps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    ts = START + STEP * np.arange(int(DAYS * 86400 / STEP))
    return ts, baseline("streetlight_current", ts, np.random.default_rng(seed), place=(LAT, LON))


def score(ts: np.ndarray, v: np.ndarray):
    return AnomalyCore(REG).update(ReadingBatch.from_arrays(np.zeros(len(ts)), ts, v))


def sunset_of(day: int) -> float:
    _, sset = sun_times(np.array([float(np.floor((START + VN) / 86400) + day)]), LAT, LON, VN)
    return START + day * 86400 + float(sset[0])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_month_of_normal_switching_never_alerts_once_learned(seed: int) -> None:
    ts, v = lamps(seed)
    res = score(ts, v)
    learned = ts >= START + 4 * 86400
    assert not res.alert[learned].any(), ts[learned][res.alert[learned]][:5]
    assert (v[np.abs(np.diff(v, prepend=v[0])) > 3]).size > 2 * (DAYS - 4)   # it did switch, twice a day


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_circuit_dark_after_dusk_alerts_within_half_an_hour(seed: int) -> None:
    ts, v = lamps(seed)
    day = 20
    dusk = sunset_of(day)
    dark = (ts >= dusk - 1800) & (ts < START + (day + 1) * 86400)   # from before dusk to midnight
    v = v.copy()
    v[dark] = v[(ts >= dusk - 7200) & (ts < dusk - 3600)].mean()    # the daytime standby current
    res = score(ts, v)
    on = np.flatnonzero(res.alert & (ts >= dusk))
    assert on.size, "a dark circuit after dusk must alert"
    assert ts[on[0]] - dusk <= 1800 + 600                            # lamps due ~10 min after sunset
    assert res.reasons[on[0]] & (Reason.DEVIATION | Reason.SHIFT)
    assert not res.alert[(ts >= START + 4 * 86400) & (ts < dusk - 1800)].any()
