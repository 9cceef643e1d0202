"""The snapshot-rate benchmark runs and reports what it measured (its figures are in docs/benchmarks.md)."""
from __future__ import annotations

import re

from bench.snapshot_rate import run


def test_the_display_mode_builds_far_fewer_snapshots_than_batches() -> None:
    baseline, display = run(batches=400, size=10, read_every=0.05)
    got = {}
    for line in (baseline, display):
        m = re.search(r"([\d.]+) ms/batch, .* \(([\d,]+) builds\)", line)
        assert m, line
        got[line.split()[0]] = 400 * float(m.group(1)) / 1e3, int(m.group(2).replace(",", ""))
    assert got["baseline"][1] == 400                         # a read after every batch: one build each
    took, made = got["display"]
    assert 1 <= made <= took / 0.05 + 2                       # at most one per reader period (and the last)
