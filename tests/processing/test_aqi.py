"""VN_AQI (Decision 1459/QĐ-TCMT) against examples worked by hand from the breakpoints."""
from __future__ import annotations

import math

import numpy as np
import pytest

from processing.aqi import (BREAKPOINTS, CATEGORIES, HourlyMeans, aqi, category, nowcast, round_aqi,
                            sub_index)


def test_breakpoint_table_matches_the_decision() -> None:
    # Table 2 columns for PM (µg/m³), rows I = 0, 50, 100, 150, 200, 300, 400, 500
    assert BREAKPOINTS["pm25"] == (0, 25, 50, 80, 150, 250, 350, 500)
    assert BREAKPOINTS["pm10"] == (0, 50, 150, 250, 350, 420, 500, 600)


@pytest.mark.parametrize("c, expected", [
    (0.0, 0.0),
    (25.0, 50.0),          # on a breakpoint
    (50.0, 100.0),
    # 35 between BP 25 (I 50) and 50 (I 100): (100-50)/(50-25) * (35-25) + 50 = 2 * 10 + 50 = 70
    (35.0, 70.0),
    # 60 between 50 (100) and 80 (150): 50/30 * 10 + 100 = 116.666...
    (60.0, 100.0 + 50.0 / 30.0 * 10.0),
    # 100 between 80 (150) and 150 (200): 50/70 * 20 + 150 = 164.2857...
    (100.0, 150.0 + 50.0 / 70.0 * 20.0),
    # 200 between 150 (200) and 250 (300): 100/100 * 50 + 200 = 250
    (200.0, 250.0),
    # 400 between 350 (400) and 500 (500): 100/150 * 50 + 400 = 433.33...
    (400.0, 400.0 + 100.0 / 150.0 * 50.0),
    (650.0, 500.0),        # above the scale: its top
])
def test_pm25_sub_index_by_hand(c: float, expected: float) -> None:
    assert float(sub_index("pm25", c)) == pytest.approx(expected)


@pytest.mark.parametrize("c, expected", [
    # 100 between 50 (50) and 150 (100): 50/100 * 50 + 50 = 75
    (100.0, 75.0),
    # 300 between 250 (150) and 350 (200): 50/100 * 50 + 150 = 175
    (300.0, 175.0),
    # 385 between 350 (200) and 420 (300): 100/70 * 35 + 200 = 250
    (385.0, 250.0),
    # 550 between 500 (400) and 600 (500): 100/100 * 50 + 400 = 450
    (550.0, 450.0),
])
def test_pm10_sub_index_by_hand(c: float, expected: float) -> None:
    assert float(sub_index("pm10", c)) == pytest.approx(expected)


def test_sub_index_is_vectorised_and_rejects_bad_input() -> None:
    out = sub_index("pm25", np.array([[35.0, -1.0], [np.nan, 25.0]]))
    assert out.shape == (2, 2)
    assert out[0, 0] == pytest.approx(70.0) and out[1, 1] == pytest.approx(50.0)
    assert math.isnan(out[0, 1]) and math.isnan(out[1, 0])
    assert math.isnan(float(sub_index("o3_8h", 450.0)))     # decision: use O3 1h above 400
    with pytest.raises(ValueError, match="unknown pollutant"):
        sub_index("pm1", 3.0)


def test_overall_aqi_is_the_highest_sub_index() -> None:
    # a station with PM2.5 = 35 (sub-index 70) and PM10 = 100 (75): AQI 75
    assert float(aqi(sub_index("pm25", 35.0), sub_index("pm10", 100.0))) == pytest.approx(75.0)
    both_missing = aqi(np.array([np.nan, 10.0]), np.array([np.nan, np.nan]))
    assert math.isnan(both_missing[0]) and both_missing[1] == 10.0


@pytest.mark.parametrize("value, code", [
    (0, 0), (50, 0), (50.4, 0), (50.5, 1), (100, 1), (101, 2), (150, 2), (151, 3),
    (200, 3), (201, 4), (300, 4), (301, 5), (500, 5),
])
def test_categories_use_the_rounded_index(value: float, code: int) -> None:
    assert int(category(value)) == code


def test_category_labels_and_official_colours() -> None:
    assert [c.label_vi for c in CATEGORIES] == ["Tốt", "Trung bình", "Kém", "Xấu", "Rất xấu", "Nguy hại"]
    assert [c.label_en for c in CATEGORIES] == ["Good", "Moderate", "Poor", "Bad", "Very bad", "Hazardous"]
    assert [c.color for c in CATEGORIES] == ["#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#8F3F97", "#7E0023"]
    assert int(category(np.nan)) == -1
    assert float(round_aqi(74.5)) == 75.0 and float(round_aqi(74.49)) == 74.0


def test_nowcast_steady_air_is_the_plain_mean() -> None:
    # all 12 hours 30 µg/m³: w* = 30/30 = 1 > 1/2, so w = 1 and every weight is 1;
    # NowCast = 12 * 30 / 12 = 30
    assert float(nowcast(np.full(12, 30.0))) == pytest.approx(30.0)


def test_nowcast_with_w_above_one_half_by_hand() -> None:
    # c1..c12 = 40, 36, 32, 30, 30, 28, 26, 25, 24, 24, 24, 24 (c1 the latest hour)
    c = np.array([40, 36, 32, 30, 30, 28, 26, 25, 24, 24, 24, 24], dtype=float)
    # w* = 24 / 40 = 0.6 > 1/2 -> w = 0.6
    # weights w^0..w^11 = 1, .6, .36, .216, .1296, .07776, .046656, .0279936, .01679616,
    #                     .010077696, .0060466176, .00362797056
    w = 0.6 ** np.arange(12)
    # numerator   = 40 + 21.6 + 11.52 + 6.48 + 3.888 + 2.17728 + 1.213056 + 0.69984
    #               + 0.40310784 + 0.241864704 + 0.1451188224 + 0.08707129344 = 88.45533866
    # denominator = sum of the weights = (1 - 0.6^12) / (1 - 0.6) = 2.49456...
    num, den = 88.45533866, (1 - 0.6 ** 12) / 0.4
    assert float((w * c).sum()) == pytest.approx(num)
    assert float(nowcast(c)) == pytest.approx(num / den)      # 88.45533866 / 2.49456... = 35.4593
    assert float(nowcast(c)) == pytest.approx(35.4593, abs=1e-4)


def test_nowcast_with_w_one_half_by_hand() -> None:
    # A fast rise: c1 = 80 now, 11 earlier hours at 10.  w* = 10/80 = 0.125 <= 1/2 -> w = 1/2
    c = np.array([80.0] + [10.0] * 11)
    # numerator   = 80 * 1 + 10 * (0.5 + 0.25 + ... + 0.5^11) = 80 + 10 * (1 - 0.5^11) = 89.99511...
    # denominator = 1 + 0.5 + ... + 0.5^11 = 2 * (1 - 0.5^12) = 1.99951...
    # NowCast     = 89.99512 / 1.99951 = 45.0085...
    expected = (80 + 10 * (1 - 0.5 ** 11)) / (2 * (1 - 0.5 ** 12))
    assert float(nowcast(c)) == pytest.approx(expected)
    # the decision's own w = 1/2 form sum((1/2)^i c_i) differs by the factor 1 - 2^-12 only
    decision_form = float(sum(0.5 ** (i + 1) * c[i] for i in range(12)))
    assert decision_form == pytest.approx(expected * (1 - 0.5 ** 12))
    # its sub-index: 45.0085 lies between 25 (50) and 50 (100): 2 * 20.0085 + 50 = 90.017 -> AQI 90, Trung bình
    index = sub_index("pm25", nowcast(c))
    assert int(round_aqi(index)) == 90 and int(category(index)) == 1


def test_nowcast_skips_missing_hours_and_needs_two_of_the_last_three() -> None:
    # c1 = 20, c2 missing, c3 = 40, rest missing: w* = 20/40 = 0.5 -> w = 1/2
    # NowCast = (1 * 20 + 0.25 * 40) / (1 + 0.25) = 30 / 1.25 = 24
    c = np.full(12, np.nan)
    c[0], c[2] = 20.0, 40.0
    assert float(nowcast(c)) == pytest.approx(24.0)
    only_one_recent = np.full(12, 25.0)
    only_one_recent[0] = only_one_recent[1] = np.nan
    assert math.isnan(float(nowcast(only_one_recent)))
    assert float(nowcast(np.zeros(12))) == 0.0


def test_nowcast_is_vectorised_over_sensors() -> None:
    m = np.stack([np.full(12, 30.0), np.array([80.0] + [10.0] * 11)])
    out = nowcast(m)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(30.0) and out[1] == pytest.approx(45.0085, abs=1e-3)


def test_hourly_means_ring() -> None:
    h = HourlyMeans(2, hours=12)
    base = 1_772_384_400.0            # 2026-03-02 00:00 local, an hour boundary
    ts = base + np.arange(0, 14 * 3600, 600.0)     # 14 hours of 10-minute readings
    rows = np.zeros(ts.size, dtype=np.int64)
    values = np.floor((ts - base) / 3600.0)       # value = hour number 0..13
    h.add(rows, ts, values)
    h.add(np.array([1]), np.array([base + 13 * 3600.0]), np.array([7.0]))
    m = h.matrix(base + 14 * 3600.0 + 5.0)
    # latest complete hour is hour 13: column 0 = 13, column 11 = hour 2
    assert m[0].tolist() == [13.0 - k for k in range(12)]
    assert m[1, 0] == 7.0 and np.isnan(m[1, 1:]).all()
    # the hour in progress on request
    h.add(np.array([0, 0]), np.array([base + 14 * 3600.0, base + 14 * 3600.0 + 60.0]), np.array([1.0, 3.0]))
    assert h.matrix(base + 14 * 3600.0 + 120.0, include_current=True)[0, 0] == 2.0
    # a reading older than the ring is ignored
    h.add(np.array([0]), np.array([base]), np.array([1e6]))
    assert np.nanmax(h.matrix(base + 14 * 3600.0 + 120.0)) < 100
