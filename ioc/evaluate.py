"""``ioc evaluate``: simulate the city with labelled anomalies, score it, and measure.

For every anomaly kind the simulator injects, it reports recall (a label is
caught when the sensor is in alert at some reading from the label's start to
``grace`` intervals after its end) and the median delay from the start to the
first alert; for the whole run, false alarms: alert onsets that no label
explains, per 100 sensor-days, and the share of onsets that are true.  Onsets
caused by a hard-limit breach (a noisy street above QCVN 26's 70 dB(A), a feeder
over its rating) are real events, not false alarms, and are counted apart.

The core sees the stream exactly as it would live (one batch per simulated
minute), so the figures are those of the running system.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry
from simulators.anomalies import ANOMALY_KINDS
from simulators.city import CitySimulator

__all__ = ["Evaluation", "KindResult", "evaluate", "format_table"]

START = 1_772_384_400.0  # Monday 2026-03-02 00:00 +07:00


@dataclass(frozen=True)
class KindResult:
    kind: str
    labels: int
    caught: int
    median_delay_s: float

    @property
    def recall(self) -> float:
        return self.caught / self.labels if self.labels else float("nan")


@dataclass(frozen=True)
class Evaluation:
    kinds: tuple[KindResult, ...]
    onsets: int
    false_onsets: int
    limit_onsets: int
    sensor_days: float
    readings: int

    @property
    def false_per_100_sensor_days(self) -> float:
        return 100.0 * self.false_onsets / self.sensor_days

    @property
    def precision(self) -> float:
        return (self.onsets - self.false_onsets) / self.onsets if self.onsets else float("nan")


def score_stream(core: AnomalyCore, batch: ReadingBatch,
                 step_s: float = 60.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feed a time-sorted batch to the core in ``step_s`` slices; return (score, alert, reasons)."""
    score = np.zeros(len(batch))
    alert = np.zeros(len(batch), dtype=bool)
    reasons = np.zeros(len(batch), dtype=np.uint16)
    if not len(batch):
        return score, alert, reasons
    edges = np.searchsorted(batch.ts, np.arange(batch.ts[0], batch.ts[-1] + step_s, step_s), side="left")
    edges = np.unique(np.append(edges, len(batch)))
    for a, b in zip(edges[:-1], edges[1:]):
        result = core.update(batch.take(slice(a, b)))
        score[a:b] = result.score
        alert[a:b] = result.alert
        reasons[a:b] = result.reasons
    return score, alert, reasons


def evaluate(registry: Registry, config: CoreConfig | None = None, *, days: float = 7.0, seed: int = 1,
             anomaly_rate: float = 0.5, grace_intervals: float = 3.0) -> Evaluation:
    sim = CitySimulator(registry, seed=seed, anomaly_rate=anomaly_rate)
    batch, labels = sim.generate(START, START + days * 86400.0)
    core = AnomalyCore(registry, config)
    _, alert, reasons = score_stream(core, batch)

    # alert onsets: a reading in alert whose sensor was not in alert at its previous reading
    order = np.lexsort((batch.ts, batch.sensor))
    s_sorted, a_sorted = batch.sensor[order], alert[order]
    prev_alert = np.concatenate([[False], a_sorted[:-1]]) & np.concatenate([[False], s_sorted[1:] == s_sorted[:-1]])
    onset = np.zeros(len(batch), dtype=bool)
    onset[order] = a_sorted & ~prev_alert

    explained = np.zeros(len(batch), dtype=bool)
    per_kind: dict[str, list[float]] = {k: [] for k in ANOMALY_KINDS}
    counts = {k: 0 for k in ANOMALY_KINDS}
    for lab in labels:
        i = registry.index_of(lab.sensor_id)
        grace = grace_intervals * float(registry.interval_s[i])
        rows = np.flatnonzero((batch.sensor == i) & (batch.ts >= lab.start) & (batch.ts <= lab.end + grace))
        counts[lab.kind] += 1
        explained[rows] = True
        hits = rows[alert[rows]]
        if hits.size:
            per_kind[lab.kind].append(float(batch.ts[hits[0]] - lab.start))
    kinds = tuple(KindResult(k, counts[k], len(per_kind[k]),
                             float(np.median(per_kind[k])) if per_kind[k] else float("nan"))
                  for k in ANOMALY_KINDS if counts[k])
    at_limit = (reasons & Reason.LIMIT) > 0
    return Evaluation(kinds=kinds, onsets=int((onset & ~at_limit).sum()),
                      false_onsets=int((onset & ~explained & ~at_limit).sum()),
                      limit_onsets=int((onset & at_limit).sum()),
                      sensor_days=len(registry) * days, readings=len(batch))


def format_table(ev: Evaluation) -> str:
    lines = ["| anomaly kind | labels | caught | recall | median delay |",
             "|---|---:|---:|---:|---:|"]
    for k in ev.kinds:
        delay = "–" if np.isnan(k.median_delay_s) else f"{k.median_delay_s / 60:.0f} min"
        lines.append(f"| {k.kind} | {k.labels} | {k.caught} | {k.recall:.0%} | {delay} |")
    total = sum(k.labels for k in ev.kinds)
    caught = sum(k.caught for k in ev.kinds)
    lines.append(f"| **all** | {total} | {caught} | {caught / max(total, 1):.0%} | |")
    lines.append("")
    lines.append(f"alert onsets: {ev.onsets}; false (no label explains them): {ev.false_onsets} "
                 f"= {ev.false_per_100_sensor_days:.1f} per 100 sensor-days; precision {ev.precision:.0%}; "
                 f"besides, {ev.limit_onsets} hard-limit breaches")
    return "\n".join(lines)
