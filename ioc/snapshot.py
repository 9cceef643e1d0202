"""Building the control room's :class:`~dashboard.source.Snapshot` from the pipeline's state.

The pipeline marks its snapshot out of date after a batch or an operator's action, and
builds one only when a reader asks (:meth:`ioc.pipeline.Pipeline.snapshot`): the display
reads about once a second, while a broker feed brings hundreds of batches.  A build copies
the registry-sized arrays (so the snapshot is immutable and safe from any thread), asks
the alert store for delivery counts in one grouped query, and computes the KPI tiles.

:class:`SnapshotBuilder` holds what only the display needs between builds: each sensor's
status and the build at which it last changed (``status_rev``, so the map redraws only
what changed), the build counter, and who is on duty (recomputed once a simulated minute).
It is called with the pipeline's lock held.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from dashboard.source import (ALERT, NORMAL, OFFLINE, WARNING, AlertInfo, DutyTeam, Health, Kpis, Metrics,
                              SensorExtras, Snapshot)
from ioc.alerting.dispatcher import AlertService
from ioc.alerting.wiring import NOT_CONFIGURED
from processing.alarm_rate import AlarmRate
from processing.alerting.engine import Routed
from processing.alerts import Alert, AlertError
from processing.core import AnomalyCore
from processing.kpis import CityKpis
from processing.registry import Registry

__all__ = ["LiveFigures", "SnapshotBuilder", "StoreAlerting", "silent_sensors"]


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """What the pipeline counted since it started, for the snapshot's health and metrics."""

    status: str                      # ok, warming_up, starting (a build may make ok "degraded")
    readings_per_s: float
    readings_total: int
    dead: Mapping[str, int]          # dead letters by code
    histograms: Mapping[str, Any]    # stage -> frozen histogram
    batches: int
    snapshot_builds: int
    alarm_rate: tuple[AlarmRate, AlarmRate] | None


def silent_sensors(alerts: Sequence[Alert]) -> np.ndarray:
    """The sensors whose ``silent`` alert is active: offline on the map, the rule the live pipeline's
    :meth:`processing.alerts.AlertList.silent_sensors` applies, for alerts read from a store."""
    return np.array(sorted({a.sensor for a in alerts if a.kind == "silent" and a.active}), dtype=np.intp)


class StoreAlerting:
    """What :class:`SnapshotBuilder` reads of an alerting service, from its store rather than its engine
    (a dashboard node of a cluster, the city at a past instant): the configuration, the routing
    record of each alert shown (``routed``, as last loaded), who is on duty."""

    def __init__(self, service: AlertService) -> None:
        self.config = service.config
        self.store = service.store
        self.engine = self
        self._service = service
        self.routed: dict[int, Routed] = {}

    def get(self, alert_id: int) -> Routed:
        r = self.routed.get(alert_id)
        if r is None:
            raise AlertError(f"no alert {alert_id}")
        return r

    def on_duty(self, now: float) -> Any:
        return self._service.on_duty(now)


class SnapshotBuilder:
    """Builds immutable snapshots of one pipeline (see the module docstring)."""

    def __init__(self, registry: Registry, extras: SensorExtras, alerting: AlertService, kpis: CityKpis, *,
                 run_id: str, speed: float, warn_score: float, band_k: float) -> None:
        self.registry, self.extras, self.alerting, self.kpis = registry, extras, alerting, kpis
        self.run_id, self.speed, self.warn_score, self.band_k = run_id, speed, warn_score, band_k
        n = len(registry)
        self.seq = 0
        self._status = np.full(n, OFFLINE, dtype=np.int8)
        self._status_rev = np.zeros(n, dtype=np.int64)
        self._officer_names = {o.id: o.name for o in alerting.config.officers}
        self._teams = {t.id: (t.name, t.name_en) for t in alerting.config.teams}
        self._duty_minute: int | None = None
        self._duty: tuple[DutyTeam, ...] = ()

    def build(self, *, now: float, wall: float, core: AnomalyCore, silent: np.ndarray, last_value: np.ndarray,
              score: np.ndarray, alerts: tuple[Alert, ...], alerts_rev: int, live: LiveFigures) -> Snapshot:
        """The snapshot at simulated time ``now`` (``wall``: the wall clock); ``silent``: the
        sensors silent now (offline on the map), ``alerts``: those the feed shows."""
        self.seq += 1
        last_ts = core.last_seen()
        offline = np.isnan(last_ts)
        offline[silent] = True
        st = np.full(len(self.registry), NORMAL, dtype=np.int8)
        st[score >= self.warn_score] = WARNING
        st[core.in_alert()] = ALERT
        st[offline] = OFFLINE
        self._status_rev[st != self._status] = self.seq
        self._status = st
        n_open = sum(1 for a in alerts if a.state == "open")
        n_active = n_open + sum(1 for a in alerts if a.state == "acknowledged")
        newest = float(np.nanmax(last_ts)) if not np.isnan(last_ts).all() else float("nan")
        status = live.status
        if status == "ok" and offline.size and offline.mean() > 0.5:
            status = "degraded"          # most of the city has gone quiet
        dead_total = sum(live.dead.values())
        health = Health(
            status=status, readings_per_s=live.readings_per_s, readings_total=live.readings_total,
            deadletters_total=dead_total, alerts_open=n_open, alerts_active=n_active,
            newest_age_s=now - newest if math.isfinite(newest) else float("nan"))
        metrics = Metrics(live.readings_total, dead_total, dict(live.dead), dict(live.histograms), live.batches,
                          live.snapshot_builds)
        return Snapshot(
            run_id=self.run_id, seq=self.seq, sim_time=now, wall_time=wall, speed=self.speed,
            registry=self.registry, extras=self.extras, last_value=last_value.copy(), last_ts=last_ts,
            score=score.copy(), status=st.copy(), status_rev=self._status_rev.copy(), alerts=alerts,
            alerts_rev=alerts_rev, kpis=self._kpis_at(now, core, last_value, offline, silent.size), health=health,
            metrics=metrics, city=self.alerting.config.city, warn_score=self.warn_score, band_k=self.band_k,
            alert_info=self._alert_info(alerts), on_duty=self._on_duty(now),
            officers=tuple(self._officer_names.items()), alarm_rate=live.alarm_rate)

    def _alert_info(self, alerts: tuple[Alert, ...]) -> dict[int, AlertInfo]:
        """Routing state and delivery counts of the alerts in the snapshot (one grouped store query)."""
        if not alerts:
            return {}
        engine = self.alerting.engine
        counts = self.alerting.store.delivery_summary(min(a.id for a in alerts), NOT_CONFIGURED)
        out: dict[int, AlertInfo] = {}
        for a in alerts:
            try:
                r = engine.get(a.id)
            except Exception:  # pruned between the two reads: no routing to show
                continue
            name, name_en = self._teams.get(r.team, (r.team, r.team))
            sent, pending, failed, unconf = counts.get(a.id, (0, 0, 0, 0))
            out[a.id] = AlertInfo(team=r.team, team_name=name, team_name_en=name_en, level=r.level,
                                  assignee=r.assignee or "", assignee_name=self._officer_names.get(r.assignee or "", ""),
                                  flaps=r.flaps, flapping=r.flapping, incident=r.incident, silenced_by=r.silenced_by,
                                  sent=sent, pending=pending, failed=failed, unconfigured=unconf)
        return out

    def _on_duty(self, now: float) -> tuple[DutyTeam, ...]:
        """Who is on duty at simulated time ``now`` (recomputed once per simulated minute)."""
        if not math.isfinite(now):
            return ()
        minute = int(now // 60)
        if minute != self._duty_minute:
            self._duty = tuple(
                DutyTeam(tid, *self._teams.get(tid, (tid, tid)), tuple((o.id, o.name, o.phone) for o in officers))
                for tid, officers in self.alerting.on_duty(now).items())
            self._duty_minute = minute
        return self._duty

    def _kpis_at(self, now: float, core: AnomalyCore, last_value: np.ndarray, offline: np.ndarray,
                 stale: int) -> Kpis:
        online = ~offline
        figures = self.kpis.compute(now, last_value, online, self.extras.alert_levels, self.extras.rated)
        return Kpis(**figures, online=int(online.sum()), total=len(self.registry), stale=int(stale),
                    never=int(np.isnan(core.last_seen()).sum()))
