"""The city as the scored stream shows it: each sensor's newest reading, score and alert flag, and
its recent readings -- what a dashboard needs, from ``ioc.scores``, without a core of its own.

A dashboard node of a cluster (:mod:`ioc.cluster_view`) does not score: the workers publish
each reading's score (:mod:`ingest.formats.scores`), at least once, in any order across
partitions.  :meth:`ScoredView.add` takes a record's columns; a reading not newer than its
sensor's newest (a copy after a hand-over, or a late reading) changes nothing, so the view is
the same whichever copy came first.  It answers the two questions the snapshot builder asks a
core (:meth:`last_seen`, :meth:`in_alert`) and the drill-down's (:meth:`recent`), with the
baseline and scale unknown (NaN): the workers do not publish them.

Pure: numpy in, numpy out.

>>> v = ScoredView(2, window=3)
>>> v.add(np.array([0, 0, 1, 0]), np.array([1., 2., 1., 2.]), np.array([5., 6., 7., 9.]),
...       np.array([.1, .9, .2, .8]), np.array([False, True, False, True]))
3
>>> v.last_value.tolist(), v.in_alert().tolist(), v.recent(0)["value"].tolist()
([6.0, 7.0], [True, False], [5.0, 6.0])
"""
from __future__ import annotations

import numpy as np

__all__ = ["ScoredView"]


class ScoredView:
    """Newest value, time, score and alert flag per sensor; the last ``window`` readings of each."""

    def __init__(self, sensors: int, *, window: int = 360) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        n = int(sensors)
        self.last_value = np.full(n, np.nan)
        self.last_ts = np.full(n, np.nan)
        self.score = np.full(n, np.nan)
        self.alert = np.zeros(n, dtype=bool)
        self.readings = 0                           # readings taken (copies not counted)
        self._count = np.zeros(n, dtype=np.int64)   # readings ever written to each ring
        self._ring = np.full((self.window, n, 3), np.nan)   # ts, value, score

    def add(self, sensor: np.ndarray, ts: np.ndarray, value: np.ndarray, score: np.ndarray,
            alert: np.ndarray) -> int:
        """Take one record's readings (registry indices); returns how many were new."""
        sensor = np.asarray(sensor, dtype=np.int64)
        if sensor.size == 0:
            return 0
        order = np.lexsort((ts, sensor))
        s, t = sensor[order], np.asarray(ts, dtype=np.float64)[order]
        # newer than the sensor's newest, and not a repeat of the row before (the same time twice)
        with np.errstate(invalid="ignore"):
            new = ~(t <= self.last_ts[s])
        new[1:] &= ~((s[1:] == s[:-1]) & (t[1:] == t[:-1]))
        if not new.any():
            return 0
        rows = order[new]
        s, t = s[new], t[new]
        v = np.asarray(value, dtype=np.float64)[rows]
        sc = np.asarray(score, dtype=np.float64)[rows]
        a = np.asarray(alert, dtype=bool)[rows]
        # each sensor's readings go to its ring in time order: rank within the sensor's run
        start = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
        lengths = np.diff(np.r_[start, s.size])
        rank = np.arange(s.size) - np.repeat(start, lengths)
        slot = (self._count[s] + rank) % self.window
        self._ring[slot, s, 0] = t
        self._ring[slot, s, 1] = v
        self._ring[slot, s, 2] = sc
        last = np.r_[start[1:] - 1, s.size - 1]       # the newest row of each sensor
        ls = s[last]
        self._count[ls] += lengths
        self.last_ts[ls] = t[last]
        self.last_value[ls] = v[last]
        self.score[ls] = sc[last]
        self.alert[ls] = a[last]
        self.readings += int(s.size)
        return int(s.size)

    @property
    def now(self) -> float:
        """The newest reading time of any sensor (NaN before any)."""
        return float(np.nanmax(self.last_ts)) if np.isfinite(self.last_ts).any() else float("nan")

    def last_seen(self) -> np.ndarray:
        """Each sensor's newest reading time (NaN: never): as :meth:`processing.core.AnomalyCore.last_seen`."""
        return self.last_ts.copy()

    def in_alert(self) -> np.ndarray:
        """Whether each sensor is in alert after its newest reading."""
        return self.alert.copy()

    def recent(self, sensor: int) -> dict[str, np.ndarray]:
        """The sensor's recent readings in time order: ts, value, score, and baseline/scale (NaN: unknown here)."""
        count = int(self._count[sensor])
        order = np.arange(count - min(count, self.window), count) % self.window
        ring = self._ring[order, sensor]
        nan = np.full(order.size, np.nan)
        return {"ts": ring[:, 0].copy(), "value": ring[:, 1].copy(), "score": ring[:, 2].copy(),
                "baseline": nan, "scale": nan.copy()}
