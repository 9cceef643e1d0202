"""Split a batch into rounds in which every sensor appears at most once.

The core updates many sensors per numpy call, but one sensor's readings must be
applied one after another, in time order.  Grouping by sensor (time order kept)
and giving each reading its rank within its sensor turns a batch into rounds:
round r holds the r-th reading of every sensor that has one.  A batch of one
reading per sensor is a single round; one sensor's 1,000 readings are 1,000
rounds.

:func:`plan_rounds` returns a permutation of the batch rows and the bounds of
each round in it, so the caller permutes the columns once and then works on
contiguous slices; within a round, sensors are ascending.

>>> perm, bounds = plan_rounds(np.array([3, 1, 3, 2], np.int32), np.array([5., 1., 4., 2.]))
>>> perm.tolist(), bounds.tolist()
([1, 3, 2, 0], [0, 3, 4])
"""
from __future__ import annotations

import numpy as np

__all__ = ["plan_rounds"]


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer keys (a radix sort when they fit 16 bits)."""
    if keys.size and int(keys.max()) < 65536:
        keys = keys.astype(np.uint16)
    return np.argsort(keys, kind="stable")


def plan_rounds(sensor: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row permutation, round bounds): round k is ``perm[bounds[k]:bounds[k+1]]``."""
    n = sensor.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.zeros(1, np.int64)
    if n == 1:
        return np.zeros(1, np.int64), np.array([0, 1], np.int64)
    counts = np.bincount(sensor)
    if counts.max() == 1:  # every sensor at most once (a live tick): one round, no sort
        if n == counts.shape[0]:  # the whole registry: put it in sensor order
            perm = np.empty(n, np.int64)
            perm[sensor] = np.arange(n)
            return perm, np.array([0, n], np.int64)
        return np.arange(n), np.array([0, n], np.int64)
    if not np.all(ts[1:] >= ts[:-1]):
        by_time = np.argsort(ts, kind="stable")
        order = by_time[_stable_order(sensor[by_time])]
    else:
        order = _stable_order(sensor)
    s_sorted = sensor[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(s_sorted[1:], s_sorted[:-1], out=new_group[1:])
    if new_group.all():  # every sensor at most once: a single round
        return order, np.array([0, n], np.int64)
    starts = np.flatnonzero(new_group)
    rank = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    perm = order[_stable_order(rank)]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(rank))])
    return perm, bounds
