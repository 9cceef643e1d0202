"""``ioc control-room-day``: what the duty officers of the embedded control room would get
over simulated days of ``ioc run`` -- alerts per hour per team beside ISA-18.2, and the
share of alerts that match an anomaly the simulator injected.

It builds the same :class:`~ioc.pipeline.Pipeline` as ``ioc run`` (the configured city,
its alerting rules and a real alert store in a scratch folder, the default core) with the
same pre-roll, then advances it tick by tick as ``ioc run --speed S`` does (``S x tick_s``
simulated seconds a tick), on a simulated clock instead of the wall clock, so a day takes
seconds instead of 24 minutes at ``--speed 60``.  The same pipeline code runs; only the
waiting between ticks is skipped.

An alert *matches* when an injected anomaly on its sensor was under way when it opened
(from its start to ``grace_intervals`` reading intervals after its end).  Hard-limit
breaches (a PM2.5 hour over the national limit, a river over its alarm level) are real
conditions, not anomalies the simulator plants; they are reported apart.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from processing.alarm_rate import ISA_ACCEPTABLE_PER_H, NUISANCE_S, AlarmRate, rating

__all__ = ["DayReport", "format_day", "run_day"]


@dataclass(frozen=True)
class DayReport:
    seed: int
    speed: float
    preroll_hours: float
    hours: float
    alerts: int                     # opened live, in the measured hours
    matched: int                    # of those, during an injected anomaly on their sensor
    matched_statistical: int        # of those, not hard-limit breaches
    limits: int                     # of those, hard-limit breaches
    silent: int                     # of those, sensors that went silent
    injected: int                   # anomalies injected in the measured hours
    caught: int                     # of those, with an alert on their sensor while under way
    rate: AlarmRate                 # every live onset, per team
    readings: int
    seconds: float                  # wall time of the whole run, pre-roll included

    @property
    def matched_share(self) -> float:
        return self.matched / self.alerts if self.alerts else float("nan")

    @property
    def statistical(self) -> int:
        return self.alerts - self.limits

    @property
    def statistical_matched_share(self) -> float:
        return self.matched_statistical / self.statistical if self.statistical else float("nan")


def run_day(*, seed: int = 1, speed: float = 60.0, hours: float = 24.0, preroll_hours: float | None = None,
            anomaly_rate: float = 0.5, grace_intervals: float = 3.0, registry_path: Path | None = None,
            start: float = 1_772_384_400.0) -> DayReport:
    """Run the embedded pipeline for ``hours`` of simulated live time; see the module docstring."""
    from ioc.citydata import default_city_dir, load_registry
    from ioc.alerting.wiring import build_alerting
    from ioc.citydata import load_extras
    from ioc.pipeline import Pipeline, PipelineConfig

    path = registry_path or default_city_dir() / "sensors.geojson"
    registry = load_registry(path)
    wards = Path(path).with_name("wards.geojson")
    if not wards.exists():
        wards = default_city_dir() / "wards.geojson"
    kw = {} if preroll_hours is None else {"preroll_hours": preroll_hours}
    config = PipelineConfig(speed=speed, anomaly_rate=anomaly_rate, seed=seed, **kw)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ioc-day-") as tmp:
        alerting, dispatcher = build_alerting(registry, Path(tmp) / "alerts", wards_path=wards)
        config = config.on_clock_of(alerting.config.city)      # time-of-day slots in local time
        clock = [start]
        pipe = Pipeline(registry, config, extras=load_extras(path, registry), alerting=alerting,
                        dispatcher=dispatcher, clock=lambda: clock[0], start=start)
        try:
            pipe.preroll()
            tick = config.speed * config.tick_s
            end = pipe.live_start + hours * 3600.0
            t = pipe.live_start
            while t < end:
                t = min(t + tick, end)
                clock[0] = start + (t - pipe.live_start) / config.speed
                pipe.step(t)
            every = pipe.alerts.alerts()
            live = [a for a in every if pipe.live_start < a.opened_at <= end]
            labels = [lab for lab in pipe.injected if lab.start <= end]
            rate = pipe.alarm_rates(end)
            readings = pipe.snapshot().health.readings_total
        finally:
            pipe.close()
    assert rate is not None
    interval = {s.id: float(s.interval_s) for s in registry.sensors}
    by_sensor: dict[str, list[tuple[float, float]]] = {}
    for lab in labels:
        by_sensor.setdefault(lab.sensor_id, []).append(
            (lab.start, lab.end + grace_intervals * interval.get(lab.sensor_id, 300.0)))
    hit = [any(s <= a.opened_at <= e for s, e in by_sensor.get(a.sensor_id, ())) for a in live]
    alerted: dict[str, list[tuple[float, float]]] = {}
    for a in every:
        alerted.setdefault(a.sensor_id, []).append((a.opened_at, a.last_at))
    measured = [lab for lab in labels if lab.start > pipe.live_start]
    caught = 0
    for lab in measured:
        s, e = lab.start, lab.end + grace_intervals * interval.get(lab.sensor_id, 300.0)
        caught += any(o <= e and last >= s for o, last in alerted.get(lab.sensor_id, ()))
    return DayReport(seed=seed, speed=speed, preroll_hours=config.preroll_hours, hours=hours, alerts=len(live),
                     matched=sum(hit), matched_statistical=sum(h for h, a in zip(hit, live) if a.kind != "limit"),
                     limits=sum(a.kind == "limit" for a in live),
                     silent=sum(a.kind == "silent" for a in live), injected=len(measured), caught=caught,
                     rate=rate[1], readings=int(readings), seconds=time.perf_counter() - wall)


def _pct(x: float) -> str:
    return "–" if np.isnan(x) else f"{100 * x:.0f}%"


def format_day(reports: list[DayReport]) -> str:
    """A Markdown report: per seed the alerts and their match to injected anomalies, then the
    alarm rate per team beside ISA-18.2."""
    lines = ["| seed | alerts | matching an injected anomaly | hard-limit breaches | silent sensors | "
             "share matching (limits apart) | injected anomalies caught |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reports:
        lines.append(f"| {r.seed} | {r.alerts} | {r.matched} ({_pct(r.matched_share)}) | {r.limits} | {r.silent} | "
                     f"{r.matched_statistical}/{r.statistical} ({_pct(r.statistical_matched_share)}) | "
                     f"{r.caught}/{r.injected} |")
    lines += ["", f"alerts per hour (ISA-18.2: about {ISA_ACCEPTABLE_PER_H:g}/h per operator; nuisance = cleared by "
              f"itself within {NUISANCE_S / 60:.0f} min):", "",
              "| team | " + " | ".join(f"seed {r.seed} /h" for r in reports) + " | peak in 10 min | nuisance | rating |",
              "|---|" + "---:|" * len(reports) + "---:|---:|---|"]
    teams = sorted({str(t) for r in reports for t in r.rate.teams})
    for team in teams:
        figs = [_team(r.rate, team) for r in reports]
        count = sum(f[0] for f in figs)
        nuis = sum(f[2] for f in figs)
        worst = max(f[1] for f in figs)
        lines.append(f"| {team} | " + " | ".join(f"{f[1]:.2f}" for f in figs) + f" | {max(f[3] for f in figs)} | "
                     f"{_pct(nuis / count if count else float('nan'))} | {rating(worst, any(f[4] for f in figs))} |")
    lines.append("| **all** | " + " | ".join(f"{r.rate.total_per_hour:.2f}" for r in reports)
                 + f" | {max(r.rate.total_peak for r in reports)} | "
                 f"{_pct(sum(r.rate.total_nuisance for r in reports) / max(sum(r.rate.total_count for r in reports), 1))} | |")
    return "\n".join(lines)


def _team(rate: AlarmRate, team: str) -> tuple[int, float, int, int, bool]:
    hit = np.flatnonzero(rate.teams == team)
    if not hit.size:
        return 0, 0.0, 0, 0, False
    k = int(hit[0])
    return (int(rate.count[k]), float(rate.per_hour[k]), int(rate.nuisance[k]), int(rate.peak[k]),
            bool(rate.flood[k]))
