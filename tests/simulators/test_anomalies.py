"""Anomaly injection: each kind changes the series as described inside its
span and nowhere else."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulators.anomalies import ANOMALY_KINDS, AnomalyLabel, anomaly_length, inject, typical_scale

N, START, LENGTH = 2 * 1440, 1500, 90           # two days of minutes; span at 01:00 on day 2
TS = 1772384400.0 + np.arange(N) * 60.0
SIGMA = 2.0


@pytest.fixture
def series() -> np.ndarray:
    rng = np.random.default_rng(42)
    return 100.0 + 30.0 * np.sin(2 * np.pi * np.arange(N) / 1440.0) + rng.normal(0.0, SIGMA, N)


def run(kind, values, *, length=LENGTH, direction=0, seed=0, **kw):
    return inject(kind, TS, values, START, length, np.random.default_rng(seed),
                  typical_scale=typical_scale(values), direction=direction, **kw)


def outside(mask_len: int = N, length: int = LENGTH) -> np.ndarray:
    m = np.ones(mask_len, dtype=bool)
    m[START:START + length] = False
    return m


def test_typical_scale_is_the_noise_std(series):
    assert typical_scale(series) == pytest.approx(SIGMA, rel=0.1)
    assert typical_scale(np.full(100, 40.0)) == pytest.approx(0.2)     # floor: 0.5 % of the level
    assert typical_scale(np.zeros(10)) > 0


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_changes_only_inside_the_span(kind, series):
    before = series.copy()
    length = 3 if kind == "spike" else LENGTH
    new, keep = run(kind, series, length=length)
    np.testing.assert_array_equal(series, before)                     # input untouched
    out = outside(length=length)
    np.testing.assert_array_equal(new[out], series[out])
    assert keep[out].all()
    assert new.dtype == np.float64 and keep.dtype == bool and new.shape == keep.shape == (N,)
    inside = slice(START, START + length)
    if kind == "dropout":
        assert not keep[inside].any()
        np.testing.assert_array_equal(new, series)
    else:
        assert keep.all()
        assert not np.array_equal(new[inside], series[inside])


@pytest.mark.parametrize("direction", [1, -1])
def test_spike_is_far_out_in_the_given_direction(series, direction):
    s = typical_scale(series)
    new, _ = run("spike", series, length=3, direction=direction)
    delta = (new - series)[START:START + 3] * direction
    assert np.all(delta >= 6 * s) and np.all(delta <= 10 * s)


def test_level_shift_is_a_sustained_step(series):
    s = typical_scale(series)
    new, _ = run("level_shift", series)
    delta = (new - series)[START:START + LENGTH]
    assert np.allclose(delta, delta[0]) and 3 * s <= abs(delta[0]) <= 6 * s


def test_drift_ramps_to_several_scales(series):
    s = typical_scale(series)
    new, _ = run("drift", series, direction=1)
    delta = (new - series)[START:START + LENGTH]
    assert np.all(np.diff(delta) > 0) and delta[0] > 0
    assert 4 * s <= delta[-1] <= 8 * s


def test_stuck_repeats_the_start_value_exactly(series):
    new, _ = run("stuck", series)
    assert np.all(new[START:START + LENGTH] == series[START])


def test_variance_burst_multiplies_noise(series):
    s = typical_scale(series)
    new, _ = run("variance_burst", series)
    assert 3 * s < typical_scale(new[START:START + LENGTH]) < 7 * s
    assert abs(np.mean((new - series)[START:START + LENGTH])) < 2 * s   # no level change


def test_contextual_takes_the_value_from_12_hours_away(series):
    new, _ = run("contextual", series)
    np.testing.assert_array_equal(new[START:START + LENGTH], series[START - 720:START - 720 + LENGTH])
    # early in the series there is no "12 h before": it looks 12 h ahead
    early, _ = inject("contextual", TS, series, 10, 30, np.random.default_rng(0), typical_scale=1.0)
    np.testing.assert_array_equal(early[10:40], series[730:760])
    ctx = np.arange(LENGTH, dtype=np.float64)
    given, _ = run("contextual", series, context=ctx)
    np.testing.assert_array_equal(given[START:START + LENGTH], ctx)


def test_errors(series):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        inject("glitch", TS, series, 0, 1, rng, typical_scale=1.0)
    with pytest.raises(ValueError, match="does not fit"):
        inject("spike", TS, series, N - 2, 3, rng, typical_scale=1.0)
    with pytest.raises(ValueError, match="typical_scale"):
        inject("spike", TS, series, 0, 1, rng, typical_scale=0.0)
    with pytest.raises(ValueError, match="12 h"):
        inject("contextual", TS[:100], series[:100], 10, 5, rng, typical_scale=1.0)


def test_lengths_are_sensible():
    rng = np.random.default_rng(0)
    assert {anomaly_length("spike", 60.0, rng) for _ in range(50)} == {1, 2, 3}
    for kind, lo, hi in [("stuck", 1, 3), ("dropout", 1, 3), ("level_shift", 1, 3),
                         ("variance_burst", 1, 3), ("drift", 5, 7), ("contextual", 1, 2)]:
        hours = [anomaly_length(kind, 300.0, rng) * 300.0 / 3600 for _ in range(50)]
        assert lo - 0.05 <= min(hours) and max(hours) <= hi + 0.05, kind
    assert anomaly_length("stuck", 7200.0, rng) >= 2


def test_label_is_frozen():
    lab = AnomalyLabel("BG-1", "spike", 10.0, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lab.kind = "drift"  # type: ignore[misc]
