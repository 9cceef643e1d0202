"""The KPI tiles' figures from arrays: which sensors each reads, offline ones left out."""
from __future__ import annotations

import numpy as np
import pytest

from processing import aqi as vn_aqi
from processing.kpis import CityKpis, KpiConfig, sites

NAN = np.nan


def test_sites_group_close_points() -> None:
    lon = np.array([106.2, 106.2003, 106.25, 106.2001])
    lat = np.array([21.27, 21.27, 21.27, 21.2702])
    assert sites(lon, lat, 80.0).tolist() == [0, 0, 1, 0]     # 31 m and 22 m apart; 5 km away
    assert sites(lon, lat, 10.0).tolist() == [0, 1, 2, 3]
    assert sites(np.zeros(0), np.zeros(0), 80.0).size == 0


# a speed and an occupancy sensor at one intersection, a speed sensor 5 km away; two PM
# stations (PM2.5 + PM10 side by side, and one PM2.5); two river gauges, a pressure sensor,
# two feeders
KINDS = ["avg_speed", "occupancy", "avg_speed", "pm25", "pm10", "pm25",
         "water_level", "water_level", "water_pressure", "feeder_load", "feeder_load"]
LON = np.array([106.2, 106.2003, 106.25, 106.21, 106.2101, 106.3, 106.22, 106.23, 106.24, 106.26, 106.27])
LAT = np.full(len(KINDS), 21.27)
LEVELS = np.full((len(KINDS), 3), NAN)
LEVELS[6] = [3.0, 4.0, 5.0]
LEVELS[7] = [8.0, 9.0, 10.0]
RATED = np.full(len(KINDS), NAN)
RATED[9], RATED[10] = 10.0, 4.0


def figures(value: list[float], online: list[bool] | None = None, kpis: CityKpis | None = None,
            now: float = 7_200.0) -> dict:
    kpis = kpis or CityKpis(KINDS, LON, LAT)
    on = np.ones(len(KINDS), bool) if online is None else np.array(online)
    return kpis.compute(now, np.array(value, dtype=float), on, LEVELS, RATED)


def test_traffic_speed_and_congested_intersections() -> None:
    #        speed occ  speed  pm.. (unused here)     river      pres feeders
    base = [30.0, 10.0, 50.0, NAN, NAN, NAN, 1.0, 1.0, 2.0, 5.0, 1.0]
    f = figures(base)
    assert f["traffic_speed"] == 40.0 and f["traffic_sites"] == 2 and f["traffic_congested"] == 0
    jam = list(base)
    jam[1] = 35.0                                   # occupancy at the threshold: its site is congested
    assert figures(jam)["traffic_congested"] == 1
    jam[0] = 19.0                                   # the same site slow too: still one site
    assert figures(jam)["traffic_congested"] == 1
    jam[2] = 5.0                                    # the far one crawls: two sites
    f = figures(jam)
    assert f["traffic_congested"] == 2 and f["traffic_speed"] == 12.0
    off = [True] * len(KINDS)
    off[2] = False                                  # an offline sensor neither counts nor jams
    f = figures(jam, off)
    assert f["traffic_congested"] == 1 and f["traffic_speed"] == 19.0
    f = figures(jam, [False] * len(KINDS))
    assert "traffic_speed" not in f and f["traffic_congested"] == 0 and f["traffic_sites"] == 2
    stricter = CityKpis(KINDS, LON, LAT, KpiConfig(congested_speed_kmh=60.0, congested_occupancy_pct=90.0))
    assert figures(base, kpis=stricter)["traffic_congested"] == 2


def test_the_aqi_is_the_worst_station_hourly_nowcast() -> None:
    kpis = CityKpis(KINDS, LON, LAT)
    assert kpis.pm_idx.tolist() == [3, 4, 5]
    ts = np.array([3_600.0, 3_700.0, 3_600.0, 3_600.0, 10.0, 20.0, 30.0, 40.0])
    sensor = np.array([3, 3, 4, 5, 0, 5, 3, 4])     # sensor 0 (speed) is not a PM sensor: ignored
    kpis.add(sensor, ts, np.array([40.0, 60.0, 80.0, 20.0, 999.0, 10.0, 30.0, 150.0]))
    f = figures([NAN] * len(KINDS), kpis=kpis, now=7_200.0)
    hourly = np.array([[50.0, 30.0], [80.0, 150.0], [20.0, 10.0]])    # hour 1, hour 0 per PM sensor
    full = np.full((3, 12), NAN)
    full[:, :2] = hourly
    nc = vn_aqi.nowcast(full)
    sub = np.array([vn_aqi.sub_index("pm25", nc[0]), vn_aqi.sub_index("pm10", nc[1]),
                    vn_aqi.sub_index("pm25", nc[2])], dtype=float).ravel()
    best = int(np.nanargmax(sub))
    assert f["aqi"] == float(vn_aqi.round_aqi(sub[best])) and f["aqi_sensor"] == [3, 4, 5][best]
    assert f["aqi_category"] == int(vn_aqi.category(f["aqi"]))
    assert f["aqi_hour"] == 3_600.0                 # the last complete hour
    assert f["aqi_stations"] == 2                   # PM2.5 and PM10 side by side are one station


def test_flood_stage_pressure_and_feeders() -> None:
    v = [NAN, NAN, NAN, NAN, NAN, NAN, 4.5, 7.0, 2.5, 6.0, 3.0]
    f = figures(v)
    # gauge 6 has passed its level 2 (4.0); gauge 7 is higher but below its level 1 (8.0)
    assert (f["flood_sensor"], f["flood_stage"], f["flood_level"]) == (6, 2, 4.5)
    v[6] = 2.0                                      # both below level 1: the higher level shows
    assert (figures(v)["flood_sensor"], figures(v)["flood_stage"]) == (7, 0)
    assert (f["pressure_min"], f["pressure_sensor"]) == (2.5, 8)
    assert f["feeder_total"] == 9.0
    assert (f["feeder_max_pct"], f["feeder_sensor"]) == (pytest.approx(75.0), 10)   # 3 of 4 MW beats 6 of 10
    off = [True] * len(KINDS)
    off[10] = off[8] = False
    f = figures(v, off)
    assert f["feeder_total"] == 6.0 and f["feeder_sensor"] == 9 and "pressure_min" not in f


def test_a_registry_without_a_domain_leaves_its_figures_out() -> None:
    kpis = CityKpis(["noise"], np.array([106.2]), np.array([21.27]))
    kpis.add(np.array([0]), np.array([1.0]), np.array([50.0]))
    assert kpis.compute(10.0, np.array([50.0]), np.array([True]), np.full((1, 3), NAN), np.full(1, NAN)) == {}
