"""What the control room reads: an immutable :class:`Snapshot` of the city, and its source.

The dashboard never computes anomalies; a pipeline (``ioc.pipeline``) publishes
snapshots and the dashboard renders them.  This module is the contract between
the two, owned by the reader:

* :class:`Snapshot` -- frozen, with read-only numpy arrays indexed by sensor
  (registry order): last value, time, score, status, and ``status_rev`` -- the
  snapshot ``seq`` at which each sensor's status last changed, so a display that
  has rendered snapshot ``k`` needs only the sensors with ``status_rev > k``;
* :class:`AlertInfo` -- what the alerting service adds to an alert (team,
  escalation level, assignee, flaps, incident, silence, delivery counts), and
  :class:`DutyTeam` -- who is on duty now, both carried by the snapshot;
* ``Snapshot.alarm_rate`` -- alerts per hour over the last hour and over the live run, in
  total and per team, with the share of nuisance alerts (:mod:`processing.alarm_rate`);
* :class:`SnapshotSource` -- the few calls the dashboard makes: the current
  snapshot, one sensor's recent series (drill-down), the operator actions on
  alerts (acknowledge, resolve, assign), an alert's deliveries and its CAP XML.

Status codes (:data:`STATUSES`): 0 normal, 1 warning (score >= 0.5),
2 alert (the core's alert flag), 3 offline (silent or never reported).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np

from processing.alarm_rate import AlarmRate
from processing.alerts import Alert
from processing.city import CityProfile
from processing.registry import Registry

__all__ = ["AlertInfo", "DutyTeam", "Health", "Kpis", "LatencyHistogram", "Metrics", "SensorExtras", "Snapshot", "SnapshotSource",
           "STATUSES", "NORMAL", "WARNING", "ALERT", "OFFLINE"]

STATUSES: tuple[str, ...] = ("normal", "warning", "alert", "offline")
NORMAL, WARNING, ALERT, OFFLINE = range(4)

_NAN = float("nan")


@dataclass(frozen=True, eq=False)
class SensorExtras:
    """Per-sensor facts from the registry file that the core does not use.

    ``alert_levels`` is ``[sensors, 3]`` (flood alert levels BĐ1/BĐ2/BĐ3 of
    water-level sensors, NaN elsewhere); ``rated`` is a feeder's rating in MW
    (NaN elsewhere).
    """

    alert_levels: np.ndarray
    rated: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "SensorExtras":
        return cls(np.full((n, 3), np.nan), np.full(n, np.nan))


@dataclass(frozen=True, slots=True)
class Kpis:
    """Headline numbers per domain; NaN / -1 when there is nothing to show."""

    traffic_speed: float = _NAN          # mean of online average-speed sensors, km/h
    traffic_congested: int = 0           # intersections (sites) congested now
    traffic_sites: int = 0
    aqi: float = _NAN                    # highest hourly VN_AQI over the stations (integer)
    aqi_category: int = -1               # 0..5, processing.aqi.CATEGORIES
    aqi_sensor: int = -1                 # a sensor of the worst station
    aqi_hour: float = _NAN               # start of the hour the AQI stands for (epoch s)
    aqi_stations: int = 0
    flood_level: float = _NAN            # highest river level, m
    flood_sensor: int = -1
    flood_stage: int = 0                 # alert levels reached: 0 (below BĐ1) .. 3
    pressure_min: float = _NAN           # lowest water pressure, bar
    pressure_sensor: int = -1
    feeder_total: float = _NAN           # MW over online feeders
    feeder_max_pct: float = _NAN         # highest load as % of its rating
    feeder_sensor: int = -1
    online: int = 0
    total: int = 0
    stale: int = 0                       # reported before, silent now
    never: int = 0                       # never reported


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """The alerting service's view of one alert (hashable: a feed row re-renders when it changes)."""

    team: str = ""                       # team id (alerting.toml)
    team_name: str = ""                  # Vietnamese name
    team_name_en: str = ""
    level: int = 0                       # escalation level reached
    assignee: str = ""                   # officer id ("" = nobody)
    assignee_name: str = ""
    flaps: int = 0
    flapping: bool = False
    incident: int | None = None
    silenced_by: str | None = None
    sent: int = 0                        # deliveries by status
    pending: int = 0
    failed: int = 0
    unconfigured: int = 0                # no receiver configured for the channel (not an error)

    @property
    def deliveries(self) -> int:
        return self.sent + self.pending + self.failed + self.unconfigured


@dataclass(frozen=True, slots=True)
class DutyTeam:
    """One team and its officers on shift now: ``officers`` is ``(id, name, phone)`` triples."""

    team: str
    name: str
    name_en: str
    officers: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Health:
    status: str = "starting"             # starting | warming_up | ok | degraded
    readings_per_s: float = 0.0
    readings_total: int = 0
    deadletters_total: int = 0
    alerts_open: int = 0                 # state 'open' (not yet acknowledged)
    alerts_active: int = 0               # open + acknowledged
    newest_age_s: float = _NAN           # simulated seconds since the newest reading


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Cumulative-free bucket counts: ``counts[i]`` observations <= ``bounds[i]`` and > the
    previous bound; the last count is above every bound (+Inf)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class Metrics:
    readings_total: int = 0
    deadletters_total: int = 0
    deadletters_by_reason: Mapping[str, int] = field(default_factory=dict)
    stages: Mapping[str, LatencyHistogram] = field(default_factory=dict)
    batches_total: int = 0                  # batches processed (readings or an idle tick)
    snapshot_builds_total: int = 0          # snapshots built (one per read that found a change)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The city at one instant, as the pipeline last published it."""

    run_id: str
    seq: int
    sim_time: float
    wall_time: float
    speed: float
    registry: Registry
    extras: SensorExtras
    last_value: np.ndarray               # float64, NaN = never reported
    last_ts: np.ndarray                  # float64 epoch s, NaN = never
    score: np.ndarray                    # float64 score of the newest reading
    status: np.ndarray                   # int8 status codes
    status_rev: np.ndarray               # int64 seq of each sensor's last status change
    alerts: tuple[Alert, ...]
    alerts_rev: int
    kpis: Kpis
    health: Health
    metrics: Metrics
    city: CityProfile                    # names and local time of the city (config/<city>/city.toml)
    warn_score: float = 0.5
    band_k: float = 4.0                  # drill-down band: baseline +- band_k x scale
    alert_info: Mapping[int, AlertInfo] = field(default_factory=dict)    # alert id -> routing + deliveries
    on_duty: tuple[DutyTeam, ...] = ()   # every team, in configuration order
    officers: tuple[tuple[str, str], ...] = ()   # (id, name) of every officer, for assigning
    # alarm-rate figures of the live run: (last hour, whole run), see processing.alarm_rate; None before live
    alarm_rate: tuple[AlarmRate, AlarmRate] | None = None

    def __post_init__(self) -> None:
        for name in ("last_value", "last_ts", "score", "status", "status_rev"):
            arr = getattr(self, name)
            if arr.shape != (len(self.registry),):
                raise ValueError(f"Snapshot.{name} must have one entry per sensor")
            if arr.flags.writeable:
                arr = arr.copy()
                arr.setflags(write=False)
                object.__setattr__(self, name, arr)

    def status_counts(self) -> tuple[int, int, int, int]:
        c = np.bincount(self.status.astype(np.int64), minlength=4)
        return int(c[0]), int(c[1]), int(c[2]), int(c[3])

    def sensor_status(self, i: int) -> str:
        return STATUSES[int(self.status[i])]

    @staticmethod
    def finite(x: float) -> float | None:
        """JSON-friendly float: None for NaN/inf."""
        return float(x) if x is not None and math.isfinite(x) else None


class SnapshotSource(Protocol):
    """What the dashboard and the HTTP API call; implementations must be thread-safe."""

    def snapshot(self) -> Snapshot: ...

    def recent(self, sensor: int) -> dict[str, np.ndarray]:
        """The sensor's recent readings in time order: ts, value, score, baseline, scale."""
        ...

    def acknowledge(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = "") -> Alert:
        """``by`` (signed in as ``role`` from ``address``, for the audit log) takes the alert."""
        ...

    def resolve(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = "") -> Alert: ...

    # optional (the API and the feed check with ``getattr``): a source without alerting has none of these
    def assign(self, alert_id: int, officer_id: str, by: str, *, role: str = "", address: str = "") -> Alert:
        """Give the alert to an officer (an id of :attr:`Snapshot.officers`); AlertError if unknown."""
        ...

    def deliveries(self, alert_ids: list[int]) -> dict[int, list[dict[str, object]]]:
        """Each alert's deliveries: ``{channel, address, status, attempts, last_error}``."""
        ...

    def cap_xml(self, alert_id: int) -> str:
        """The alert as OASIS CAP 1.2 XML; AlertError for an unknown id."""
        ...
