"""The city as it stood at a past instant, from the history and the alert store: what the time slider
and an incident's replay show.

:meth:`PastView.snapshot_at` builds the same :class:`~dashboard.source.Snapshot` the live display
renders (:class:`ioc.snapshot.SnapshotBuilder`), from:

* the history (:class:`ioc.history.HistoryStore`): each sensor's last reading at or before the
  instant -- value, score, alert flag -- and the day before it for the KPI tiles (the hourly
  VN_AQI needs its hours) and the drill-down charts;
* the alert store: the alerts open at that instant (opened before it, not resolved by then), each
  in the state it had then (acknowledged only if it was by then; cleared only if by then).

Nothing is re-simulated or re-scored.  A sensor whose ``silent`` alert was active at the instant
shows as offline, as it did live (:func:`ioc.snapshot.silent_sensors`).
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Callable

import numpy as np

from dashboard.source import SensorExtras, Snapshot
from ioc.alerting.dispatcher import AlertService
from ioc.history import HistoryStore
from ioc.snapshot import LiveFigures, SnapshotBuilder, StoreAlerting, silent_sensors
from processing.alerting.engine import Routed
from processing.alerts import Alert
from processing.config import CoreConfig
from processing.kpis import CityKpis
from processing.registry import Registry
from processing.scored_view import ScoredView

__all__ = ["PastView"]

KPI_LOOKBACK_S = 24 * 3600.0       # the readings before the instant the tiles and charts are built from
STORE_CACHE_S = 5.0                # how long the alert store's rows are reused between instants


def alert_at(a: Alert, t: float) -> Alert | None:
    """``a`` as it stood at ``t`` (None: not opened yet, or resolved by then)."""
    if a.opened_at > t or (a.resolved_at is not None and a.resolved_at <= t):
        return None
    acked = a.acknowledged_at is not None and a.acknowledged_at <= t
    return dataclasses.replace(
        a, state="acknowledged" if acked else "open", resolved_by=None, resolved_at=None,
        acknowledged_by=a.acknowledged_by if acked else None, acknowledged_at=a.acknowledged_at if acked else None,
        cleared_at=a.cleared_at if a.cleared_at is not None and a.cleared_at <= t else None,
        last_at=min(a.last_at, t))


class PastView:
    """Snapshots of past instants for one city (thread-safe; the last few are cached)."""

    def __init__(self, registry: Registry, history: HistoryStore, service: AlertService, *,
                 extras: SensorExtras | None = None, core: CoreConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.history = history
        self.service = service
        self.extras = extras or SensorExtras.empty(len(registry))
        self.core = core or CoreConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[int, Snapshot] = {}
        self._alerts: list[Routed] | None = None
        self._alerts_at = -math.inf

    def extent(self) -> tuple[float, float] | None:
        return self.history.extent()

    def _stored(self) -> list[Routed]:
        """Every alert of the store, read at most every ``STORE_CACHE_S`` (a replay asks each second)."""
        now = time.monotonic()
        with self._lock:
            if self._alerts is not None and now - self._alerts_at < STORE_CACHE_S:
                return self._alerts
        rows = self.service.store.alerts(None, limit=100_000)
        with self._lock:
            self._alerts, self._alerts_at = rows, now
        return rows

    def snapshot_at(self, t: float) -> Snapshot:
        """The city at ``t`` (epoch seconds; to the second)."""
        key = int(t)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        snap = self._build(float(key))
        with self._lock:
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = snap
        return snap

    def _build(self, t: float) -> Snapshot:
        reg = self.registry
        n = len(reg)
        r = self.history.readings(t - KPI_LOOKBACK_S, t)
        view = ScoredView(n, window=self.core.window)
        view.add(r.sensor, r.ts, r.value, r.score, r.alert)
        kpis = CityKpis.of(reg)
        kpis.add(r.sensor, r.ts, r.value)
        routed: list[Routed] = []
        for rr in self._stored():
            a = alert_at(rr.alert, t)
            if a is not None:
                routed.append(dataclasses.replace(rr, alert=a))
        alerting = StoreAlerting(self.service)
        alerting.routed = {x.id: x for x in routed}
        alerts = tuple(sorted((x.alert for x in routed), key=lambda a: a.id))
        silent = silent_sensors(alerts)                   # offline then: the live rule
        builder = SnapshotBuilder(reg, self.extras, alerting, kpis, run_id=f"at:{int(t)}", speed=0.0,  # type: ignore[arg-type]
                                  warn_score=0.5, band_k=self.core.z_report)
        live = LiveFigures("history", 0.0, len(r), {}, {}, 0, 1, None)
        return builder.build(now=t, wall=self.clock(), core=view, silent=silent, last_value=view.last_value,
                             score=np.nan_to_num(view.score), alerts=alerts, alerts_rev=len(alerts), live=live)

    def recent_at(self, t: float, sensor: int) -> dict[str, np.ndarray]:
        """One sensor's readings of the day before ``t`` (the drill-down of a past instant)."""
        spec = self.registry.sensors[sensor]
        d = self.history.sensor_history(spec.id, t - KPI_LOOKBACK_S, t, points=10**6)
        nan = np.full(len(d), math.nan)
        return {"ts": d.ts, "value": d.value, "score": d.score, "baseline": nan, "scale": nan.copy()}

