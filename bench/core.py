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


#: unmeasured ticks before timing: four days of 5-minute readings, so the time-of-day
#: baselines are armed (CoreConfig.arm_days) and the full alert decision runs on every reading
WARM_TICKS = 4 * 288


def bench_core(sensors: int, ticks: int, *, per_tick: bool, warm_ticks: int = WARM_TICKS, seed: int = 1,
               config: CoreConfig | None = None) -> BenchResult:
    """Time the core on ``ticks`` readings per sensor, after ``warm_ticks`` unmeasured ones."""
    values = _series(sensors, warm_ticks + ticks, seed)
    core = AnomalyCore(Registry.synthetic(sensors, interval_s=300.0), config)
    ids = np.arange(sensors, dtype=np.int32)
    t0 = 1_767_225_600.0  # 2026-01-01T00:00Z

    def tick(k: int) -> ReadingBatch:
        return ReadingBatch(ids, np.full(sensors, t0 + 300.0 * k), values[k])

    if warm_ticks:
        core.update(ReadingBatch.concat(tick(k) for k in range(warm_ticks)))
    if per_tick:
        batches = [tick(k) for k in range(warm_ticks, warm_ticks + ticks)]
    else:
        batches = [ReadingBatch.concat(tick(k) for k in range(warm_ticks, warm_ticks + ticks))]
    start = time.perf_counter()
    for b in batches:
        core.update(b)
    seconds = time.perf_counter() - start
    how = "one tick per update() call" if per_tick else f"{ticks:,} ticks in one batch"
    return BenchResult(f"core, {sensors:,} sensor(s), {how}", sensors * ticks, seconds)


def bench_pandas(sensors: int, ticks: int, window: int = 128, seed: int = 1) -> BenchResult:
    """Offline pandas rolling mean + std + z-score over the same [ticks, sensors] data."""
    frame = pd.DataFrame(_series(sensors, ticks, seed))
    return _time_pandas(frame, window, f"pandas rolling({window}) mean+std+z, {sensors:,} sensor(s), "
                                       f"[{ticks} x {sensors:,}] frame")


def bench_pandas_long(readings: int, window: int = 128, seed: int = 1) -> BenchResult:
    """pandas' best case: the same number of readings as one long column."""
    frame = pd.DataFrame(_series(1, readings, seed))
    return _time_pandas(frame, window, f"pandas rolling({window}) mean+std+z, one {readings:,}-row column")


def _time_pandas(frame: pd.DataFrame, window: int, label: str) -> BenchResult:
    start = time.perf_counter()
    roll = frame.rolling(window, min_periods=2)
    z = (frame - roll.mean()) / roll.std()
    float(z.iloc[-1, 0])  # make sure it is computed
    return BenchResult(label, frame.size, time.perf_counter() - start)


def bench_ring(sensors: int, ticks: int, window: int = 128) -> BenchResult:
    """A bare numpy ring-buffer write per tick: the floor any streaming core pays."""
    ring = np.zeros((window, sensors))
    values = _series(sensors, ticks, 1)
    start = time.perf_counter()
    for k in range(ticks):
        ring[k % window] = values[k]
    seconds = time.perf_counter() - start
    return BenchResult(f"bare numpy ring-buffer write, {sensors:,} sensors", sensors * ticks, seconds)


def run(sensors: int = 10_000, ticks: int = 200, single: int = 200_000) -> list[tuple[BenchResult, BenchResult]]:
    """Each core figure paired with a pandas figure over the same number of readings."""
    bench_core(2, 2, per_tick=False, warm_ticks=1)  # load the compiled kernel before timing
    wide = bench_pandas(sensors, ticks)
    long = bench_pandas_long(sensors * ticks)
    per_tick = bench_core(sensors, ticks, per_tick=True)
    pairs = [(per_tick, wide), (per_tick, long),
             (bench_core(sensors, ticks, per_tick=False), long),
             (bench_ring(sensors, ticks), long)]
    one_pd = bench_pandas_long(single)
    pairs.append((bench_core(1, single, per_tick=False), one_pd))
    pairs.append((bench_core(1, 2_000, per_tick=True), one_pd))
    return pairs


def report(pairs: list[tuple[BenchResult, BenchResult]]) -> str:
    """A table: every measurement once, each core figure with its ratio to its pandas pair."""
    lines = [f"{'measurement':<66} {'readings':>10} {'seconds':>8} {'readings/s':>13}  ratio to"]
    for mine, theirs in pairs:
        lines.append(f"{mine.label:<66} {mine.readings:>10,} {mine.seconds:>8.3f} {mine.rate:>13,.0f}  "
                     f"{mine.rate / theirs.rate:6.2f}x {theirs.label}")
    seen: set[str] = set()
    for _, theirs in pairs:
        if theirs.label not in seen:
            seen.add(theirs.label)
            lines.append(f"{theirs.label:<66} {theirs.readings:>10,} {theirs.seconds:>8.3f} {theirs.rate:>13,.0f}")
    return "\n".join(lines)
