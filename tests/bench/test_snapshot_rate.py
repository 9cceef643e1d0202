"""The snapshot-rate benchmark runs and reports what it measured (its figures are in docs/benchmarks.md)."""
from __future__ import annotations

import re

from bench.snapshot_rate import run


def test_the_display_mode_builds_far_fewer_snapshots_than_batches() -> None:
    baseline, display = run(batches=400, size=10, read_every=0.05)
    rates = {}
    for line in (baseline, display):
        mode = line.split()[0]
        m = re.search(r"([\d,]+) batches/s, ([\d.]+) ms/batch, .* ([\d.]+) snapshot builds/s", line)
        assert m, line
        rates[mode] = float(m.group(1).replace(",", "")), float(m.group(3))
    assert abs(rates["baseline"][1] / rates["baseline"][0] - 1) < 0.01   # one build per batch
    assert rates["display"][1] < rates["display"][0]          # builds per second below batches per second
