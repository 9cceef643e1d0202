"""The embedded pipeline, driven by an injected clock (no wall-clock sleeps)."""
from __future__ import annotations

import asyncio
import time

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


# ------------------------------------------------------------------ alerting wiring

class RecordingChannel:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, delivery) -> None:
        self.sent.append(delivery)


def _live_alert(p: Pipeline) -> tuple[float, object]:
    t = START
    while True:
        for a in p.snapshot().alerts:
            info = p.snapshot().alert_info.get(a.id)
            if a.state == "open" and a.kind != "silent" and info is not None and info.pending:
                return t, a
        t += 120.0
        p.step(t)
        assert t < START + 6 * 3600, "no notified alert in six simulated hours"


def test_alerting_is_recorded_routed_and_delivered(city, tmp_path) -> None:
    from ioc.alerting.store import AlertStore
    from ioc.pipeline import build_alerting

    reg, extras = city
    webhook, email = RecordingChannel(), RecordingChannel()
    clock = FakeClock(START)
    service, dispatcher = build_alerting(reg, tmp_path, channels={"webhook": webhook, "email": email}, clock=clock)
    p = Pipeline(reg, PipelineConfig(preroll_hours=2.0, anomaly_rate=48.0, seed=3), extras=extras, clock=clock,
                 sleep=clock.sleep, start=START, alerting=service, dispatcher=dispatcher)
    p.preroll()
    # history replayed before going live is recorded, but pages nobody
    assert p.snapshot().alerts and service.store.delivery_counts() == {"pending": 0, "sent": 0, "failed": 0}
    assert p.alerts is service.engine.list
    _, alert = _live_alert(p)
    info = p.snapshot().alert_info[alert.id]
    assert info.team and info.team_name and info.level == 0 and info.pending > 0
    # who is on duty comes with the snapshot (START is Monday 10:00 local)
    duty = {d.team: [o[1] for o in d.officers] for d in p.snapshot().on_duty}
    assert duty["giao_thong"] == ["Nguyễn Văn An"] and duty["dieu_hanh_ioc"] == ["Ngô Thị Lan"]
    assert ("ngo_thi_lan", "Ngô Thị Lan") in p.snapshot().officers

    dispatcher.run_once()
    p.step(p.sim_now + 1.0)                               # the next snapshot sees the delivery results
    info = p.snapshot().alert_info[alert.id]
    assert info.sent >= 1 and info.pending == 0 and webhook.sent + email.sent
    # mqtt / kafka topics have no channel here: failed at once, not an error
    rows = p.deliveries([alert.id])[alert.id]
    assert {r["status"] for r in rows} <= {"sent", "failed"} and all(r["attempts"] == 1 for r in rows)
    assert {r["channel"] for r in rows if r["status"] == "sent"} <= {"webhook", "email"}

    a = p.acknowledge(alert.id, "Lê Văn Cường", "đang kiểm tra")
    assert a.state == "acknowledged" and a.acknowledged_by == "Lê Văn Cường"
    p.assign(alert.id, "tran_thi_binh", "Lê Văn Cường")
    info = p.snapshot().alert_info[alert.id]
    assert info.assignee == "tran_thi_binh" and info.assignee_name == "Trần Thị Bình"
    cap = p.cap_xml(alert.id)
    assert "urn:oasis:names:tc:emergency:cap:1.2" in cap and "<msgType>Alert</msgType>" in cap
    r = p.resolve(alert.id, "Lê Văn Cường", "đã thay cảm biến")
    assert r.state == "resolved" and r.comment == "đã thay cảm biến"
    assert "<msgType>Cancel</msgType>" in p.cap_xml(alert.id)
    p.close()

    # everything is in the store, with the operator's name and comments
    with AlertStore.in_folder(tmp_path) as store:
        assert store.acknowledgements(alert.id) == [("Lê Văn Cường", pytest.approx(p.sim_now, abs=1), "đang kiểm tra")]
        actions = [(actor, action, detail) for _, actor, action, aid, detail in store.audit_log() if aid == alert.id]
        assert actions == [("Lê Văn Cường", "resolve", "đã thay cảm biến"),
                           ("Lê Văn Cường", "assign", "tran_thi_binh"),
                           ("Lê Văn Cường", "acknowledge", "đang kiểm tra")]
        assert store.alert(alert.id).alert.state == "resolved"


def test_unconfigured_channels_fail_quietly(city, tmp_path, caplog) -> None:
    from ioc.pipeline import NOT_CONFIGURED, build_alerting

    reg, extras = city
    clock = FakeClock(START)
    service, dispatcher = build_alerting(reg, tmp_path, environ={}, clock=clock)     # no secret, no SMTP host
    p = Pipeline(reg, PipelineConfig(preroll_hours=2.0, anomaly_rate=48.0, seed=3), extras=extras, clock=clock,
                 sleep=clock.sleep, start=START, alerting=service, dispatcher=dispatcher)
    p.preroll()
    _, alert = _live_alert(p)
    p.start_delivery()
    try:
        deadline = time.monotonic() + 10
        while service.store.delivery_counts()["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.store.delivery_counts()["pending"] == 0
        rows = p.deliveries([alert.id])[alert.id]
        p.step(p.sim_now + 1.0)
        info = p.snapshot().alert_info[alert.id]
        assert info.unconfigured == len(rows) and info.failed == 0 and info.sent == 0
    finally:
        p.close()
    assert rows and all(r["status"] == "not_configured" and NOT_CONFIGURED in r["last_error"] for r in rows)
    assert any("IOC_WEBHOOK_SECRET" in r["last_error"] for r in rows if r["channel"] == "webhook")
    assert not [r for r in caplog.records if r.levelno >= 30]


def test_alerts_survive_a_restart(city, tmp_path) -> None:
    from ioc.pipeline import build_alerting

    reg, extras = city
    clock = FakeClock(START)
    service, dispatcher = build_alerting(reg, tmp_path, channels={}, clock=clock)
    p = Pipeline(reg, PipelineConfig(preroll_hours=2.0, anomaly_rate=48.0, seed=3), extras=extras, clock=clock,
                 sleep=clock.sleep, start=START, alerting=service, dispatcher=dispatcher)
    p.preroll()
    _, alert = _live_alert(p)
    open_before = {a.id for a in p.snapshot().alerts if a.state != "resolved"}
    p.close()
    service2, dispatcher2 = build_alerting(reg, tmp_path, channels={}, clock=clock)
    p2 = Pipeline(reg, PipelineConfig(preroll_hours=0.0, seed=3), extras=extras, clock=clock, sleep=clock.sleep,
                  start=p.sim_now, alerting=service2, dispatcher=dispatcher2)
    assert {a.id for a in p2.snapshot().alerts if a.state != "resolved"} == open_before
    assert p2.acknowledge(alert.id, "Lan").state == "acknowledged"
    p2.close()


def test_default_pipeline_keeps_alerts_in_memory(city) -> None:
    p = make(city, FakeClock())
    assert p.dispatcher is None and str(p.alerting.store.path) == ":memory:"
    p.start_delivery()                                  # nothing to start
    p.close()
