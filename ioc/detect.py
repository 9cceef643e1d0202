"""``ioc detect``: score CSV series offline through the same streaming core.

Every file becomes one sensor of a synthetic registry and all files are fed
as one batch, so the core scores them side by side (one round per row index,
all files in each numpy call) and still strictly causally: row t of a file
only ever sees rows <= t of that file.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.series_csv import SeriesFileError, read_series
from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.reasons import describe_many
from processing.registry import Registry

__all__ = ["DetectReport", "collect_inputs", "detect"]


@dataclass
class DetectReport:
    written: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rows: int = 0
    alerts: int = 0


def collect_inputs(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, relative output path) for every CSV named or found below a directory."""
    found: list[tuple[Path, Path]] = []
    for p in paths:
        if p.is_dir():
            found.extend((f, f.relative_to(p)) for f in sorted(p.rglob("*.csv")))
        else:
            found.append((p, Path(p.name)))
    return found


def detect(paths: list[Path], out_dir: Path, config: CoreConfig | None = None,
           interval_s: float = float("nan")) -> DetectReport:
    report = DetectReport()
    loaded = []
    for path, rel in collect_inputs(paths):
        try:
            series = read_series(path, allow_missing=True)
        except SeriesFileError as exc:
            report.errors.append(str(exc))
            continue
        loaded.append((rel, series.stamps, series.ts, series.values))
    if not loaded:
        return report
    registry = Registry.synthetic(len(loaded), interval_s=interval_s)
    core = AnomalyCore(registry, config)
    lengths = np.array([len(v) for _, _, _, v in loaded])
    batch = ReadingBatch.from_arrays(np.repeat(np.arange(len(loaded)), lengths),
                                     np.concatenate([t for _, _, t, _ in loaded]),
                                     np.concatenate([v for _, _, _, v in loaded]))
    scores = core.update(batch)
    reasons = describe_many(scores.reasons)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for k, (rel, stamps, _, values) in enumerate(loaded):
        a, b = bounds[k], bounds[k + 1]
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({
            "timestamp": stamps,
            "value": values,
            "anomaly_score": np.round(scores.score[a:b], 6),
            "alert": scores.alert[a:b].astype(np.int8),
            "reason": reasons[a:b],
        }).to_csv(target, index=False)
        report.written.append(target)
    report.rows = int(len(batch))
    report.alerts = int(scores.alert.sum())
    return report


def print_report(report: DetectReport, seconds: float) -> None:
    for err in report.errors:
        print(f"error: {err}", file=sys.stderr)
    print(f"scored {report.rows} rows in {len(report.written)} file(s) in {seconds:.2f} s "
          f"({report.rows / max(seconds, 1e-9):,.0f} rows/s); {len(report.errors)} file(s) rejected")
