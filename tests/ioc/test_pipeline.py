"""The embedded pipeline, driven by an injected clock (no wall-clock sleeps)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from dashboard.source import ALERT, OFFLINE, Snapshot
from ioc.citydata import default_city_dir, load_registry
from ioc.pipeline import STAGES, Pipeline, PipelineConfig, load_extras, sites
from processing.batch import ReadingBatch

START = 1_772_420_400.0          # 2026-03-02 10:00 local, on the hour


class FakeClock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t
        self.sleeps = 0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.sleeps += 1
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def city():
    path = default_city_dir() / "sensors.geojson"
    reg = load_registry(path)
    return reg, load_extras(path, reg)


def make(city, clock: FakeClock, **kw) -> Pipeline:
    reg, extras = city
    cfg = PipelineConfig(**{"preroll_hours": 2.0, "anomaly_rate": 12.0, "seed": 3, **kw})
    return Pipeline(reg, cfg, extras=extras, clock=clock, sleep=clock.sleep, start=START)


def test_extras_come_from_the_geojson_properties(city) -> None:
    reg, extras = city
    i = reg.index_of("BG-ENV-001")
    assert extras.alert_levels[i].tolist() == [4.3, 5.3, 6.3]
    assert extras.rated[reg.index_of("BG-UTL-030")] == 10.0
    assert np.isnan(extras.alert_levels[reg.index_of("BG-TRF-001")]).all()


def test_sites_group_close_points() -> None:
    lon = np.array([106.2, 106.2003, 106.25, 106.2001])
    lat = np.array([21.27, 21.27, 21.27, 21.2702])
    assert sites(lon, lat, 80.0).tolist() == [0, 0, 1, 0]     # 31 m and 22 m apart; 5 km away


def test_before_preroll_every_sensor_is_offline(city) -> None:
    snap = make(city, FakeClock()).snapshot()
    assert isinstance(snap, Snapshot)
    assert snap.health.status == "starting"
    assert (snap.status == OFFLINE).all() and snap.kpis.never == len(snap.registry)


def test_preroll_fills_history_kpis_and_progress(city) -> None:
    p = make(city, FakeClock())
    seen: list[float] = []
    p.preroll(seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) == 12       # 2 h in 10-minute steps
    snap = p.snapshot()
    assert snap.sim_time == START and snap.health.status == "ok"
    assert snap.health.readings_total > 5_000
    assert snap.kpis.online > 0.8 * snap.kpis.total
    k = snap.kpis
    assert 10 < k.traffic_speed < 80 and k.traffic_sites > 5
    assert np.isfinite(k.aqi) and 0 <= k.aqi_category <= 5 and k.aqi_stations > 5
    assert k.aqi_hour == START - 3600.0                   # the last complete hour
    assert 0 < k.flood_level < 10 and 0 < k.pressure_min < 10 and k.feeder_total > 0
    # every array in the snapshot is read-only
    with pytest.raises(ValueError):
        snap.status[0] = 0
    # recent series for the drill-down
    r = p.recent(0)
    assert set(r) == {"ts", "value", "score", "baseline", "scale"} and r["ts"].size > 10
    assert np.all(np.diff(r["ts"]) > 0)


def test_status_rev_marks_only_sensors_whose_status_changed(city) -> None:
    p = make(city, FakeClock())
    p.preroll()
    before = p.snapshot()
    after = p.step(before.sim_time + 600.0)
    changed = np.flatnonzero(after.status != before.status)
    assert after.seq > before.seq
    assert set(np.flatnonzero(after.status_rev > before.seq)) == set(changed)
    assert (after.status[after.status_rev <= before.seq] == before.status[after.status_rev <= before.seq]).all()


def test_run_goes_live_through_the_bus_at_the_configured_speed(city) -> None:
    clock = FakeClock()
    p = make(city, clock, speed=60.0, tick_s=0.5)
    p.preroll()
    before = p.snapshot().health.readings_total

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(p.run(stop))
        while clock.sleeps < 40:                     # 40 ticks of 0.5 s = 20 wall s = 20 simulated min
            await asyncio.sleep(0)
        stop.set()
        await task

    asyncio.run(main())
    snap = p.snapshot()
    assert snap.sim_time == pytest.approx(START + 20 * 60.0, abs=31.0)
    assert snap.health.readings_total > before
    assert snap.metrics.stages["queue"].count >= 40
    assert set(snap.metrics.stages) == set(STAGES)
    assert snap.health.readings_per_s > 0


def test_alerts_appear_and_operators_act_through_the_pipeline(city) -> None:
    p = make(city, FakeClock(), anomaly_rate=48.0)
    p.preroll()
    t = START
    while not any(a.state == "open" and a.kind != "silent" for a in p.snapshot().alerts):
        t += 120.0
        p.step(t)
        assert t < START + 6 * 3600, "no alert in six simulated hours"
    snap = p.snapshot()
    alert = next(a for a in snap.alerts if a.state == "open" and a.kind != "silent")
    assert snap.health.alerts_open >= 1
    acked = p.acknowledge(alert.id, "Lê Văn Cường")
    assert acked.state == "acknowledged"
    mine = {a.id: a for a in p.snapshot().alerts}[alert.id]
    assert mine.acknowledged_by == "Lê Văn Cường" and p.snapshot().alerts_rev > snap.alerts_rev
    p.resolve(alert.id, "Lê Văn Cường", "kiểm tra xong")
    assert {a.id: a for a in p.snapshot().alerts}[alert.id].state == "resolved"
    in_alert = p.snapshot().status == ALERT
    assert (p.core.in_alert() == in_alert | (p.core.in_alert() & (p.snapshot().status == OFFLINE))).all()


def test_bad_readings_become_dead_letters(city) -> None:
    p = make(city, FakeClock())
    p.preroll()
    n = len(p.registry)
    t = START + 1.0
    batch = ReadingBatch.from_arrays([0, 1, 2, n + 5, 3], [t] * 5, [5.0, np.nan, -1e9, 1.0, 6.0])
    snap = p.process(batch, t)
    assert snap.metrics.deadletters_by_reason == {"unknown_sensor": 1, "non_finite": 1, "out_of_range": 1}
    assert snap.health.deadletters_total == 3


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="'speed'"):
        PipelineConfig(speed=0)
    with pytest.raises(ValueError, match="'tick_s'"):
        PipelineConfig(tick_s=5)
