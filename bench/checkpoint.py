"""Benchmark of core checkpoints: bytes, copy, encode+write, read+restore.

    ioc bench-checkpoint --sensors 10000 [--runs 5] [--dir DIR]

A core of N synthetic sensors learns 100 readings each (so its arrays hold real
state), then each run

* copies its state arrays (:meth:`AnomalyCore.state_arrays`: what the pipeline does
  between two batches, under its lock),
* encodes and writes them with :class:`ioc.checkpoints.Checkpointer` (temporary file,
  fsync, ``os.replace``, fsync of the folder: what the checkpoint thread does),
* reads the file back and restores it into a fresh core (what ``ioc run`` does at
  start; the file comes from the page cache, as after a process restart).

The restored state is checked to be bit-identical once.  It reports medians; it does
not pass or fail.  Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CheckpointBench", "report", "run"]


@dataclass(frozen=True, slots=True)
class CheckpointBench:
    sensors: int
    runs: int
    nbytes: int               # checkpoint file size
    state_bytes: int          # the core's state arrays
    copy_ms: float            # medians
    write_ms: float
    restore_ms: float


def run(sensors: int = 10_000, runs: int = 5, folder: Path | None = None) -> CheckpointBench:
    from ioc.checkpoints import Checkpointer
    from processing.batch import ReadingBatch
    from processing.core import AnomalyCore
    from processing.registry import Registry

    registry = Registry.synthetic(sensors)
    core = AnomalyCore(registry)
    rng = np.random.default_rng(1)
    per = 100
    sensor = np.tile(np.arange(sensors, dtype=np.int32), per)
    ts = 1_772_420_400.0 + 60.0 * np.repeat(np.arange(per, dtype=np.float64), sensors)
    core.update(ReadingBatch.from_arrays(sensor, ts, 20.0 + 5.0 * rng.standard_normal(sensor.size)))
    position = {"t": float(ts[-1]), "source": "bench", "readings_total": int(sensor.size)}
    copy_ms, write_ms, restore_ms = [], [], []
    nbytes = 0
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        ckpt = Checkpointer(Path(tmp) / "core.ckpt", registry, core.config, every_s=0)
        for k in range(runs):
            t0 = time.perf_counter()
            arrays = core.state_arrays()
            t1 = time.perf_counter()
            info = ckpt.save(arrays, position)
            t2 = time.perf_counter()
            del arrays
            fresh = AnomalyCore(registry)
            t3 = time.perf_counter()
            loaded = ckpt.load()
            assert loaded is not None
            fresh.restore_state(loaded.arrays)
            t4 = time.perf_counter()
            if k == 0:
                for name, a in core.state_arrays(copy=False).items():
                    if a.tobytes() != fresh.state_arrays(copy=False)[name].tobytes():
                        raise AssertionError(f"restored array {name!r} differs")
            del loaded, fresh
            nbytes = info.nbytes
            copy_ms.append(1e3 * (t1 - t0))
            write_ms.append(1e3 * (t2 - t1))
            restore_ms.append(1e3 * (t4 - t3))
    return CheckpointBench(sensors, runs, nbytes, core.state_bytes(), statistics.median(copy_ms),
                           statistics.median(write_ms), statistics.median(restore_ms))


def report(b: CheckpointBench) -> str:
    return "\n".join([
        f"core checkpoint, {b.sensors:,} sensors (median of {b.runs} runs):",
        f"  checkpoint        {b.nbytes:,} bytes ({b.nbytes / 1e6:.1f} MB; state arrays {b.state_bytes:,} bytes)",
        f"  copy state        {b.copy_ms:8.1f} ms   (between two batches, under the pipeline's lock)",
        f"  encode + write    {b.write_ms:8.1f} ms   (checkpoint thread: temporary file, fsync, os.replace)",
        f"  read + restore    {b.restore_ms:8.1f} ms   (at start: read, check CRCs and fingerprints, copy in)",
    ])


if __name__ == "__main__":  # pragma: no cover
    print(report(run()))
