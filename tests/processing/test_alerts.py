"""The first alert list: onsets, continuation, clearing, silence, operators, vectorised intake."""
from __future__ import annotations

import numpy as np
import pytest

from processing.alerts import Alert, AlertConfig, AlertError, AlertList, Change, feed_sort_key, kind_of
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry

DEV = int(Reason.DEVIATION)
LIM = int(Reason.LIMIT)
STUCK = int(Reason.STUCK)


def ids(changes: list[Change]) -> list[int]:
    """The alerts the changes touched, each once, in order."""
    return list(dict.fromkeys(c.alert_id for c in changes))


def changes(al: AlertList, rows: list[tuple[int, float, float, bool, float, int]]) -> list[Change]:
    """rows of (sensor, ts, value, alert flag, score, reasons)."""
    s, t, v, a, sc, rs = zip(*rows)
    batch = ReadingBatch.from_arrays(s, t, v)
    return al.ingest(batch, np.array(a), np.array(sc), np.array(rs, dtype=np.uint16))


def feed(al: AlertList, rows: list[tuple[int, float, float, bool, float, int]]) -> list[int]:
    return ids(changes(al, rows))


@pytest.fixture
def al() -> AlertList:
    return AlertList(Registry.synthetic(4, interval_s=60.0), AlertConfig(auto_resolve_s=300.0))


def test_kind_of_picks_the_most_telling_reason() -> None:
    assert kind_of(LIM | DEV) == "limit"
    assert kind_of(DEV | int(Reason.RATE)) == "deviation"
    assert kind_of(STUCK) == "stuck"
    assert kind_of(0) == "anomaly"
    assert kind_of(int(Reason.SILENT)) == "silent"


def test_onset_opens_one_alert_and_a_continuing_flag_updates_it(al: AlertList) -> None:
    changed = feed(al, [(1, 60.0, 5.0, False, 0.1, 0), (1, 120.0, 50.0, True, 0.9, DEV),
                        (1, 180.0, 55.0, True, 0.7, DEV)])
    assert len(changed) == 1
    a = al.get(changed[0])
    assert (a.sensor, a.sensor_id, a.kind, a.severity, a.state) == (1, "S000001", "deviation", "warning", "open")
    assert (a.opened_at, a.last_at, a.peak_score, a.last_value, a.readings) == (120.0, 180.0, 0.9, 55.0, 2)
    assert a.active
    # the next batch continues the same run: no new alert
    changed = feed(al, [(1, 240.0, 60.0, True, 0.95, DEV | LIM)])
    assert changed == [a.id] and len(al) == 1
    b = al.get(a.id)
    assert b.readings == 3 and b.peak_score == 0.95 and b.last_value == 60.0
    assert b.severity == "critical"                # a hard limit was breached during the run
    assert b.rev > a.rev


def test_clearing_marks_cleared_then_auto_resolves(al: AlertList) -> None:
    (aid,) = feed(al, [(2, 60.0, 9.0, True, 1.0, LIM)])
    assert al.get(aid).severity == "critical"
    feed(al, [(2, 120.0, 1.0, False, 0.0, 0)])
    a = al.get(aid)
    assert a.cleared_at == 120.0 and a.state == "open" and not a.active
    assert ids(al.tick(300.0)) == []                    # 180 s after clearing: not yet
    assert ids(al.tick(420.0)) == [aid]                 # 300 s after clearing
    a = al.get(aid)
    assert a.state == "resolved" and a.resolved_by == "system" and a.resolved_at == 420.0


def test_the_same_condition_rising_again_reopens_the_alert(al: AlertList) -> None:
    (aid,) = feed(al, [(0, 60.0, 9.0, True, 0.8, DEV), (0, 120.0, 1.0, False, 0.1, 0),
                       (0, 180.0, 9.0, True, 0.9, DEV)])
    a = al.get(aid)
    assert len(al) == 1 and a.occurrences == 2 and a.active and a.cleared_at is None
    assert a.readings == 2 and a.peak_score == 0.9


def test_many_runs_in_one_batch_are_found_with_numpy(al: AlertList) -> None:
    # sensor 0: two runs of different kinds; sensor 3: one run still on at the end; rows shuffled
    rows = [(0, 60.0, 1, True, 0.7, DEV), (0, 120.0, 1, True, 0.8, 0), (0, 180.0, 1, False, 0.1, 0),
            (0, 240.0, 1, True, 0.7, STUCK), (0, 300.0, 1, False, 0.0, 0),
            (3, 60.0, 1, False, 0.0, 0), (3, 120.0, 1, True, 0.75, LIM)]
    rng = np.random.default_rng(3)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    changed = feed(al, rows)
    kinds = sorted((al.get(i).sensor, al.get(i).kind) for i in changed)
    assert kinds == [(0, "deviation"), (0, "stuck"), (3, "limit")]
    by_kind = {al.get(i).kind: al.get(i) for i in changed}
    assert by_kind["deviation"].readings == 2 and by_kind["deviation"].cleared_at == 180.0
    assert by_kind["stuck"].severity == "info" and by_kind["stuck"].cleared_at == 300.0
    assert by_kind["limit"].active
    # the run carried over ends on the first reading of the next batch
    (cleared,) = feed(al, [(3, 180.0, 1, False, 0.0, 0)])
    assert al.get(cleared).cleared_at == 180.0


def test_silence_opens_a_critical_alert_and_clears_when_the_sensor_returns(al: AlertList) -> None:
    last_seen = np.array([1000.0, 1000.0 - 181.0, np.nan, 990.0])
    al.watch_from(0.0)                                       # watching since long before
    (aid,) = ids(al.check_silence(last_seen, now=1000.0))        # sensor 1: 181 s > 3 x 60 s
    a = al.get(aid)
    assert (a.sensor, a.kind, a.severity, a.opened_at) == (1, "silent", "critical", 1000.0)
    assert ids(al.check_silence(last_seen, now=1000.0)) == []     # not twice; never-reported sensor 2 ignored
    assert al.silent_sensors().tolist() == [1]               # what the display shows offline
    last_seen[1] = 1010.0
    assert ids(al.check_silence(last_seen, now=1020.0)) == [aid]
    assert al.get(aid).cleared_at == 1020.0
    assert al.silent_sensors().tolist() == []


def test_acknowledge_and_resolve_record_who_and_when(al: AlertList) -> None:
    (aid,) = feed(al, [(1, 60.0, 9.0, True, 0.8, DEV)])
    ack = al.acknowledge(aid, "  Nguyễn Văn An ", now=100.0)
    a = ack.after
    assert ack.type == "acknowledged" and ack.before.state == "open"
    assert (a.state, a.acknowledged_by, a.acknowledged_at) == ("acknowledged", "Nguyễn Văn An", 100.0)
    assert al.acknowledge(aid, "Someone Else", now=110.0) is None          # the first acknowledgement stands
    assert al.get(aid).acknowledged_by == "Nguyễn Văn An"
    done = al.resolve(aid, "Trần Thị Bình", now=200.0, comment="đã kiểm tra")
    r = done.after
    assert done.type == "resolved" and done.before == a
    assert (r.state, r.resolved_by, r.resolved_at, r.comment) == ("resolved", "Trần Thị Bình", 200.0, "đã kiểm tra")
    with pytest.raises(AlertError, match="already resolved"):
        al.resolve(aid, "x", now=300.0)
    with pytest.raises(AlertError, match="already resolved"):
        al.acknowledge(aid, "x", now=300.0)
    with pytest.raises(AlertError, match="no alert 999"):
        al.acknowledge(999, "x", now=300.0)
    (other,) = feed(al, [(2, 60.0, 9.0, True, 0.8, DEV)])
    with pytest.raises(AlertError, match="name is required"):
        al.acknowledge(other, "   ", now=1.0)
    assert [x.id for x in al.alerts(["open"])] == [other]
    with pytest.raises(AlertError, match="unknown alert state"):
        al.alerts(["closed"])


def test_a_resolved_run_is_not_raised_again_until_it_clears(al: AlertList) -> None:
    (aid,) = feed(al, [(1, 60.0, 9.0, True, 0.8, DEV)])
    al.resolve(aid, "op", now=70.0)
    assert feed(al, [(1, 120.0, 9.0, True, 0.8, DEV)]) == []
    feed(al, [(1, 180.0, 1.0, False, 0.0, 0)])
    (new,) = feed(al, [(1, 240.0, 9.0, True, 0.8, DEV)])
    assert new != aid and al.get(new).state == "open"


def test_an_acknowledged_alert_reopens_when_its_severity_rises(al: AlertList) -> None:
    (aid,) = feed(al, [(1, 60.0, 9.0, True, 0.8, DEV)])
    al.acknowledge(aid, "op", now=61.0)
    feed(al, [(1, 120.0, 9.0, True, 0.8, DEV)])
    assert al.get(aid).state == "acknowledged"
    feed(al, [(1, 180.0, 99.0, True, 1.0, LIM)])
    assert (al.get(aid).state, al.get(aid).severity) == ("open", "critical")


def test_resolved_alerts_are_pruned() -> None:
    al = AlertList(Registry.synthetic(1), AlertConfig(keep_resolved=2))
    ids = []
    for k in range(4):
        t = 100.0 * k
        (aid,) = feed(al, [(0, t + 1, 9.0, True, 0.8, DEV if k % 2 else STUCK), (0, t + 2, 1.0, False, 0.0, 0)])
        al.resolve(aid, "op", now=t + 3)
        ids.append(aid)
    assert [a.id for a in al.alerts()] == ids[-2:]


def test_feed_order_open_then_severity_then_newest() -> None:
    def mk(i: int, state: str, sev: str, t: float) -> Alert:
        return Alert(i, 0, "x", "deviation", sev, state, t, t, 1.0, 1.0, 0, 1)
    alerts = [mk(1, "open", "warning", 10), mk(2, "acknowledged", "critical", 20), mk(3, "open", "critical", 5),
              mk(4, "open", "warning", 30), mk(5, "resolved", "critical", 40)]
    assert [a.id for a in sorted(alerts, key=feed_sort_key)] == [3, 4, 1, 2, 5]


def test_intake_from_the_real_core_creates_objects_per_alert_not_per_reading() -> None:
    reg = Registry.synthetic(50, interval_s=60.0)
    core = AnomalyCore(reg)
    al = AlertList(reg)
    rng = np.random.default_rng(7)
    t = 1_700_000_000.0 + 60.0 * np.arange(200)
    values = rng.normal(10.0, 1.0, (200, 50))
    values[150:160, 7] = 60.0                       # one clear incident on sensor 7
    sensor = np.tile(np.arange(50), 200)
    batch = ReadingBatch.from_arrays(sensor, np.repeat(t, 50), values.reshape(-1))
    scores = core.update(batch)
    changed = ids(al.ingest(batch, scores.alert, scores.score, scores.reasons))
    assert 7 in {al.get(i).sensor for i in changed}
    assert len(al) < 20                              # 10,000 readings, a handful of alerts


def test_a_restart_does_not_flood_with_silent_alerts(al: AlertList) -> None:
    """Sensors last heard long before the process started (e.g. last_seen restored from a
    checkpoint) get one full silence_factor x interval (3 x 60 s) from the start to report."""
    start = 50_000.0
    last_seen = np.array([start - 86_400.0, start - 7200.0, np.nan, start - 10.0])
    assert ids(al.check_silence(last_seen, now=start)) == []              # the first check is the start
    assert al.watching_since == start
    assert ids(al.check_silence(last_seen, now=start + 180.0)) == []      # not yet a full 3 x 60 s
    last_seen[1] = start + 100.0                                     # sensors 1 and 3 report in time
    last_seen[3] = start + 50.0
    changed = ids(al.check_silence(last_seen, now=start + 181.0))
    assert sorted(al.get(i).sensor for i in changed) == [0]          # only the one still silent
    assert al.get(changed[0]).opened_at == start + 181.0
    changed = ids(al.check_silence(last_seen, now=start + 300.0))         # sensor 1's own 3 intervals pass
    assert sorted(al.get(i).sensor for i in changed) == [1, 3]
    assert not any(a.sensor == 2 for a in al.alerts())               # never reported: no silent alert


def test_watch_from_sets_the_start_explicitly(al: AlertList) -> None:
    live = 10_000.0
    al.watch_from(live)
    last_seen = np.array([live - 5000.0, live + 100.0, live + 100.0, live + 100.0])
    assert ids(al.check_silence(last_seen, now=live + 170.0)) == []
    (aid,) = ids(al.check_silence(last_seen, now=live + 181.0))
    assert al.get(aid).sensor == 0


def test_every_change_comes_typed_in_the_order_it_was_made_with_the_record_before_and_after(al: AlertList) -> None:
    # one batch: sensor 1 rises, clears, rises again -- one alert, three changes
    got = changes(al, [(1, 60.0, 9.0, True, 0.8, DEV), (1, 120.0, 1.0, False, 0.0, 0),
                       (1, 180.0, 12.0, True, 0.9, DEV)])
    assert [c.type for c in got] == ["opened", "cleared", "reopened"]
    opened, cleared, reopened = got
    assert opened.before is None and opened.after.occurrences == 1 and not opened.severity_rose
    assert cleared.before == opened.after and cleared.after.cleared_at == 120.0
    assert reopened.before == cleared.after and reopened.after.occurrences == 2 and reopened.after.cleared_at is None
    assert not reopened.severity_rose
    assert len({c.alert_id for c in got}) == 1 and al.get(opened.alert_id) == reopened.after
    # the run goes on in the next batch and breaches a hard limit: severity rises
    (going,) = changes(al, [(1, 240.0, 98.0, True, 0.9, DEV | LIM)])
    assert going.type == "updated" and going.severity_rose and going.after.severity == "critical"
    assert going.before.severity == "warning" and going.after.readings == 3
    (off,) = changes(al, [(1, 300.0, 2.0, False, 0.0, 0)])
    (auto,) = al.tick(300.0 + 300.0)
    assert off.type == "cleared" and auto.type == "resolved" and auto.after.resolved_by == "system"
    # silence: opened, then cleared when the sensor reports again
    last_seen = np.array([0.0, 300.0, 0.0, 0.0])
    al.watch_from(0.0)
    silent = al.check_silence(last_seen, now=400.0)
    assert {c.type for c in silent} == {"opened"} and {c.after.kind for c in silent} == {"silent"}
    back = al.check_silence(np.full(4, 400.0), now=410.0)
    assert {c.type for c in back} == {"cleared"} and ids(back) == ids(silent)
