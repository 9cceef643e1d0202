"""Alert engine: lifecycle, routing by roster, escalation, silences, flaps, incidents (fake clock)."""
from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from ioc.citydata import default_city_dir, load_city, load_registry
from processing.alerting import AlertEngine, Roster, Router, parse_config
from processing.alerts import AlertError
from processing.batch import ReadingBatch
from processing.reasons import Reason

ICT = timezone(timedelta(hours=7))
CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
TOML = CITY / "alerting.toml"
CFG = parse_config(tomllib.loads(TOML.read_text("utf-8")), str(TOML), city=load_city(CITY / "city.toml"),
                   wards=REG.wards, sensor_ids=REG.ids)
local_clock = CFG.city.clock
DEV, LIM = int(Reason.DEVIATION), int(Reason.LIMIT)
TRF = 0                      # BG-TRF-001, Ngô Quyền, traffic (vehicle_count)


def at(day: int, hh: int, mm: int = 0) -> float:
    """Epoch of 2026-03-0<day> hh:mm in Hà Nội (2026-03-02 is a Monday)."""
    return datetime(2026, 3, day, hh, mm, tzinfo=ICT).timestamp()


def feed(eng: AlertEngine, rows: list[tuple[int, float, bool, int]], now: float):
    """rows of (sensor, ts, flag, reasons)."""
    s, t, a, r = zip(*rows)
    batch = ReadingBatch.from_arrays(s, t, np.full(len(s), 42.0))
    return eng.ingest(batch, np.array(a), np.where(np.array(a), 0.9, 0.1), np.array(r, dtype=np.uint16), now)


@pytest.fixture
def eng() -> AlertEngine:
    return AlertEngine(REG, CFG)


def test_local_clock_is_hanoi_time() -> None:
    assert local_clock(at(2, 8, 30)) == (0, 510)
    assert local_clock(datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc).timestamp()) == (0, 0)  # Mon 00:00 ICT


@pytest.mark.parametrize("when, team, who", [
    (at(2, 8), "giao_thong", ["nguyen_van_an"]),
    (at(2, 14), "giao_thong", ["tran_thi_binh"]),          # the end of a shift is exclusive
    (at(2, 23), "giao_thong", ["le_quang_cuong"]),
    (at(3, 2), "giao_thong", ["le_quang_cuong"]),          # night shift crossing midnight
    (at(2, 3), "moi_truong", ["pham_thu_dung"]),           # Sunday's 17:00-07:30 on-call reaches Monday 03:00
    (at(3, 3), "moi_truong", ["hoang_minh_duc"]),          # Monday's 17:00-07:30 reaches Tuesday
    (at(7, 20), "moi_truong", ["pham_thu_dung"]),          # Saturday evening
    (at(7, 10), "moi_truong", ["hoang_minh_duc"]),
])
def test_roster_on_duty(when: float, team: str, who: list[str]) -> None:
    assert [o.id for o in Roster(CFG).on_duty(team, when)] == who


@pytest.mark.parametrize("domain, kind, severity, team", [
    ("traffic", "deviation", "warning", "giao_thong"), ("traffic", "silent", "critical", "dieu_hanh_ioc"),
    ("environment", "limit", "critical", "moi_truong"), ("environment", "stuck", "info", "dieu_hanh_ioc"),
    ("utility", "rate", "warning", "ha_tang"),
])
def test_rules_route_to_teams(domain: str, kind: str, severity: str, team: str) -> None:
    assert Router(CFG).team_for(domain, "Ngô Quyền", kind, severity).id == team


def test_an_anomaly_notifies_the_officer_on_duty_once_per_channel(eng: AlertEngine) -> None:
    now = at(2, 8)
    out = feed(eng, [(TRF, now - 60, True, DEV)], now)
    (r,) = out.alerts
    assert r.team == "giao_thong" and r.alert.state == "open" and r.level == 0
    assert [e.type for e in out.events] == ["opened"]
    got = sorted((n.channel, n.address, n.msg_type) for n in out.notices)
    assert got == [("email", "an.nv@ioc.bacgiang.example.vn", "Alert"), ("kafka", "ioc.alerts", "Alert"),
                   ("mqtt", "ioc/alerts/giao_thong", "Alert"),
                   ("webhook", "https://hooks.example.invalid/zalo/nguyen_van_an", "Alert")]
    assert len({n.key for n in out.notices}) == 4
    # the condition continues: the same alert is updated, nobody is told again
    for k in range(1, 20):
        more = feed(eng, [(TRF, now + 60 * k, True, DEV)], now + 60 * k)
        assert more.notices == () and [a.id for a in more.alerts] == [r.id]
    assert len(eng.alerts()) == 1 and eng.get(r.id).alert.readings == 20


def test_not_acknowledged_escalates_after_the_configured_delay(eng: AlertEngine) -> None:
    now = at(2, 8)
    (r,) = feed(eng, [(TRF, now, True, DEV)], now).alerts
    assert eng.tick(now + 9 * 60 + 59).notices == ()
    out = eng.tick(now + 10 * 60)
    assert [e.type for e in out.events] == ["escalated"] and out.events[0].level == 1
    assert sorted((n.channel, n.officer) for n in out.notices) == [("email", "ngo_thi_lan"),
                                                                   ("webhook", "ngo_thi_lan")]
    assert {n.msg_type for n in out.notices} == {"Update"}
    assert eng.tick(now + 11 * 60).notices == ()           # once per level
    out = eng.tick(now + 30 * 60)
    assert [(n.channel, n.officer) for n in out.notices] == [("email", "bui_duc_manh")]
    assert eng.tick(now + 300 * 60).notices == ()          # no level after the last
    assert eng.get(r.id).level == 2


def test_acknowledged_is_not_escalated(eng: AlertEngine) -> None:
    now = at(2, 8)
    (r,) = feed(eng, [(TRF, now, True, DEV)], now).alerts
    out = eng.acknowledge(r.id, "Nguyễn Văn An", now + 120)
    assert [e.type for e in out.events] == ["acknowledged"] and out.events[0].by == "Nguyễn Văn An"
    assert {n.channel for n in out.notices} == {"mqtt", "kafka"}      # the topics hear about it
    assert eng.tick(now + 3600).notices == ()
    assert eng.acknowledge(r.id, "x", now + 200).events == ()         # twice: no new event


def test_a_silenced_sensor_is_recorded_but_not_notified(eng: AlertEngine) -> None:
    env = REG.index_of("BG-ENV-010")                       # Sunday 01:00-03:00 maintenance of environment
    now = at(8, 1, 30)
    out = feed(eng, [(env, now, True, LIM)], now)
    (r,) = out.alerts
    assert out.notices == () and [e.type for e in out.events] == ["opened", "silenced"]
    assert r.silenced_by == "bao_tri_tram_quan_trac" and r.alert.state == "open"
    assert eng.tick(now + 3600).notices == ()             # no escalation while silenced
    # the window ends while the condition is still on: notified then, once
    out = eng.tick(at(8, 3, 0))
    assert [e.type for e in out.events] == ["unsilenced"] and out.notices
    assert eng.tick(at(8, 3, 1)).notices == ()


def test_a_silenced_alert_that_cleared_during_maintenance_is_never_notified(eng: AlertEngine) -> None:
    env = REG.index_of("BG-ENV-010")
    now = at(8, 1, 30)
    feed(eng, [(env, now, True, LIM), (env, now + 60, False, 0)], now + 60)
    assert eng.tick(at(8, 3, 0)).notices == ()


def test_a_flapping_sensor_keeps_one_alert_and_counts_flaps(eng: AlertEngine) -> None:
    now = at(2, 8)
    notices, ids = [], set()
    for k in range(40):                                    # on / off every minute for 40 minutes
        t = now + 60 * k
        out = feed(eng, [(TRF, t, k % 2 == 0, DEV if k % 2 == 0 else 0)], t)
        notices.extend(out.notices)
        ids.update(a.id for a in out.alerts)
    assert len(ids) == 1
    r = eng.get(ids.pop())
    assert r.flaps == 19 and r.flapping and r.alert.occurrences == 20
    assert len([n for n in notices if n.channel == "webhook"]) == 1


def test_auto_resolve_after_the_condition_cleared_sends_cancel(eng: AlertEngine) -> None:
    now = at(2, 8)
    (r,) = feed(eng, [(TRF, now, True, DEV), (TRF, now + 60, False, 0)], now + 60).alerts
    assert eng.tick(now + 60 + 14 * 60).events == ()
    out = eng.tick(now + 60 + 15 * 60)
    assert [e.type for e in out.events] == ["resolved"] and out.events[0].by == "system"
    assert {(n.channel, n.msg_type) for n in out.notices} == {("mqtt", "Cancel"), ("kafka", "Cancel")}
    assert eng.get(r.id).alert.state == "resolved"


def test_manual_resolve_with_comment_and_assign(eng: AlertEngine) -> None:
    now = at(2, 8)
    (r,) = feed(eng, [(TRF, now, True, DEV)], now).alerts
    out = eng.assign(r.id, "nguyen_van_an", "Ngô Thị Lan", now + 30)
    assert eng.get(r.id).assignee == "nguyen_van_an" and out.events[0].type == "assigned"
    with pytest.raises(AlertError, match="unknown officer"):
        eng.assign(r.id, "nobody", "x", now)
    out = eng.resolve(r.id, "Nguyễn Văn An", now + 600, "đã điều tiết đèn tín hiệu")
    (ev,) = out.events
    assert (ev.type, ev.by, ev.detail) == ("resolved", "Nguyễn Văn An", "đã điều tiết đèn tín hiệu")
    assert eng.tick(now + 3600).notices == ()
    with pytest.raises(AlertError, match="already resolved"):
        eng.resolve(r.id, "x", now + 700)


def test_many_alerts_in_one_ward_and_domain_become_one_incident(eng: AlertEngine) -> None:
    now = at(2, 8)
    sensors = [REG.index_of(f"BG-TRF-00{k}") for k in (1, 2, 3, 4, 5)]   # all in Ngô Quyền
    out = feed(eng, [(s, now, True, DEV) for s in sensors[:3]], now)
    inc = [e for e in out.events if e.type == "incident"]
    assert len(inc) == 1 and len(out.incidents) == 1 and len(out.incidents[0].alert_ids) == 3
    out = feed(eng, [(s, now + 60, True, DEV) for s in sensors[3:]], now + 60)
    assert [e.type for e in out.events].count("grouped") == 2 and out.notices == ()
    assert {eng.get(a.id).incident for a in eng.alerts()} == {1}
    for a in eng.alerts():
        eng.resolve(a.id, "op", now + 120)
    assert eng.incidents()[0].resolved_at == now + 120


def test_silent_sensor_is_its_own_alert_routed_to_the_ioc_desk(eng: AlertEngine) -> None:
    now = at(2, 8)
    eng.watch_from(now - 3600.0)                     # watching for an hour already
    last = np.full(len(REG), now)
    last[TRF] = now - 3 * REG.interval_s[TRF] - 1
    out = eng.check_silence(last, now)
    (r,) = out.alerts
    assert (r.alert.kind, r.alert.severity, r.team) == ("silent", "critical", "dieu_hanh_ioc")
    assert {n.officer for n in out.notices if n.officer} == {"ngo_thi_lan"}
    assert eng.check_silence(last, now + 60).alerts == ()


def test_severity_rise_updates_the_current_level(eng: AlertEngine) -> None:
    now = at(2, 8)
    (r,) = feed(eng, [(TRF, now, True, DEV)], now).alerts
    eng.acknowledge(r.id, "An", now + 10)
    out = feed(eng, [(TRF, now + 60, True, LIM)], now + 60)
    assert [e.type for e in out.events] == ["severity"]
    assert {n.msg_type for n in out.notices} == {"Update"} and out.notices
    assert eng.get(r.id).alert.state == "open"
    assert eng.tick(now + 60 + 10 * 60).events[0].type == "escalated"      # escalation restarts


def test_restore_keeps_open_alerts_open_and_escalation_running(eng: AlertEngine) -> None:
    now = at(2, 8)
    (r,) = feed(eng, [(TRF, now, True, DEV)], now).alerts
    fresh = AlertEngine(REG, CFG)
    fresh.restore(eng.alerts(), eng.incidents(), eng.next_seq, 2)
    assert fresh.get(r.id).alert.state == "open"
    assert feed(fresh, [(TRF, now + 60, True, DEV)], now + 60).notices == ()     # same alert continues
    out = fresh.tick(now + 600)
    assert out.events[0].type == "escalated" and out.events[0].seq >= eng.next_seq
    (r2,) = feed(fresh, [(1, now + 700, True, DEV)], now + 700).alerts
    assert r2.id == 2


def test_intake_is_per_alert_not_per_reading(eng: AlertEngine) -> None:
    now = at(2, 8)
    n = len(REG)
    t = now + 60.0 * np.arange(100)
    flags = np.zeros((100, n), dtype=bool)
    flags[50:60, 7] = True
    batch = ReadingBatch.from_arrays(np.tile(np.arange(n), 100), np.repeat(t, n), np.ones(100 * n))
    out = eng.ingest(batch, flags.reshape(-1), flags.reshape(-1) * 0.9, flags.reshape(-1) * DEV, t[-1])
    assert len(out.alerts) == 1 and out.alerts[0].alert.readings == 10


def test_every_resolution_is_an_event_even_beyond_the_kept_resolved() -> None:
    import dataclasses
    cfg = dataclasses.replace(CFG, engine=dataclasses.replace(CFG.engine, keep_resolved=5, incident_min_alerts=10**6))
    eng = AlertEngine(REG, cfg)
    now = at(2, 8)
    n = 40
    feed(eng, [(i, now, True, DEV) for i in range(n)], now)
    feed(eng, [(i, now + 60, False, 0) for i in range(n)], now + 60)
    out = eng.tick(now + 60 + cfg.engine.auto_resolve_s)
    assert sum(e.type == "resolved" for e in out.events) == n and len(out.alerts) == n
    assert len(eng.alerts()) == 5 and len(eng.list) == 5


def test_quiet_drops_notices_and_disarms_escalation(eng: AlertEngine) -> None:
    now = at(2, 8)
    out = eng.quiet(feed(eng, [(TRF, now, True, DEV)], now))
    assert out.notices == () and out.alerts[0].escalate_at is None
    assert eng.tick(now + 3600).notices == ()


def test_restart_with_old_last_seen_raises_no_burst_of_silent_alerts() -> None:
    eng = AlertEngine(REG, CFG)
    start = at(2, 8)
    old = np.full(len(REG), start - 2 * 86_400.0)        # restored from a checkpoint two days old
    out = eng.step(None, None, old, start)
    assert out.alerts == () and out.notices == ()
    wait = CFG.engine.silence_factor * REG.interval_s
    out = eng.step(None, None, old, start + float(wait.min()) - 1.0)
    assert out.alerts == ()
    later = start + float(wait.max()) + 1.0               # nobody reported: now they are silent
    out = eng.step(None, None, old, later)
    assert len(out.alerts) == len(REG) and {r.alert.kind for r in out.alerts} == {"silent"}
