"""History queries on plain arrays: one sensor's readings downsampled for a chart.

Pure: numpy in, numpy out; the store that reads the arrays from disk is :mod:`ioc.history`.
:func:`downsample` gives at most ``points`` buckets of equal time, each with its mean, min, max and
highest score, so a week of 1-minute readings draws as fast as an hour and a spike stays visible
(the bucket's max keeps it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Downsampled", "downsample"]


@dataclass(frozen=True, slots=True)
class Downsampled:
    ts: np.ndarray        # bucket start (epoch s), or the reading's time when not downsampled
    value: np.ndarray     # mean
    low: np.ndarray
    high: np.ndarray
    score: np.ndarray     # highest score in the bucket
    alert: np.ndarray     # any reading of the bucket in alert
    count: np.ndarray     # readings in the bucket

    def __len__(self) -> int:
        return int(self.ts.size)


def downsample(ts: np.ndarray, value: np.ndarray, score: np.ndarray, alert: np.ndarray, t0: float, t1: float,
               points: int) -> Downsampled:
    """The readings of ``[t0, t1]`` (sorted by time) as at most ``points`` buckets; as they are when fewer.

    >>> d = downsample(np.arange(10.0), np.arange(10.0), np.zeros(10), np.zeros(10, bool), 0, 10, 2)
    >>> d.ts.tolist(), d.value.tolist(), d.high.tolist(), d.count.tolist()
    ([0.0, 5.0], [2.0, 7.0], [4.0, 9.0], [5, 5])
    """
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    ts = np.asarray(ts, dtype=np.float64)
    keep = (ts >= t0) & (ts <= t1)
    ts, value = ts[keep], np.asarray(value, dtype=np.float64)[keep]
    score, alert = np.asarray(score, dtype=np.float64)[keep], np.asarray(alert, dtype=bool)[keep]
    if ts.size <= points:
        return Downsampled(ts, value, value.copy(), value.copy(), score, alert, np.ones(ts.size, dtype=np.int64))
    width = (t1 - t0) / points
    b = np.minimum(((ts - t0) // width).astype(np.int64), points - 1)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])       # ts sorted: buckets are runs
    count = np.diff(np.r_[starts, ts.size])
    with np.errstate(invalid="ignore"):
        mean = np.add.reduceat(np.nan_to_num(value), starts) / np.maximum(
            np.add.reduceat((~np.isnan(value)).astype(np.int64), starts), 1)
    return Downsampled(t0 + b[starts] * width, mean, np.fmin.reduceat(value, starts), np.fmax.reduceat(value, starts),
                       np.fmax.reduceat(score, starts), np.logical_or.reduceat(alert, starts), count)

