"""Why a reading scored as it did: one bit per detector, so reasons stay an int array.

>>> describe(int(Reason.DEVIATION | Reason.LIMIT))
'deviation;limit'
"""
from __future__ import annotations

import enum

import numpy as np

__all__ = ["Reason", "describe", "describe_many"]


class Reason(enum.IntFlag):
    """Detector bits carried per reading in ``Scores.reasons`` (uint16)."""

    DEVIATION = 1      # far from the forecast (time-of-day or rolling baseline plus local level)
    SEASONAL = 2       # far from what this sensor reads at this time of day
    RATE = 4           # jumped too fast from the previous reading
    STUCK = 8          # the same value repeated for too long (flatline)
    GAP = 16           # arrived after a gap longer than k x its interval
    LIMIT = 32         # beyond a hard limit from the registry
    LATE = 64          # older than the sensor's newest reading: scored, not learned
    INVALID = 128      # NaN or infinite value: not learned
    SILENT = 256       # no reading for k x its interval (from ``AnomalyCore.silent``)
    SHIFT = 512        # a sustained shift or drift away from the forecast (CUSUM)
    BURST = 1024       # the readings became much noisier than usual


_ORDER = [r for r in Reason]


def describe(mask: int) -> str:
    """Semicolon-separated names of the bits set in ``mask`` ('' for none)."""
    return ";".join(r.name.lower() for r in _ORDER if mask & r)  # type: ignore[union-attr]


def describe_many(masks: np.ndarray) -> np.ndarray:
    """Vectorised :func:`describe`: one string per mask, computed once per distinct mask."""
    uniq, inverse = np.unique(np.asarray(masks, dtype=np.int64), return_inverse=True)
    names = np.array([describe(int(m)) for m in uniq], dtype=object)
    return names[inverse.reshape(-1)]
