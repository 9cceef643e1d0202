"""What the pipeline measures about itself: latency histograms per stage and the readings rate.

:class:`Histogram` counts observations into fixed buckets (Prometheus-style, exported by
``/metrics``); :class:`Rate` is readings per second over a sliding window of the wall clock.
Both are owned by the pipeline's thread and read, frozen, into each snapshot.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from dashboard.source import LatencyHistogram

__all__ = ["Histogram", "LATENCY_BUCKETS", "Rate", "STAGES"]

#: Pipeline stages whose latency is measured (seconds, histogram per stage).
STAGES: tuple[str, ...] = ("simulate", "queue", "validate", "score", "alerts", "publish")
#: Histogram bucket upper bounds, seconds.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    """Observations in seconds, counted into :data:`LATENCY_BUCKETS` (and one overflow bucket).

    >>> h = Histogram(); h.observe(0.0007); h.observe(9.0)
    >>> h.frozen().counts[1], h.frozen().counts[-1]
    (1, 1)
    """

    def __init__(self) -> None:
        self.counts = np.zeros(len(LATENCY_BUCKETS) + 1, dtype=np.int64)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[int(np.searchsorted(LATENCY_BUCKETS, seconds, side="left"))] += 1
        self.total += seconds

    def frozen(self) -> LatencyHistogram:
        return LatencyHistogram(LATENCY_BUCKETS, tuple(int(c) for c in self.counts), self.total)


class Rate:
    """Readings per second over a sliding window of the wall clock.

    >>> r = Rate(10.0); r.add(100.0, 50); r.add(104.0, 30)
    >>> r.per_s(105.0), r.per_s(112.0)
    (16.0, 3.0)
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._events: deque[tuple[float, int]] = deque()
        self._since: float | None = None

    def reset(self, now: float) -> None:
        self._events.clear()
        self._since = now

    def add(self, now: float, n: int) -> None:
        if self._since is None:
            self._since = now
        self._events.append((now, n))
        self._trim(now)

    def per_s(self, now: float) -> float:
        self._trim(now)
        if self._since is None:
            return 0.0
        span = min(self.window_s, max(now - self._since, 1e-9))
        return sum(n for _, n in self._events) / span if span >= 0.5 else 0.0

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window_s:
            self._events.popleft()
