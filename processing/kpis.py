"""The control room's headline figures, from the newest reading of every sensor.

Traffic (mean speed, congested intersections), air (the hourly VN_AQI of the worst station,
from the NowCast of hourly PM means), flood (the highest river level and the alert level it
has reached), water (the lowest pressure) and power (total feeder load, the most loaded
feeder against its rating).

Pure: :class:`CityKpis` is built once per registry (which sensors each figure reads, which
sensors form one site) and keeps the hourly PM means it is fed (:meth:`CityKpis.add`);
:meth:`CityKpis.compute` turns the arrays of the moment into a dict of figures, with the
keys of :class:`dashboard.source.Kpis`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from processing import aqi as vn_aqi
from processing.registry import Registry

__all__ = ["CityKpis", "KpiConfig", "sites"]


@dataclass(frozen=True, slots=True)
class KpiConfig:
    # an intersection is congested when a speed sensor there reads below this ...
    congested_speed_kmh: float = 20.0
    # ... or a lane-occupancy sensor there reads at least this
    congested_occupancy_pct: float = 35.0
    # sensors closer than this belong to one site (intersection, air station)
    site_radius_m: float = 80.0


def sites(lon: np.ndarray, lat: np.ndarray, radius_m: float) -> np.ndarray:
    """Group points closer than ``radius_m`` (greedy, in order): site number per point.

    >>> sites(np.array([106.0, 106.0005, 106.1]), np.array([21.0, 21.0, 21.0]), 80.0).tolist()
    [0, 0, 1]
    """
    n = lon.shape[0]
    site = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return site
    y = np.radians(lat) * 6_371_000.0
    x = np.radians(lon) * 6_371_000.0 * np.cos(np.radians(float(np.mean(lat))))
    k = 0
    for i in range(n):
        if site[i] >= 0:
            continue
        near = (site < 0) & ((x - x[i]) ** 2 + (y - y[i]) ** 2 <= radius_m * radius_m)
        site[near] = k
        k += 1
    return site


class CityKpis:
    """The figures of one registry: its sensors' ``kinds`` and positions, in registry order."""

    def __init__(self, kinds: Sequence[str], lon: np.ndarray, lat: np.ndarray,
                 config: KpiConfig | None = None) -> None:
        self.config = cfg = config or KpiConfig()
        kind = np.asarray(kinds, dtype=object)
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        self.n = n = kind.size
        self._kind_idx = {k: np.flatnonzero(kind == k) for k in
                          ("avg_speed", "water_level", "water_pressure", "feeder_load")}
        traffic = np.flatnonzero(np.isin(kind, ["avg_speed", "occupancy"]))
        self._traffic_idx = traffic
        self._traffic_is_speed = kind[traffic] == "avg_speed"
        self._traffic_site = sites(lon[traffic], lat[traffic], cfg.site_radius_m)
        pm = np.flatnonzero(np.isin(kind, ["pm25", "pm10"]))
        self.pm_idx = pm
        self._pm_row = np.full(n, -1, dtype=np.int64)
        self._pm_row[pm] = np.arange(pm.size)
        self._pm_is25 = kind[pm] == "pm25"
        self._pm_site = sites(lon[pm], lat[pm], cfg.site_radius_m)
        self._hourly = vn_aqi.HourlyMeans(pm.size)

    @classmethod
    def of(cls, registry: Registry, config: KpiConfig | None = None) -> "CityKpis":
        """The figures of ``registry``'s sensors."""
        return cls([s.kind for s in registry.sensors], np.array([s.lon for s in registry.sensors]),
                   np.array([s.lat for s in registry.sensors]), config)

    def add(self, sensor: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        """Feed readings (any sensors, any order): the PM ones go into the hourly means."""
        if not self.pm_idx.size:
            return
        rows = self._pm_row[np.asarray(sensor, dtype=np.int64)]
        pm = rows >= 0
        self._hourly.add(rows[pm], np.asarray(ts)[pm], np.asarray(value)[pm])

    def compute(self, now: float, value: np.ndarray, online: np.ndarray, alert_levels: np.ndarray,
                rated: np.ndarray) -> dict[str, Any]:
        """The figures at time ``now`` from each sensor's newest ``value`` (NaN: none), whether it
        is ``online``, the river sensors' three ``alert_levels`` (n x 3) and the feeders' ``rated``
        load (MW); a figure whose sensors are all offline is left out."""
        cfg = self.config
        v = value
        out: dict[str, Any] = {}

        def live(kind: str) -> np.ndarray:
            idx = self._kind_idx[kind]
            return idx[online[idx] & np.isfinite(v[idx])]

        speed = live("avg_speed")
        if speed.size:
            out["traffic_speed"] = float(v[speed].mean())
        t_idx = self._traffic_idx
        if t_idx.size:
            vals = v[t_idx]
            with np.errstate(invalid="ignore"):
                jam = online[t_idx] & np.where(self._traffic_is_speed, vals < cfg.congested_speed_kmh,
                                               vals >= cfg.congested_occupancy_pct)
            out["traffic_sites"] = int(self._traffic_site.max() + 1)
            out["traffic_congested"] = int(np.unique(self._traffic_site[jam]).size)

        if self.pm_idx.size:
            nc = vn_aqi.nowcast(self._hourly.matrix(now))
            sub = np.full(self.pm_idx.size, np.nan)
            sub[self._pm_is25] = vn_aqi.sub_index("pm25", nc[self._pm_is25])
            sub[~self._pm_is25] = vn_aqi.sub_index("pm10", nc[~self._pm_is25])
            ok = np.isfinite(sub)
            if ok.any():
                best = int(np.flatnonzero(ok)[np.argmax(sub[ok])])
                aqi = float(vn_aqi.round_aqi(sub[best]))
                out.update(aqi=aqi, aqi_category=int(vn_aqi.category(aqi)), aqi_sensor=int(self.pm_idx[best]),
                           aqi_hour=(math.floor(now / 3600.0) - 1) * 3600.0,
                           aqi_stations=int(np.unique(self._pm_site[ok]).size))

        water = live("water_level")
        if water.size:
            with np.errstate(invalid="ignore"):
                stage = (v[water][:, None] >= alert_levels[water]).sum(axis=1)
            j = int(np.argmax(stage * 1e6 + v[water]))          # the highest stage, then the highest level
            out.update(flood_level=float(v[water[j]]), flood_sensor=int(water[j]), flood_stage=int(stage[j]))

        pressure = live("water_pressure")
        if pressure.size:
            j = int(np.argmin(v[pressure]))
            out.update(pressure_min=float(v[pressure[j]]), pressure_sensor=int(pressure[j]))

        feeders = live("feeder_load")
        if feeders.size:
            out["feeder_total"] = float(v[feeders].sum())
            r = rated[feeders]
            with np.errstate(invalid="ignore", divide="ignore"):
                pct = np.where(r > 0, 100.0 * v[feeders] / r, np.nan)
            if np.isfinite(pct).any():
                j = int(np.nanargmax(pct))
                out.update(feeder_max_pct=float(pct[j]), feeder_sensor=int(feeders[j]))
        return out
