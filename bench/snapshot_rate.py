"""What the display's snapshot costs the pipeline: snapshots built per second and time per batch.

    python -m bench.snapshot_rate [--batches 20000] [--size 20] [--read-every 1.0]

The embedded city (218 sensors) is pre-rolled for a day, then fed small batches as a broker feed
brings them (``--size`` readings each, 0.2 simulated seconds apart) through ``Pipeline.process``,
twice in the same run:

* **baseline**: a snapshot read after every batch -- what building it on every batch cost
  before snapshots were built on demand;
* **display**: a reader thread asking for the snapshot every ``--read-every`` seconds (the
  dashboard's refresh), so a snapshot is built at most that often.

It prints the batches per second, milliseconds per batch and snapshot builds per second of each.
"""
from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from bench.city import prerolled_city
from ioc.pipeline import Pipeline
from processing.batch import ReadingBatch



def _batches(p: Pipeline, count: int, size: int, t0: float) -> list[ReadingBatch]:
    rng = np.random.default_rng(1)
    base = p.core.last_value()
    out, t = [], t0
    for _ in range(count):
        s = rng.integers(0, len(p.registry), size)
        t += 0.2
        v = np.where(np.isfinite(base[s]), base[s], 1.0) * (1.0 + 0.001 * rng.standard_normal(size))
        out.append(ReadingBatch.from_arrays(s, t + 0.01 * rng.random(size), v))
    return out


def run(batches: int, size: int, read_every: float) -> list[str]:
    p = prerolled_city()
    lines = []
    t = p.sim_now
    for mode in ("baseline", "display"):
        feed = _batches(p, batches, size, t)
        t = float(feed[-1].ts.max())
        stop = threading.Event()

        def reader() -> None:
            while not stop.wait(read_every):
                p.snapshot()
        thread = threading.Thread(target=reader, daemon=True)
        builds = p.snapshot_builds
        start = time.perf_counter()
        if mode == "display":
            thread.start()
        for b in feed:
            p.process(b, float(b.ts.max()))
            if mode == "baseline":
                p.snapshot()
        took = time.perf_counter() - start
        stop.set()
        if mode == "display":
            thread.join()
        made = p.snapshot_builds - builds
        lines.append(f"{mode:<9} {batches:>7,} batches of {size}: {batches / took:>8,.0f} batches/s, "
                     f"{took / batches * 1e3:.3f} ms/batch, {batches * size / took:>9,.0f} readings/s, "
                     f"{made / took:>7.1f} snapshot builds/s ({made:,} builds)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.snapshot_rate", description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=20, help="readings per batch (default 20)")
    ap.add_argument("--read-every", type=float, default=1.0, help="seconds between display reads (default 1)")
    args = ap.parse_args(argv)
    for line in run(args.batches, args.size, args.read_every):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
