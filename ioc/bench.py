"""``ioc bench``: throughput of the anomaly core beside pandas, measured in the same run.

Figures, not pass/fail: readings per second of the streaming core (all
detectors on) for many sensors fed one tick at a time, for one sensor, and of
pandas ``rolling(...).mean()/.std()`` plus z-score over the same readings, with
the ratio between them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.registry import Registry

__all__ = ["BenchResult", "bench_core", "bench_pandas", "run"]


@dataclass(frozen=True)
class BenchResult:
    label: str
    readings: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.readings / self.seconds


def _series(sensors: int, ticks: int, seed: int) -> np.ndarray:
    """[ticks, sensors] of a daily cycle plus noise, 5-minute sampling."""
    rng = np.random.default_rng(seed)
    t = np.arange(ticks)[:, None] * 300.0
    level = rng.uniform(10, 100, sensors)[None, :]
    return level * (1 + 0.3 * np.sin(2 * np.pi * t / 86400.0)) + rng.normal(0, 1, (ticks, sensors))


def bench_core(sensors: int, ticks: int, *, per_tick: bool, warm_ticks: int = 50, seed: int = 1,
               config: CoreConfig | None = None) -> BenchResult:
    """Time the core on ``ticks`` readings per sensor, after ``warm_ticks`` unmeasured ones."""
    values = _series(sensors, warm_ticks + ticks, seed)
    core = AnomalyCore(Registry.synthetic(sensors, interval_s=300.0), config)
    ids = np.arange(sensors, dtype=np.int32)
    t0 = 1_767_225_600.0  # 2026-01-01T00:00Z

    def tick(k: int) -> ReadingBatch:
        return ReadingBatch(ids, np.full(sensors, t0 + 300.0 * k), values[k])

    for k in range(warm_ticks):
        core.update(tick(k))
    if per_tick:
        batches = [tick(k) for k in range(warm_ticks, warm_ticks + ticks)]
    else:
        batches = [ReadingBatch.concat(tick(k) for k in range(warm_ticks, warm_ticks + ticks))]
    start = time.perf_counter()
    for b in batches:
        core.update(b)
    seconds = time.perf_counter() - start
    how = "one tick per update" if per_tick else f"{ticks} ticks in one batch"
    return BenchResult(f"core, {sensors:,} sensor(s), {how}", sensors * ticks, seconds)


def bench_pandas(sensors: int, ticks: int, window: int = 128, seed: int = 1) -> BenchResult:
    """Offline pandas rolling mean + std + z-score over the same shape of data."""
    frame = pd.DataFrame(_series(sensors, ticks, seed))
    start = time.perf_counter()
    roll = frame.rolling(window, min_periods=2)
    z = (frame - roll.mean()) / roll.std()
    float(z.iloc[-1, 0])  # make sure it is computed
    seconds = time.perf_counter() - start
    return BenchResult(f"pandas rolling({window}) mean+std+z, {sensors:,} sensor(s), offline",
                       sensors * ticks, seconds)


def bench_ring(sensors: int, ticks: int, window: int = 128) -> BenchResult:
    """A bare numpy ring-buffer write per tick: the floor any streaming core pays."""
    ring = np.zeros((window, sensors))
    values = _series(sensors, ticks, 1)
    start = time.perf_counter()
    for k in range(ticks):
        ring[k % window] = values[k]
    seconds = time.perf_counter() - start
    return BenchResult(f"bare numpy ring-buffer write, {sensors:,} sensors", sensors * ticks, seconds)


def run(sensors: int = 10_000, ticks: int = 200, single_ticks: int = 5_000) -> list[tuple[BenchResult, BenchResult]]:
    """Each core figure paired with the pandas figure for the same data shape."""
    pairs = []
    many_pd = bench_pandas(sensors, ticks)
    pairs.append((bench_core(sensors, ticks, per_tick=True), many_pd))
    pairs.append((bench_core(sensors, ticks, per_tick=False), many_pd))
    pairs.append((bench_ring(sensors, ticks), many_pd))
    one_pd = bench_pandas(1, single_ticks)
    pairs.append((bench_core(1, single_ticks, per_tick=False), one_pd))
    return pairs


def report(pairs: list[tuple[BenchResult, BenchResult]]) -> str:
    lines = [f"{'measurement':<58} {'readings':>10} {'seconds':>8} {'readings/s':>13} {'vs pandas':>9}"]
    shown: set[str] = set()
    for mine, theirs in pairs:
        for r in (theirs, mine):
            if r.label in shown:
                continue
            shown.add(r.label)
            ratio = "" if r is theirs else f"{mine.rate / theirs.rate:8.2f}x"
            lines.append(f"{r.label:<58} {r.readings:>10,} {r.seconds:>8.3f} {r.rate:>13,.0f} {ratio:>9}")
    return "\n".join(lines)
