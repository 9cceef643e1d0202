"""How many times a broker delivery is sorted on its way to the alert list, and what a delivery costs.

    python -m bench.sorts [--batches 300] [--size 2000] [--partitions 3]

A delivery of ``--size`` readings of the embedded city (218 sensors) as a Kafka fetch returns it
-- ``--partitions`` partitions, each in time order, one after the other -- goes through what
``ioc run --source`` does with it: the Feed's de-duplication, then ``Pipeline.process``
(validate, score, alerting, the display's arrays), after a day of pre-roll.  It prints

* the sorts per delivery: calls of ``np.sort``, ``np.argsort``, ``np.lexsort`` and
  ``np.unique`` (which sorts) made while the deliveries pass, counted per call site;
* milliseconds per delivery and readings per second (without the counting).
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from typing import Callable, Iterator

import numpy as np

from bench.city import prerolled_city
from ingest.sources import Feed
from ioc.pipeline import Pipeline
from processing.batch import ReadingBatch

SORTS = ("sort", "argsort", "lexsort", "unique")


def deliveries(p: Pipeline, count: int, size: int, partitions: int, t0: float) -> Iterator[ReadingBatch]:
    """Kafka-like deliveries: readings a few seconds apart, keyed to partitions by sensor, each
    partition's readings in time order, the partitions one after the other."""
    rng = np.random.default_rng(1)
    n = len(p.registry)
    base = p.core.last_value()
    part = np.arange(n) % partitions
    t = t0
    for _ in range(count):
        s = rng.integers(0, n, size)
        ts = t + np.sort(rng.random(size)) * 5.0
        t += 5.0
        v = np.where(np.isfinite(base[s]), base[s], 1.0) * (1.0 + 0.001 * rng.standard_normal(size))
        order = np.lexsort((np.arange(size), part[s]))        # partition by partition, time order inside
        yield ReadingBatch.from_arrays(s[order], ts[order], v[order])


def _step(p: Pipeline, feed: Feed) -> Callable[[ReadingBatch], None]:
    def step(batch: ReadingBatch) -> None:
        b, _ = feed.deduplicate(batch, sensor_order=True)         # as the feed hands deliveries out
        p.process(b, float(batch.ts.max()))
    return step


def count_sorts(p: Pipeline, batches: list[ReadingBatch]) -> collections.Counter:
    """Sort calls per call site (``module:function``) while ``batches`` pass."""
    feed = Feed(None, p.registry, last_seen=p.core.last_seen)          # type: ignore[arg-type]
    step = _step(p, feed)
    calls: collections.Counter = collections.Counter()
    saved = {name: getattr(np, name) for name in SORTS}

    def counting(name: str) -> Callable:
        real = saved[name]

        def wrapper(*args, **kw):
            frame = traceback.extract_stack(limit=2)[0]
            calls[f"{frame.filename.rsplit('/', 2)[-2]}/{frame.filename.rsplit('/', 1)[-1]}:{frame.name} "
                  f"np.{name}"] += 1
            return real(*args, **kw)
        return wrapper

    try:
        for name in SORTS:
            setattr(np, name, counting(name))
        for b in batches:
            step(b)
    finally:
        for name, fn in saved.items():
            setattr(np, name, fn)
    return calls


def run(batches: int, size: int, partitions: int) -> list[str]:
    p = prerolled_city()
    t = p.sim_now
    sample = list(deliveries(p, 20, size, partitions, t))
    calls = count_sorts(p, sample)
    t = float(sample[-1].ts.max())
    timed = list(deliveries(p, batches, size, partitions, t + 1.0))
    feed = Feed(None, p.registry, last_seen=p.core.last_seen)          # type: ignore[arg-type]
    step = _step(p, feed)
    start = time.perf_counter()
    for b in timed:
        step(b)
    took = time.perf_counter() - start
    per = sum(calls.values()) / len(sample)
    lines = [f"{len(p.registry)} sensors, deliveries of {size} readings from {partitions} partitions",
             f"sorts per delivery: {per:.2f}"]
    lines += [f"  {n / len(sample):5.2f}  {site}" for site, n in sorted(calls.items())]
    lines.append(f"{1000.0 * took / batches:.3f} ms per delivery, {batches * size / took:,.0f} readings/s "
                 f"({batches} deliveries)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sorts", description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=3)
    args = ap.parse_args(argv)
    if args.batches < 1 or args.size < 1 or args.partitions < 1:
        ap.error("--batches, --size and --partitions must be >= 1")
    print("\n".join(run(args.batches, args.size, args.partitions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
