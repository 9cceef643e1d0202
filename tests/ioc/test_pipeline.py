"""The embedded pipeline, driven by an injected clock (no wall-clock sleeps)."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from dashboard.source import ALERT, OFFLINE, Snapshot
from ioc.citydata import default_city_dir, load_registry
from ioc.citydata import load_extras
from ioc.metrics import STAGES
from ioc.pipeline import Pipeline, PipelineConfig
from processing.batch import ReadingBatch

START = 1_772_420_400.0          # 2026-03-02 10:00 local, on the hour


class FakeClock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t
        self.sleeps = 0
        self.busy = lambda: False       # e.g. a background write: wall time waits for it

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        while self.busy():              # the seconds pass for the disk too: it is not outrun
            await asyncio.sleep(0.001)
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
        task = asyncio.create_task(p.run(p.simulated(stop), stop))
        while clock.sleeps < 40:                     # 40 ticks of 0.5 s = 20 wall s = 20 simulated min
            if task.done():                          # it stopped early: its error, here
                task.result()
                raise AssertionError("Pipeline.run stopped before 40 ticks")
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


def test_the_snapshot_is_built_when_read_after_a_change_not_for_every_batch(city) -> None:
    p = make(city, FakeClock())
    p.preroll()
    first = p.snapshot()
    builds = p.snapshot_builds
    assert p.snapshot() is first and p.snapshot_builds == builds          # nothing changed: no build
    t = START
    for k in range(50):                                                    # fifty batches, nobody reading
        t += 60.0
        p.step(t) if k == 49 else p.process(p._stream.advance(t)[0], t)
    assert p.snapshot_builds == builds + 1                                 # step() read it once
    snap = p.snapshot()
    assert snap.sim_time == t and snap.metrics.batches_total == first.metrics.batches_total + 50
    assert snap.health.readings_total > first.health.readings_total
    assert p.snapshot() is snap and snap.metrics.snapshot_builds_total == p.snapshot_builds
    opened = [a for a in snap.alerts if a.state == "open"]                 # (12 anomalies per sensor-day)
    assert opened
    p.acknowledge(opened[0].id, "Lê Văn Cường")                            # an operator's action is a change
    after = p.snapshot()
    assert after is not snap and {a.id: a for a in after.alerts}[opened[0].id].state == "acknowledged"


def test_a_delivery_is_sorted_once_on_its_way_to_the_alert_list(city, monkeypatch) -> None:
    """Feed de-duplication sorts a delivery sensor by sensor; core, alert list and display read
    that order without sorting again (bench.sorts measures it: 5 sorts per delivery before)."""
    from bench.sorts import count_sorts, deliveries

    p = make(city, FakeClock())
    p.preroll()
    sample = list(deliveries(p, 5, 500, 3, p.sim_now))
    before = p.snapshot().health.readings_total
    calls = count_sorts(p, sample)
    assert dict(calls) == {"ingest/sources.py:deduplicate np.lexsort": 5}
    assert p.snapshot().health.readings_total == before + sum(len(b) for b in sample)   # none dropped
    unsorted = sample[0].take(np.random.default_rng(0).permutation(500))
    assert not unsorted.in_sensor_order()
    lexsort, sorts = np.lexsort, []
    monkeypatch.setattr(np, "lexsort", lambda keys: sorts.append(len(keys[0])) or lexsort(keys))
    before = p.snapshot().health.readings_total
    p.process(unsorted, p.sim_now + 10.0)                      # a batch from elsewhere: the pipeline sorts it, once
    assert sorts == [500] and p.snapshot().health.readings_total == before + 500


def test_a_batch_a_decoder_checked_is_not_checked_again(city, monkeypatch: pytest.MonkeyPatch) -> None:
    import ioc.pipeline as pipeline_module

    p = make(city, FakeClock())
    p.preroll()
    calls: list[int] = []
    real = pipeline_module.faults
    monkeypatch.setattr(pipeline_module, "faults", lambda s, *a: calls.append(len(s)) or real(s, *a))
    t = START + 1.0
    batch = ReadingBatch.from_arrays([0, 1, 2], [t] * 3, [5.0, 6.0, 7.0])
    p.process(batch, t, checked=True)                  # from the Feed: the decoder checked it
    assert calls == []
    p.process(batch, t + 1.0)                          # the simulator's: checked here, once
    assert calls == [3]


def test_bad_readings_become_dead_letters(city) -> None:
    p = make(city, FakeClock())
    p.preroll()
    n = len(p.registry)
    t = START + 1.0
    batch = ReadingBatch.from_arrays([0, 1, 2, n + 5, 3], [t] * 5, [5.0, np.nan, -1e9, 1.0, 6.0])
    p.process(batch, t)
    snap = p.snapshot()
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
    from ioc.alerting.wiring import build_alerting

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

    a = p.acknowledge(alert.id, "Lê Văn Cường", "đang kiểm tra", role="operator", address="10.0.0.7")
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
        actions = [(e.actor, e.action, e.detail) for e in store.audit_log() if e.alert_id == alert.id]
        assert actions == [("Lê Văn Cường", "resolve", "đã thay cảm biến"),
                           ("Lê Văn Cường", "assign", "tran_thi_binh"),
                           ("Lê Văn Cường", "acknowledge", "đang kiểm tra")]
        (ack,) = [e for e in store.audit_log() if e.action == "acknowledge"]
        assert (ack.role, ack.address) == ("operator", "10.0.0.7") and ack.recorded_at == pytest.approx(time.time(), abs=600)
        assert store.alert(alert.id).alert.state == "resolved"


def test_unconfigured_channels_fail_quietly(city, tmp_path, caplog) -> None:
    from ioc.alerting.wiring import NOT_CONFIGURED, build_alerting

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
    from ioc.alerting.wiring import build_alerting

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


# ------------------------------------------------------------- alarm quality

def _spike_during_preroll(p: Pipeline, reg, at_s: float) -> int:
    """Wrap the pre-roll's stream so one water-level sensor breaches its limit once, ``at_s`` into it."""
    i = next(j for j, s in enumerate(reg.sensors) if s.kind == "water_level")
    orig = p._stream.advance

    def advance(t: float):
        batch, x = orig(t)
        if p.sim_start + at_s < t <= p.sim_start + at_s + p.config.preroll_step_s:
            batch = ReadingBatch.concat([batch, ReadingBatch.from_arrays([i], [t - 1.0], [reg.limit_high[i] + 0.5])])
        return batch, x
    p._stream.advance = advance
    return i


def test_preroll_alerts_that_cleared_by_themselves_leave_the_feed(city) -> None:
    p = make(city, FakeClock(), anomaly_rate=48.0)
    spiked = _spike_during_preroll(p, city[0], 1200.0)
    p.preroll()
    kept = {a.id: a for a in p.alerts.alerts()}             # the engine (and store) keep them all
    shown = {a.id for a in p.snapshot().alerts}
    gone = set(kept) - shown
    assert gone, "the pre-roll raised no alert that cleared by itself"
    assert all(kept[i].state == "resolved" or kept[i].cleared_at is not None for i in gone)
    assert all(kept[i].opened_at < START for i in gone)
    assert any(kept[i].sensor == spiked and kept[i].kind == "limit" for i in gone)
    # still-open conditions at the live start stay, as ongoing ones
    assert {i for i, a in kept.items() if a.active} <= shown
    snap = p.snapshot()
    assert snap.health.alerts_active == sum(1 for a in snap.alerts if a.state != "resolved")
    assert p.alerting.store.alert(min(gone)) is not None  # history is kept
    # alerts raised live all appear
    t = START
    while t < START + 2 * 3600:
        t += 300.0
        p.step(t)
    live = {a.id for a in p.alerts.alerts() if a.opened_at >= START}
    assert live and live <= {a.id for a in p.snapshot().alerts}


def test_a_restart_with_old_last_seen_raises_no_silent_burst(city) -> None:
    reg, extras = city
    clock = FakeClock()
    old = make(city, clock)
    old.preroll()                                           # a core whose sensors were heard two hours before START
    later = START + 86_400.0
    p = Pipeline(reg, PipelineConfig(preroll_hours=0.0, seed=3), extras=extras, clock=clock, sleep=clock.sleep,
                 start=later)
    p.core = old.core                                       # as if restored from a checkpoint a day old
    p._prerolled = True                                     # going live straight away
    silent = lambda: [a for a in p.alerts.alerts() if a.kind == "silent"]   # noqa: E731
    p.process(ReadingBatch.empty(), later)
    p.process(ReadingBatch.empty(), later + 60.0)
    assert silent() == []                                   # no burst at the start
    wait = float(p.alerting.config.engine.silence_factor * reg.interval_s.max())
    p.process(ReadingBatch.empty(), later + wait + 1.0)     # nobody reported for a full silence interval
    assert len(silent()) == len(reg)


def test_a_backlog_being_caught_up_is_not_silence(city) -> None:
    reg, extras = city
    clock = FakeClock()
    p = Pipeline(reg, PipelineConfig(preroll_hours=0.0, seed=3), extras=extras, clock=clock, sleep=clock.sleep,
                 start=START)
    p._prerolled = True
    first = ReadingBatch.from_arrays(np.arange(len(reg)), np.full(len(reg), START), np.ones(len(reg)))
    p.process(first, START)
    wait = float(p.alerting.config.engine.silence_factor * reg.interval_s.max())
    # a Kafka backlog: one partition's sensor read far ahead of the others
    ahead = ReadingBatch.from_arrays([0], [START + 3 * wait], [1.0])
    silent = lambda: [a for a in p.alerts.alerts() if a.kind == "silent"]   # noqa: E731
    p.process(ahead, START + 3 * wait, behind=True)
    assert silent() == []
    p.process(ReadingBatch.empty(), START + 3 * wait + 1.0)                   # caught up: now it is silence
    assert len(silent()) == len(reg) - 1


def test_snapshot_carries_alarm_rates_of_the_live_run(city) -> None:
    p = make(city, FakeClock(), anomaly_rate=48.0)
    assert p.snapshot().alarm_rate is None                  # not live yet
    p.preroll()
    hour, run = p.snapshot().alarm_rate
    assert hour.total_count == 0 and run.total_count == 0   # pre-roll history is not counted
    first_live = max((a.id for a in p.alerts.alerts()), default=0) + 1
    t = START
    while t < START + 2 * 3600:
        t += 300.0
        p.step(t)
    hour, run = p.snapshot().alarm_rate
    live = [a for a in p.alerts.alerts() if a.id >= first_live]
    assert run.total_count == len({a.id for a in live}) > 0
    assert run.window_s == pytest.approx(2 * 3600, abs=1e-3) and hour.window_s == 3600.0
    assert hour.total_count == sum(1 for a in live if a.opened_at > t - 3600)
    assert set(run.teams.tolist()) <= {tm.id for tm in p.alerting.config.teams}
    assert run.count.sum() == run.total_count
    from processing.alarm_rate import NUISANCE_S
    # every live alert here cleared at most once in two hours, so its cleared_at is the first clearing
    assert run.total_nuisance == sum(1 for a in live if a.cleared_at is not None
                                     and a.cleared_at - a.opened_at <= NUISANCE_S)


# ------------------------------------------------------------------ warm start (checkpoints)

def _same_state(a, b) -> bool:
    sa, sb = a.core.state_arrays(copy=False), b.core.state_arrays(copy=False)
    return all(sa[k].tobytes() == sb[k].tobytes() for k in sa)


def _warm(city, clock: FakeClock, folder, *, start: float = START, seed: int = 3, every_s: float = 0.0):
    """A pipeline with its alert store and checkpoint in ``folder`` (what ``ioc run --data-dir`` keeps)."""
    from ioc.checkpoints import Checkpointer, checkpoint_path
    from ioc.alerting.wiring import build_alerting

    reg, extras = city
    cfg = PipelineConfig(preroll_hours=2.0, anomaly_rate=12.0, seed=seed)
    service, _ = build_alerting(reg, folder / "alerts", channels={}, clock=clock)
    ckpt = Checkpointer(checkpoint_path(folder), reg, cfg.core, every_s=every_s, clock=clock)
    return Pipeline(reg, cfg, extras=extras, clock=clock, sleep=clock.sleep, start=start, alerting=service,
                    checkpointer=ckpt)


def _steps(p: Pipeline, t_from: float, t_to: float, step: float = 300.0) -> None:
    t = t_from
    while t < t_to:
        t = min(t + step, t_to)
        p.step(t)


def _opened(p: Pipeline, lo: float, hi: float) -> list[tuple]:
    return sorted((a.sensor, a.kind, a.opened_at) for a in p.alerts.alerts() if lo < a.opened_at <= hi)


def test_a_killed_pipeline_resumes_from_its_checkpoint_as_if_it_never_stopped(city, tmp_path) -> None:
    clock = FakeClock()
    a = _warm(city, clock, tmp_path, every_s=600.0)
    a.preroll()
    a.checkpointer.wait()
    assert a.checkpointer.saved == 1                         # one right after the pre-roll
    _steps(a, START, START + 3000)
    clock.t += 600.0                                         # ten wall minutes: the next step checkpoints
    a.step(START + 3300)
    a.checkpointer.wait()
    t1 = START + 3300
    assert a.checkpointer.saved == 2 and a.checkpointer.last.position["t"] == t1
    _steps(a, t1, t1 + 1500)                                 # processed and alerted on, not checkpointed ...
    a.alerting.store.close()                                 # ... then kill -9: no last checkpoint

    reference = make(city, FakeClock(), anomaly_rate=12.0)   # the same city, never stopped
    reference.preroll()
    _steps(reference, START, t1 + 7200)

    b = _warm(city, FakeClock(), tmp_path)
    warm = b.warm_start()
    assert warm is not None and warm.t == t1 and warm.source == "simulator:seed=3"
    assert warm.catch_up_s == 0.0 and warm.skipped_s == 0.0  # simulated time is ahead: nothing to catch up
    assert warm.alerted_to == t1 + 1500                      # the alert store had seen this much
    total = warm.readings_total
    b.preroll()
    assert b.snapshot().health.readings_total == total       # no pre-roll: the state is warm
    assert b.recent(0)["ts"].size > 10                       # charts are not empty
    _steps(b, t1, t1 + 7200)
    assert _same_state(b, reference)
    assert b.snapshot().health.readings_total == reference.snapshot().health.readings_total
    # alerts of the first hour after the restart: the same ones, no flood, nothing opened twice
    first_hour = _opened(reference, t1, t1 + 3600)
    assert first_hour and _opened(b, t1, t1 + 3600) == first_hour
    assert _opened(b, t1, t1 + 7200) == _opened(reference, t1, t1 + 7200)


def test_after_a_longer_outage_the_pre_roll_catches_up_only_since_the_checkpoint(city, tmp_path) -> None:
    a = _warm(city, FakeClock(), tmp_path)
    a.preroll()
    _steps(a, START, START + 1800)
    a.checkpoint_now()
    t1 = START + 1800
    later = t1 + 2700                                         # the process was down 45 simulated minutes
    b = _warm(city, FakeClock(), tmp_path, start=later)
    warm = b.warm_start()
    assert warm.catch_up_s == 2700 and warm.skipped_s == 0
    seen: list[float] = []
    b.preroll(seen.append)
    assert len(seen) == 5 and seen[-1] == 1.0                 # 45 min in 10-minute steps, not 2 h
    reference = make(city, FakeClock(), anomaly_rate=12.0)
    reference.preroll()
    _steps(reference, START, later)
    assert _same_state(b, reference) and b.snapshot().sim_time == later


def test_an_outage_longer_than_the_pre_roll_is_a_gap_not_a_replay(city, tmp_path) -> None:
    a = _warm(city, FakeClock(), tmp_path)
    a.preroll()
    a.checkpoint_now()
    b = _warm(city, FakeClock(), tmp_path, start=START + 5 * 3600)
    warm = b.warm_start()
    assert warm.catch_up_s == 2 * 3600 and warm.skipped_s == 3 * 3600


def test_a_checkpoint_of_another_city_seed_is_refused_and_changes_nothing(city, tmp_path) -> None:
    from processing.checkpoint import CheckpointMismatch

    a = _warm(city, FakeClock(), tmp_path)
    a.preroll()
    a.checkpoint_now()
    b = _warm(city, FakeClock(), tmp_path, seed=4)
    with pytest.raises(CheckpointMismatch, match="taken from simulator:seed=3, this run reads simulator:seed=4"):
        b.warm_start()
    assert np.isnan(b.core.last_seen()).all() and b.warm is None
    assert _warm(city, FakeClock(), tmp_path / "empty").warm_start() is None     # no checkpoint: cold


def test_run_checkpoints_periodically_and_at_a_clean_stop(city, tmp_path) -> None:
    clock = FakeClock()
    p = _warm(city, clock, tmp_path, every_s=5.0)
    clock.busy = lambda: p.checkpointer.busy
    p.preroll()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(p.run(p.simulated(stop), stop))
        while clock.sleeps < 40:                              # 20 wall seconds
            if task.done():                          # it stopped early: its error, here
                task.result()
                raise AssertionError("Pipeline.run stopped before 40 ticks")
            await asyncio.sleep(0)
        stop.set()
        await task

    asyncio.run(main())
    p.checkpointer.wait()
    assert p.checkpointer.saved >= 4                          # the pre-roll's, about every 5 s, the last
    assert p.checkpointer.last.position["t"] == p.sim_now     # the last one holds every reading processed
    assert p.checkpointer.last.position["readings_total"] == p.snapshot().health.readings_total


class _DeadLetterFeed:
    """A broker feed of one delivery: every message refused by the decoders (a LiveFeed)."""

    def __init__(self, registry, messages: list[tuple[str, bytes]], stop: asyncio.Event) -> None:
        from ingest.formats import decode_many
        from ingest.sources import Delivery, FeedItem

        out = decode_many(messages, registry=registry, received=START)
        self.dead = out.dead
        self.items = [FeedItem(out.batch, out.dead, 0, START, START, time.perf_counter(),
                               Delivery(tuple(messages), START, None))]
        self.stop = stop

    def __aiter__(self):
        return self._items()

    async def _items(self):
        for item in self.items:
            yield item
        self.stop.set()

    async def commit(self, item) -> None:
        return None

    async def positions(self) -> dict[str, int]:
        return {}


def test_the_newest_dead_letters_are_kept_for_the_display_newest_first_and_bounded(city) -> None:
    from ioc.pipeline import RECENT_DEAD_LETTERS

    p = make(city, FakeClock())
    p.preroll()
    senml = b'[{"n": "<img src=x onerror=alert(1)>", "u": "<script>", "v": 1, "t": 1772420400}]'
    bad = [("city/x/environment/BG-ENV-001", b"{not json %d" % k) for k in range(RECENT_DEAD_LETTERS + 20)]

    async def main() -> None:
        stop = asyncio.Event()
        feed = _DeadLetterFeed(p.registry, [("city/senml", senml)] + bad, stop)
        assert len(feed.dead) == len(bad) + 1
        await p.run(feed, stop)

    asyncio.run(main())
    got = p.dead_letters()
    assert len(got) == RECENT_DEAD_LETTERS and p.snapshot().metrics.deadletters_total >= len(bad) + 1
    assert got[0]["payload"] == "{not json %d" % (len(bad) - 1)              # newest first
    assert {"source", "code", "reason", "received", "payload"} == set(got[0])
    assert p.dead_letters(3) == got[:3]
