"""VN_AQI, the Vietnamese air quality index of Decision 1459/QĐ-TCMT (12 Nov 2019).

Pure numpy and vectorised: every function takes arrays of any shape.

* :func:`sub_index` -- the sub-index of one pollutant by linear interpolation
  between the decision's breakpoints (Table 2)::

      AQI_x = (I_{i+1} - I_i) / (BP_{i+1} - BP_i) * (C_x - BP_i) + I_i

  which is exactly :func:`numpy.interp` over the breakpoint table.  A
  concentration above the last breakpoint of a 0-500 column is reported as 500
  (the top of the scale); O3 8 h has no breakpoint above 400 µg/m³ (I = 300),
  and the decision says to use O3 1 h there, so it gives NaN.  Negative or
  non-finite concentrations give NaN.
* :func:`nowcast` -- the hourly value used for PM2.5 and PM10: a weighted mean
  of the last 12 one-hour means ``c_1`` (the latest hour) ... ``c_12``::

      w* = c_min / c_max          over the 12 hours
      w  = w*   if w* > 1/2,   else  1/2
      NowCast = sum(w^(i-1) c_i) / sum(w^(i-1))      over the hours present

  The decision writes the ``w = 1/2`` case as ``sum((1/2)^i c_i)``; with all
  12 hours present that is the normalised form above divided by
  ``1 / (1 - 2^-12)`` (a 0.02 % difference), and the normalised form is the
  one that stays correct when hours are missing, so it is used for both cases.
  As in the US EPA NowCast the decision adopts, a value needs data in at least
  two of the three most recent hours (``min_recent``), else it is NaN.
* :func:`aqi` -- the overall index: the highest sub-index; :func:`round_aqi`
  rounds to the integer the decision publishes; :func:`category` gives the
  band (0 Tốt ... 5 Nguy hại) of :data:`CATEGORIES` with its official colour.
* :class:`HourlyMeans` -- a fixed-size accumulator of one-hour means per
  sensor, fed with reading columns, from which :meth:`HourlyMeans.matrix`
  builds the ``[sensors, 12]`` input of :func:`nowcast`.  Hours are clock
  hours (Vietnam is UTC+7, so local and UTC hours share boundaries).

>>> float(sub_index("pm25", 37.5))        # halfway between 25 (50) and 50 (100)
75.0
>>> int(round_aqi(sub_index("pm10", 300.0))), CATEGORIES[int(category(175.0))].label_vi
(175, 'Xấu')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BREAKPOINTS",
    "CATEGORIES",
    "AqiCategory",
    "HourlyMeans",
    "aqi",
    "category",
    "nowcast",
    "round_aqi",
    "sub_index",
]

#: Index values of the breakpoint rows (Table 2 of the decision).
_I = (0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0)

#: Concentration breakpoints (µg/m³) per pollutant, one per row of ``_I``.
BREAKPOINTS: dict[str, tuple[float, ...]] = {
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 120, 170, 210, 400),
    "co": (0, 10000, 30000, 45000, 60000, 90000, 120000, 150000),
    "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
    "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
}

_TABLES = {
    name: (np.array(bp, dtype=np.float64), np.array(_I[:len(bp)], dtype=np.float64))
    for name, bp in BREAKPOINTS.items()
}


@dataclass(frozen=True, slots=True)
class AqiCategory:
    """One band of the scale: integer AQI ``low``..``high`` inclusive."""

    code: int
    low: int
    high: int
    label_vi: str
    label_en: str
    color: str


#: The six bands of the decision (Table 1) with their official colours.
CATEGORIES: tuple[AqiCategory, ...] = (
    AqiCategory(0, 0, 50, "Tốt", "Good", "#00E400"),
    AqiCategory(1, 51, 100, "Trung bình", "Moderate", "#FFFF00"),
    AqiCategory(2, 101, 150, "Kém", "Poor", "#FF7E00"),
    AqiCategory(3, 151, 200, "Xấu", "Bad", "#FF0000"),
    AqiCategory(4, 201, 300, "Rất xấu", "Very bad", "#8F3F97"),
    AqiCategory(5, 301, 500, "Nguy hại", "Hazardous", "#7E0023"),
)
_UPPER = np.array([c.high for c in CATEGORIES[:-1]], dtype=np.float64)


def sub_index(pollutant: str, concentration: np.ndarray | float) -> np.ndarray:
    """Sub-index of ``pollutant`` (a key of :data:`BREAKPOINTS`) for concentrations in µg/m³.

    Unrounded float64 of the input's shape; NaN for negative or non-finite input.
    """
    try:
        bp, idx = _TABLES[pollutant]
    except KeyError:
        raise ValueError(f"unknown pollutant {pollutant!r}; known: {', '.join(BREAKPOINTS)}") from None
    c = np.asarray(concentration, dtype=np.float64)
    top = np.nan if idx[-1] < 500.0 else 500.0
    with np.errstate(invalid="ignore"):
        out = np.interp(c, bp, idx, right=top)
        return np.where(np.isfinite(c) & (c >= 0.0), out, np.nan)


def nowcast(hourly: np.ndarray, *, min_recent: int = 2) -> np.ndarray:
    """NowCast of one-hour means ``hourly[..., i]`` = ``c_(i+1)`` (index 0 is the latest hour).

    Missing hours are NaN.  Returns an array of the leading shape; NaN where
    fewer than ``min_recent`` of the three latest hours have data.
    """
    c = np.asarray(hourly, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError("nowcast needs at least one hour on the last axis")
    present = np.isfinite(c) & (c >= 0.0)
    cz = np.where(present, c, 0.0)
    cmin = np.min(np.where(present, c, np.inf), axis=-1)
    cmax = np.max(np.where(present, c, -np.inf), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        wstar = np.where(cmax > 0.0, cmin / cmax, 1.0)
    w = np.where(wstar > 0.5, wstar, 0.5)
    powers = w[..., None] ** np.arange(c.shape[-1], dtype=np.float64)
    powers = powers * present
    den = powers.sum(axis=-1)
    num = (powers * cz).sum(axis=-1)
    enough = present[..., :3].sum(axis=-1) >= min_recent
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(enough & (den > 0.0), num / den, np.nan)


def aqi(*sub_indices: np.ndarray) -> np.ndarray:
    """The overall AQI: the highest of the given sub-indices (NaN where all are NaN)."""
    if not sub_indices:
        raise ValueError("aqi needs at least one sub-index")
    stack = np.stack(np.broadcast_arrays(*[np.asarray(s, dtype=np.float64) for s in sub_indices]))
    has = np.isfinite(stack).any(axis=0)
    best = np.max(np.where(np.isfinite(stack), stack, -np.inf), axis=0)
    return np.where(has, best, np.nan)


def round_aqi(value: np.ndarray | float) -> np.ndarray:
    """The published integer AQI (half up), as float64 so NaN survives."""
    return np.floor(np.asarray(value, dtype=np.float64) + 0.5)


def category(value: np.ndarray | float) -> np.ndarray:
    """Band code 0..5 (index into :data:`CATEGORIES`) of an AQI, from its rounded value; -1 for NaN."""
    r = round_aqi(value)
    code = np.searchsorted(_UPPER, np.where(np.isfinite(r), r, 0.0), side="left")
    return np.where(np.isfinite(r), code, -1).astype(np.int8)


class HourlyMeans:
    """One-hour means of ``n`` series over the last ``hours`` clock hours, in fixed memory.

    Slots form a ring keyed by the absolute hour number ``floor(ts / hour_s)``;
    a reading older than the ring is ignored.  Feed with :meth:`add` (any
    order), read with :meth:`matrix`.

    >>> h = HourlyMeans(1)
    >>> h.add(np.array([0, 0, 0]), np.array([0.0, 1800.0, 3600.0]), np.array([10.0, 20.0, 40.0]))
    >>> h.matrix(now=7200.0)[0, :3].tolist()      # hour 1 (complete), hour 0, none
    [40.0, 15.0, nan]
    """

    def __init__(self, n: int, hours: int = 12, hour_s: float = 3600.0) -> None:
        if n < 0 or hours < 1 or not hour_s > 0:
            raise ValueError("HourlyMeans needs n >= 0, hours >= 1 and hour_s > 0")
        self.n, self.hours, self.hour_s = int(n), int(hours), float(hour_s)
        self._k = self.hours + 1                      # one spare slot for the hour in progress
        self._sum = np.zeros((self.n, self._k))
        self._cnt = np.zeros((self.n, self._k))
        self._hour = np.full(self._k, -1, dtype=np.int64)   # absolute hour held by each slot

    def add(self, rows: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        """Accumulate readings of series ``rows`` (0..n-1); non-finite values are skipped."""
        rows = np.asarray(rows, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.float64)
        value = np.asarray(value, dtype=np.float64)
        ok = np.isfinite(value) & np.isfinite(ts)
        if not ok.all():
            rows, ts, value = rows[ok], ts[ok], value[ok]
        if rows.size == 0:
            return
        hour = np.floor(ts / self.hour_s).astype(np.int64)
        newest = max(int(hour.max()), int(self._hour.max()))
        keep = hour > newest - self._k
        if not keep.all():
            rows, hour, value = rows[keep], hour[keep], value[keep]
            if rows.size == 0:                      # all older than the ring
                return
        lo = int(hour.min())                        # at most k distinct hours (counted, not sorted)
        for h in (lo + np.flatnonzero(np.bincount(hour - lo))).tolist():
            slot = h % self._k
            if self._hour[slot] != h:
                if self._hour[slot] > h:            # slot already holds a newer hour
                    continue
                self._sum[:, slot] = 0.0
                self._cnt[:, slot] = 0.0
                self._hour[slot] = h
        slot = hour % self._k
        live = self._hour[slot] == hour
        flat = rows[live] * self._k + slot[live]
        size = self.n * self._k
        self._sum += np.bincount(flat, weights=value[live], minlength=size).reshape(self.n, self._k)
        self._cnt += np.bincount(flat, minlength=size).reshape(self.n, self._k)

    def matrix(self, now: float, *, include_current: bool = False) -> np.ndarray:
        """``[n, hours]`` one-hour means, column 0 the latest hour (NaN = no data).

        The latest hour is the last *complete* clock hour before ``now``
        (the decision's hourly AQI), or the hour in progress with
        ``include_current``.
        """
        current = int(np.floor(now / self.hour_s))
        latest = current if include_current else current - 1
        wanted = latest - np.arange(self.hours, dtype=np.int64)
        slot = wanted % self._k
        held = self._hour[slot] == wanted
        s = self._sum[:, slot]
        c = self._cnt[:, slot]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(held & (c > 0), s / np.maximum(c, 1.0), np.nan)
