"""``ioc evaluate``: simulate the city with labelled anomalies, score it, and measure
what reaches the duty officer.

The simulated span is ``days`` long; the first ``learn_days`` are clean (the core
learns the city, as it would from its checkpoint after the first week in service),
then anomalies are injected at ``anomaly_rate`` per sensor per day and everything
is measured over the remaining days:

* per anomaly kind, recall (a label is caught when the sensor is in alert at some
  reading from the label's start to ``grace`` intervals after its end) and the
  median delay from the start to the first alert;
* alert onsets (a reading in alert whose sensor was not in alert at its previous
  reading: one page), the false ones (no label explains them) per 100
  sensor-days, and event precision (the share of onsets that are true);
* onsets caused by a hard-limit breach (a noisy street above QCVN 26's 70 dB(A),
  a feeder over its rating) are real events, not false alarms, and are counted
  apart -- but they page someone, so they are in the alarm rate;
* the alarm rate per team (routed by the city's alerting rules) against the
  ISA-18.2 figure, and the share of alerts that cleared by themselves within
  10 minutes (nuisance alerts);
* the onsets while learning, for the record of a cold start.

The core sees the stream exactly as it would live (one batch per simulated
minute), so the figures are those of the running system.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from processing.alarm_rate import ISA_ACCEPTABLE_PER_H, NUISANCE_S, AlarmRate, alarm_rate, rating
from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry
from simulators.anomalies import ANOMALY_KINDS
from simulators.city import CitySimulator

__all__ = ["Evaluation", "KindResult", "evaluate", "format_report", "format_table", "onsets_of"]

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
    seed: int
    kinds: tuple[KindResult, ...]
    onsets: int                     # statistical onsets (hard-limit ones apart), measured days
    false_onsets: int
    limit_onsets: int
    learning_onsets: int            # every onset during the clean learning days
    sensor_days: float              # measured days only
    readings: int
    rate: AlarmRate                 # every onset (limits included) over the measured days

    @property
    def false_per_100_sensor_days(self) -> float:
        return 100.0 * self.false_onsets / self.sensor_days

    @property
    def precision(self) -> float:
        return (self.onsets - self.false_onsets) / self.onsets if self.onsets else float("nan")

    @property
    def recall(self) -> float:
        labels = sum(k.labels for k in self.kinds)
        return sum(k.caught for k in self.kinds) / labels if labels else float("nan")


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


def onsets_of(sensor: np.ndarray, ts: np.ndarray, alert: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where a sensor's alert flag turns on, and for each the time it next turns off (NaN: never)."""
    order = np.lexsort((ts, sensor))
    s, a, t = sensor[order], alert[order], ts[order]
    same = np.concatenate([[False], s[1:] == s[:-1]])
    prev = np.concatenate([[False], a[:-1]]) & same
    on = a & ~prev
    off = ~a & np.concatenate([[False], a[:-1]]) & same
    on_rows = np.flatnonzero(on)
    off_rows = np.flatnonzero(off)
    nxt = np.searchsorted(off_rows, on_rows)
    cleared = np.full(on_rows.size, np.nan)
    ok = nxt < off_rows.size
    ok[ok] &= s[off_rows[nxt[ok]]] == s[on_rows[ok]]
    cleared[ok] = t[off_rows[nxt[ok]]]
    return order[on_rows], cleared


def _teams(registry: Registry, alerting_config: Path | None) -> np.ndarray:
    """The team each sensor's anomaly alerts are routed to (by domain if no alerting config)."""
    from ioc.citydata import default_city_dir

    path = alerting_config or default_city_dir() / "alerting.toml"
    if not path.exists():
        return np.array([s.domain for s in registry.sensors])
    from ioc.alerting import load_config
    from processing.alerting.routing import Router

    router = Router(load_config(path, wards=registry.wards))
    return np.array([router.team_for(s.domain, s.ward, "anomaly", "warning").id for s in registry.sensors])


def evaluate(registry: Registry, config: CoreConfig | None = None, *, days: float = 21.0, learn_days: float = 7.0,
             seed: int = 1, anomaly_rate: float = 0.5, grace_intervals: float = 3.0,
             alerting_config: Path | None = None) -> Evaluation:
    if not 0 <= learn_days < days:
        raise ValueError(f"need 0 <= learn_days < days, got learn_days={learn_days!r}, days={days!r}")
    sim = CitySimulator(registry, seed=seed, anomaly_rate=anomaly_rate)
    measured_from = START + learn_days * 86400.0
    end = START + days * 86400.0
    batch, labels = sim.generate(START, end, anomalies_from=measured_from if learn_days > 0 else None)
    core = AnomalyCore(registry, config)
    _, alert, reasons = score_stream(core, batch)

    on_rows, cleared = onsets_of(batch.sensor, batch.ts, alert)
    onset = np.zeros(len(batch), dtype=bool)
    onset[on_rows] = True
    measured = batch.ts >= measured_from

    explained = np.zeros(len(batch), dtype=bool)
    per_kind: dict[str, list[float]] = {k: [] for k in ANOMALY_KINDS}
    counts = {k: 0 for k in ANOMALY_KINDS}
    by_sensor = np.argsort(batch.sensor, kind="stable")
    bounds = np.searchsorted(batch.sensor[by_sensor], np.arange(len(registry) + 1))
    for lab in labels:
        i = registry.index_of(lab.sensor_id)
        grace = grace_intervals * float(registry.interval_s[i])
        mine = by_sensor[bounds[i]:bounds[i + 1]]
        rows = mine[(batch.ts[mine] >= lab.start) & (batch.ts[mine] <= lab.end + grace)]
        counts[lab.kind] += 1
        explained[rows] = True
        hits = rows[alert[rows]]
        if hits.size:
            per_kind[lab.kind].append(float(batch.ts[hits[0]] - lab.start))
    kinds = tuple(KindResult(k, counts[k], len(per_kind[k]),
                             float(np.median(per_kind[k])) if per_kind[k] else float("nan"))
                  for k in ANOMALY_KINDS if counts[k])
    at_limit = (reasons & Reason.LIMIT) > 0
    team = _teams(registry, alerting_config)
    keep = measured[on_rows]
    rate = alarm_rate(batch.ts[on_rows[keep]], cleared[keep], team[batch.sensor[on_rows[keep]]], now=end,
                      window_s=end - measured_from)
    return Evaluation(seed=seed, kinds=kinds, onsets=int((onset & measured & ~at_limit).sum()),
                      false_onsets=int((onset & measured & ~explained & ~at_limit).sum()),
                      limit_onsets=int((onset & measured & at_limit).sum()),
                      learning_onsets=int((onset & ~measured).sum()),
                      sensor_days=len(registry) * (days - learn_days), readings=len(batch), rate=rate)


def _pct(x: float) -> str:
    return "–" if np.isnan(x) else f"{x:.0%}"


def format_table(ev: Evaluation) -> str:
    """One seed: the per-kind table and its summary lines."""
    return format_report([ev])


def format_report(evs: Sequence[Evaluation]) -> str:
    """Several seeds side by side: recall per kind and seed, then precision, false alerts and alarm rate."""
    seeds = " | ".join(f"seed {e.seed}" for e in evs)
    lines = [f"| anomaly kind | labels | {seeds} | recall | median delay |",
             "|---|---:|" + "---:|" * len(evs) + "---:|---:|"]
    for name in ANOMALY_KINDS:
        rows = [next((k for k in e.kinds if k.kind == name), None) for e in evs]
        if not any(rows):
            continue
        labels = sum(r.labels for r in rows if r)
        caught = sum(r.caught for r in rows if r)
        delays = [r.median_delay_s for r in rows if r and not np.isnan(r.median_delay_s)]
        delay = f"{np.median(delays) / 60:.0f} min" if delays else "–"
        cells = " | ".join(_pct(r.recall) if r else "–" for r in rows)
        lines.append(f"| {name} | {labels} | {cells} | {_pct(caught / max(labels, 1))} | {delay} |")
    labels = sum(k.labels for e in evs for k in e.kinds)
    caught = sum(k.caught for e in evs for k in e.kinds)
    cells = " | ".join(_pct(e.recall) for e in evs)
    lines.append(f"| **all** | {labels} | {cells} | {_pct(caught / max(labels, 1))} | |")
    onsets = sum(e.onsets for e in evs)
    false = sum(e.false_onsets for e in evs)
    lines.append(f"| event precision | | {' | '.join(_pct(e.precision) for e in evs)} | "
                 f"{_pct((onsets - false) / onsets if onsets else float('nan'))} | |")
    sd = sum(e.sensor_days for e in evs)
    lines.append(f"| false alerts / 100 sensor-days | | "
                 f"{' | '.join(f'{e.false_per_100_sensor_days:.1f}' for e in evs)} | {100 * false / sd:.1f} | |")
    lines.append("")
    lines.append(f"alert onsets: {onsets}, false (no label explains them): {false}; besides, "
                 f"{sum(e.limit_onsets for e in evs)} hard-limit breaches; while learning (clean days): "
                 f"{sum(e.learning_onsets for e in evs)} onsets")
    lines.append("")
    lines.append(f"alarm rate (every onset, limits included; ISA-18.2: about {ISA_ACCEPTABLE_PER_H:g}/h per "
                 f"operator; nuisance = cleared by itself within {NUISANCE_S / 60:.0f} min):")
    lines.append("")
    lines.append("| team | " + " | ".join(f"seed {e.seed} /h" for e in evs) + " | peak in 10 min | nuisance | rating |")
    lines.append("|---|" + "---:|" * len(evs) + "---:|---:|---|")
    teams = sorted({str(t) for e in evs for t in e.rate.teams})
    for team in teams + ["**all**"]:
        figs = [e.rate.team(team) if team != "**all**" else
                {"per_hour": e.rate.total_per_hour, "peak": e.rate.total_peak, "count": e.rate.total_count,
                 "nuisance": e.rate.total_nuisance, "flood": e.rate.total_flood} for e in evs]
        count = sum(f["count"] for f in figs)
        nuis = sum(f["nuisance"] for f in figs)
        worst = max(f["per_hour"] for f in figs)
        flood = any(f["flood"] for f in figs)
        lines.append(f"| {team} | " + " | ".join(f"{f['per_hour']:.2f}" for f in figs)
                     + f" | {max(f['peak'] for f in figs)} | {_pct(nuis / count if count else float('nan'))} | "
                     + (rating(worst, flood) if team != "**all**" else "") + " |")
    return "\n".join(lines)
