"""Anomaly injection with ground-truth labels.

:func:`inject` writes one anomaly of a given kind into a copy of a series, over
the readings ``start .. start+length-1``, and leaves every other reading alone.
Sizes are measured in the series' *typical scale* (:func:`typical_scale`, the
robust spread of its short-term fluctuations), so an anomaly is equally hard to
see on a noisy traffic counter and on a quiet river gauge.

=============== =============================================================
spike           a few readings 6-10 typical scales out (an incident)
level_shift     a step of 3-6 typical scales held to the end of the label
drift           a ramp reaching 4-8 typical scales at the end of the label
stuck           the value at the label start repeated exactly (a frozen sensor)
dropout         the readings are missing (``keep`` is False)
variance_burst  noise amplitude x5
contextual      a normal-looking value from another time of day (12 h away)
pattern_change  the daily cycle's swing around the day's mean damped or amplified
                (a schedule or a demand pattern that changed), by at least 4
                typical scales on average
=============== =============================================================

>>> import numpy as np
>>> ts = np.arange(10) * 60.0
>>> v, keep = inject("stuck", ts, np.arange(10.0), 3, 4, np.random.default_rng(0), typical_scale=1.0)
>>> v.tolist(), bool(keep.all())
([0.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 7.0, 8.0, 9.0], True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ANOMALY_KINDS", "AnomalyLabel", "anomaly_length", "inject", "typical_scale"]

ANOMALY_KINDS: tuple[str, ...] = (
    "spike", "level_shift", "drift", "stuck", "dropout", "variance_burst", "contextual", "pattern_change")

CONTEXT_SHIFT_S = 12 * 3600.0

# Duration of each kind, in seconds (uniform between the bounds); spikes are
# counted in readings instead.
_DURATION_S: dict[str, tuple[float, float]] = {
    "level_shift": (3600.0, 3 * 3600.0),
    "drift": (5 * 3600.0, 7 * 3600.0),
    "stuck": (3600.0, 3 * 3600.0),
    "dropout": (3600.0, 3 * 3600.0),
    "variance_burst": (3600.0, 3 * 3600.0),
    "contextual": (3600.0, 2 * 3600.0),
    "pattern_change": (3 * 3600.0, 6 * 3600.0),
}


@dataclass(frozen=True, slots=True)
class AnomalyLabel:
    """Ground truth: ``sensor_id`` was anomalous (``kind``) from ``start`` to
    ``end``, epoch seconds UTC, both inclusive and both reading timestamps
    (for a dropout: the first and last missing reading)."""

    sensor_id: str
    kind: str
    start: float
    end: float


def typical_scale(values: np.ndarray, *, floor_frac: float = 0.005) -> float:
    """Robust size of a series' short-term fluctuations:
    ``1.4826 * MAD(first differences) / sqrt(2)`` (the noise std for white
    noise on a smooth signal), floored at ``floor_frac`` of the median absolute
    level so a near-flat series still gets a visible anomaly."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    level = float(np.median(np.abs(v))) if v.size else 0.0
    floor = max(floor_frac * level, 1e-6)
    if v.size < 3:
        return floor
    d = np.diff(v)
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(1.4826 * mad / np.sqrt(2.0), floor)


def anomaly_length(kind: str, interval_s: float, rng: np.random.Generator) -> int:
    """A sensible number of readings for an anomaly of ``kind`` on a sensor
    reading every ``interval_s`` seconds (spike 1-3 readings; stuck, dropout,
    level shift and variance burst 1-3 h; drift 5-7 h; contextual 1-2 h;
    pattern change 3-6 h)."""
    _check_kind(kind)
    if kind == "spike":
        return int(rng.integers(1, 4))
    lo, hi = _DURATION_S[kind]
    return max(2, int(round(rng.uniform(lo, hi) / interval_s)))


def inject(kind: str, ts: np.ndarray, values: np.ndarray, start: int, length: int,
           rng: np.random.Generator, *, typical_scale: float, direction: int = 0,
           context: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One anomaly of ``kind`` over readings ``start .. start+length-1``.

    Returns ``(new_values, keep)``: a modified copy of ``values`` and a boolean
    mask of the readings that still exist (all True except for a dropout).
    ``direction`` (+1 / -1 / 0 = random) signs spikes, level shifts and drifts.
    ``context`` gives a contextual anomaly's replacement values (``length`` of
    them); without it the series' own values 12 h earlier (or later, where the
    series does not reach back that far) are used.
    """
    _check_kind(kind)
    ts = np.asarray(ts, dtype=np.float64)
    out = np.array(values, dtype=np.float64, copy=True)
    n = out.shape[0]
    if ts.shape != out.shape or out.ndim != 1:
        raise ValueError(f"ts{ts.shape} and values{out.shape} must be 1-D and of equal length")
    if length < 1 or start < 0 or start + length > n:
        raise ValueError(f"anomaly span [{start}, {start + length}) does not fit a series of {n} readings")
    if not typical_scale > 0:
        raise ValueError(f"typical_scale must be > 0, got {typical_scale}")
    keep = np.ones(n, dtype=bool)
    seg = slice(start, start + length)
    s = float(typical_scale)

    def sign() -> float:
        return float(direction) if direction else float(rng.choice((-1.0, 1.0)))

    if kind == "spike":
        out[seg] += sign() * rng.uniform(6.0, 10.0, length) * s
    elif kind == "level_shift":
        out[seg] += sign() * rng.uniform(3.0, 6.0) * s
    elif kind == "drift":
        out[seg] += sign() * rng.uniform(4.0, 8.0) * s * np.arange(1, length + 1) / length
    elif kind == "stuck":
        out[seg] = out[start]
    elif kind == "dropout":
        keep[seg] = False
    elif kind == "variance_burst":
        out[seg] += rng.normal(0.0, s * np.sqrt(24.0), length)   # total std ~ 5 s
    elif kind == "pattern_change":
        centre = float(np.mean(values))
        swing = out[seg] - centre
        size = float(np.mean(np.abs(swing)))
        need = 4.0 * s / max(size, 1e-12)                 # |f - 1| giving 4 scales on average
        change = max(float(rng.uniform(0.5, 1.0)), need)
        damp = change <= 0.7 and rng.random() < 0.5
        factor = 1.0 - change if damp else 1.0 + min(change, 3.0)
        out[seg] = centre + factor * swing
    else:  # contextual
        if context is not None:
            ctx = np.asarray(context, dtype=np.float64)
            if ctx.shape != (length,):
                raise ValueError(f"context must have {length} values, got shape {ctx.shape}")
        else:
            when = ts[seg]
            back, ahead = when - CONTEXT_SHIFT_S, when + CONTEXT_SHIFT_S
            if back[0] >= ts[0]:
                when = back
            elif ahead[-1] <= ts[-1]:
                when = ahead
            else:
                raise ValueError("a contextual anomaly needs the series to reach 12 h before or after "
                                 "the span, or an explicit context")
            ctx = np.interp(when, ts, values)
        out[seg] = ctx
    return out, keep


def _check_kind(kind: str) -> None:
    if kind not in ANOMALY_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; known: {', '.join(ANOMALY_KINDS)}")
