"""Layout builders (ids, tiles, feed rows) and the refresh logic that sends only what changed."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import plotly.io as pio
from dash import Patch

from dashboard.callbacks import feed_patch, refresh
from dashboard.layout import KPI_IDS, alert_row, build_layout, feed_entries, kpi_tiles, render_tile
from dashboard.source import AlertInfo, DutyTeam, Kpis
from processing.access import Principal

DUTY = Principal("ha", "duty")        # may take every action: every button is drawn

STABLE_IDS = {"sensor-map", "alert-feed", "kpi-traffic", "kpi-air", "kpi-flood", "kpi-utility", "kpi-health", "kpi-alarms",
              "sensor-detail", "lang-switch", "health-bar", "signed-in", "operator-comment", "assign-officer",
              "on-duty"}


def _ids(node: Any) -> list[Any]:
    out = []
    if hasattr(node, "to_plotly_json"):
        node = node.to_plotly_json()
    if isinstance(node, dict):
        props = node.get("props", {})
        if "id" in props:
            out.append(props["id"])
        for v in props.values():
            out += _ids(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            out += _ids(v)
    return out


def _texts(node: Any) -> str:
    return json.dumps(node, default=lambda o: o.to_plotly_json(), ensure_ascii=False)


def test_layout_has_every_stable_id(make_snapshot, make_alert, wards) -> None:
    snap = make_snapshot(alerts=(make_alert(1, 2),))
    page = build_layout(snap, wards, who=DUTY, lang="vi")
    ids = _ids(page)
    assert STABLE_IDS <= {i for i in ids if isinstance(i, str)}
    assert {"tick", "view-state", "sim-clock", "selected-sensor", "operator-comment"} <= {i for i in ids
                                                                                         if isinstance(i, str)}
    assert {"type": "alert-ack", "alert": 1} in ids and {"type": "alert-resolve", "alert": 1} in ids
    assert any(isinstance(i, dict) and i.get("type") == "i18n" for i in ids)


def test_layout_is_vietnamese_by_default_and_english_on_request(make_snapshot, wards) -> None:
    vi = _texts(build_layout(make_snapshot(), wards, who=DUTY))
    en = _texts(build_layout(make_snapshot(), wards, who=DUTY, lang="en"))
    assert "Trung tâm Điều hành Thông minh" in vi and "Cảnh báo" in vi and "Mất kết nối" in vi
    assert "Intelligent Operations Center" in en and "Offline" in en and "Mất kết nối" not in en


def test_kpi_tiles(make_snapshot) -> None:
    tiles = kpi_tiles(make_snapshot(), "vi")
    assert set(tiles) == set(KPI_IDS)
    assert tiles["kpi-traffic"].value == "35" and "1/4" in tiles["kpi-traffic"].detail
    air = tiles["kpi-air"]
    assert (air.value, air.badge, air.badge_color) == ("87", "Trung bình", "#FFFF00")
    assert tiles["kpi-flood"].value == "2,50" and "báo động I (4,3 m)" in tiles["kpi-flood"].detail
    assert tiles["kpi-utility"].value == "2,20" and "6,0 MW" in tiles["kpi-utility"].detail
    assert tiles["kpi-health"].value == "80" and "1 mất tín hiệu" in tiles["kpi-health"].detail
    en = kpi_tiles(make_snapshot(), "en")
    assert en["kpi-air"].badge == "Moderate" and "intersections" in en["kpi-traffic"].detail
    # nothing known yet: idle tiles, no crash
    empty = kpi_tiles(make_snapshot(kpis=Kpis()), "vi")
    assert all(t.tone == "idle" and t.value == "–" for t in empty.values())
    assert "tile-value" in _texts(render_tile(tiles["kpi-air"]))


def test_flood_tile_reports_the_alert_level_reached(make_snapshot) -> None:
    k = dataclasses.replace(make_snapshot().kpis, flood_level=5.6, flood_stage=2)
    tile = kpi_tiles(make_snapshot(kpis=k), "vi")["kpi-flood"]
    assert tile.tone == "alert" and "vượt báo động II" in tile.detail


def test_feed_order_and_row_content(make_snapshot, make_alert) -> None:
    alerts = (make_alert(1, 0, opened=100.0), make_alert(2, 1, severity="critical", kind="limit", opened=50.0),
              make_alert(3, 2, state="acknowledged", acknowledged_by="An", opened=200.0),
              make_alert(4, 3, state="resolved", opened=300.0))
    snap = make_snapshot(alerts=alerts)
    entries, more = feed_entries(snap)
    assert [a.id for a in entries] == [2, 1, 3] and more == 0
    row = _texts(alert_row(snap, alerts[1], "vi", DUTY))
    assert "Nghiêm trọng" in row and "Vượt ngưỡng giới hạn" in row and "Song Mai" in row and "5,00 m" in row
    assert '"disabled": false' in row
    acked = _texts(alert_row(snap, alerts[2], "en", DUTY))
    assert "acknowledged by An" in acked and '"disabled": true' in acked
    assert feed_entries(snap, limit=2)[1] == 1


def _apply(rows: list[Any], patch: Patch) -> list[Any]:
    rows = list(rows)
    for op in patch.to_plotly_json()["operations"]:
        kind, loc, params = op["operation"], op["location"], op["params"]
        if kind == "Assign":
            rows[loc[0]] = params["value"]
        elif kind == "Delete":
            del rows[loc[0]]
        elif kind == "Insert":
            rows.insert(params["index"], params["value"])
        elif kind == "Clear":
            rows.clear()
        elif kind == "Extend":
            rows.extend(params["value"])
        else:
            raise AssertionError(kind)
    return rows


def _row_ids(rows: list[Any]) -> list[Any]:
    return [r.id["alert"] if hasattr(r, "id") else r for r in rows]


def test_feed_patch_inserts_removes_and_updates_only_what_changed(make_snapshot, make_alert) -> None:
    old = (make_alert(1, 0, opened=100.0), make_alert(2, 1, opened=90.0), make_alert(3, 2, opened=80.0))
    snap0 = make_snapshot(alerts=old)
    shown = [[a.id, a.rev] for a in feed_entries(snap0)[0]]
    client_rows = [alert_row(snap0, a, "vi", DUTY) for a in feed_entries(snap0)[0]]
    # alert 2 resolved, alert 3 changed, alert 4 new and critical (goes first)
    new = (make_alert(1, 0, opened=100.0), dataclasses.replace(old[1], state="resolved", rev=5),
           dataclasses.replace(old[2], last_value=9.0, rev=6),
           make_alert(4, 3, severity="critical", opened=110.0, rev=7))
    snap1 = make_snapshot(alerts=new)
    patch, rows = feed_patch(snap1, "vi", shown, DUTY)
    assert rows == [[4, 7], [1, 1], [3, 6]]
    result = _apply(client_rows, patch)
    assert _row_ids(result) == [4, 1, 3]
    ops = patch.to_plotly_json()["operations"]
    assert len(ops) == 3          # insert 4, delete 2, assign 3 -- row 1 is not sent again
    assert feed_patch(snap1, "vi", rows, DUTY) == (None, rows)


def test_feed_patch_to_and_from_empty(make_snapshot, make_alert) -> None:
    empty = make_snapshot(alerts=())
    one = make_snapshot(alerts=(make_alert(1, 0),))
    patch, rows = feed_patch(one, "vi", [], DUTY)
    assert rows == [[1, 1]] and [op["operation"] for op in patch.to_plotly_json()["operations"]] == ["Clear", "Extend"]
    patch, rows = feed_patch(empty, "vi", [[1, 1]], DUTY)
    assert rows == [] and "Không có cảnh báo" in _texts(patch.to_plotly_json())


def test_refresh_first_render_then_only_changes(make_snapshot, make_alert, wards) -> None:
    a1 = make_alert(1, 2)
    snap = make_snapshot(seq=5, alerts=(a1,))
    first = refresh(snap, "vi", None, wards, DUTY)
    assert set(KPI_IDS) <= set(first) and "map" in first and first["state"]["seq"] == 5
    assert len(pio.to_json(first["map"])) > 1000
    state = first["state"]
    # same snapshot: nothing to send at all
    assert refresh(snap, "vi", state, wards, DUTY) == {}
    # a new snapshot where only the health numbers moved
    snap2 = make_snapshot(seq=6, alerts=(a1,), health=dataclasses.replace(snap.health, readings_per_s=13.0))
    out = refresh(snap2, "vi", state, wards, DUTY)
    assert out["h-rate"] == "13,0"
    assert "map" not in out and "feed" not in out and not (set(KPI_IDS) & set(out))
    assert "h-dead" not in out and out["state"]["seq"] == 6
    # one sensor changes status: a map Patch, and the legend counts
    snap3 = make_snapshot(seq=7, alerts=(a1,), status=[1, 0, 2, 3, 0], status_rev=[7, 1, 1, 1, 1])
    out3 = refresh(snap3, "vi", out["state"], wards, DUTY)
    assert isinstance(out3["map"], Patch) and "legend" in out3
    # a language switch re-renders everything in English
    out4 = refresh(snap3, "en", out3["state"], wards, DUTY)
    assert "map" in out4 and not isinstance(out4["map"], Patch) and out4["state"]["lang"] == "en"
    assert "Sensors" in _texts(out4["kpi-health"])
    # another run of the pipeline (server restarted): full render
    assert "map" in refresh(make_snapshot(seq=1, run_id="run2"), "vi", out4["state"], wards, DUTY)


def test_routing_and_delivery_changes_re_render_only_that_row(make_snapshot, make_alert, wards) -> None:
    alerts = (make_alert(1, 0, opened=100.0), make_alert(2, 1, opened=90.0))
    info = {1: AlertInfo(team="giao_thong", team_name="Đội điều hành giao thông", team_name_en="Traffic operations team",
                         pending=2),
            2: AlertInfo(team="moi_truong", team_name="Tổ quan trắc môi trường",
                         team_name_en="Environmental monitoring unit", unconfigured=3)}
    duty = (DutyTeam("giao_thong", "Đội điều hành giao thông", "Traffic operations team",
                     (("an", "Nguyễn Văn An", "+84 1"),)),
            DutyTeam("moi_truong", "Tổ quan trắc môi trường", "Environmental monitoring unit", ()))
    snap = make_snapshot(seq=5, alerts=alerts)
    snap = dataclasses.replace(snap, alert_info=info, on_duty=duty, officers=(("an", "Nguyễn Văn An"),))
    first = refresh(snap, "vi", None, wards, DUTY)
    text = _texts(first["feed"])
    assert "2 đang chờ" in text and "3 chưa cấu hình kênh" in text and "has-failed" not in text
    assert "Nguyễn Văn An" in _texts(first["duty"]) and "không có ai trong ca" in _texts(first["duty"])
    # one delivery of alert 1 failed, one was sent; alert 1 was assigned: only row 1 is sent again
    info2 = {**info, 1: dataclasses.replace(info[1], pending=0, sent=1, failed=1, assignee="an",
                                             assignee_name="Nguyễn Văn An")}
    snap2 = dataclasses.replace(snap, seq=6, alert_info=info2)
    out = refresh(snap2, "vi", first["state"], wards, DUTY)
    ops = out["feed"].to_plotly_json()["operations"]
    assert len(ops) == 1 and ops[0]["location"] == [0]
    row = _texts(ops[0]["params"]["value"])
    assert "1 đã gửi · 1 lỗi" in row and "deliv-failed" in row and "has-failed" in row and "giao cho Nguyễn Văn An" in row
    assert "duty" not in out                              # the roster did not change
    en = _texts(alert_row(snap2, alerts[0], "en", DUTY))
    assert "1 sent · 1 failed" in en and "assigned to Nguyễn Văn An" in en and "Traffic operations team" in en
    # same snapshot again: nothing at all
    assert refresh(snap2, "vi", out["state"], wards, DUTY) == {}
    # a shift change: only the on-duty list
    snap3 = dataclasses.replace(snap2, seq=7, on_duty=(dataclasses.replace(duty[0], officers=(("b", "Trần Thị Bình",
                                                                                              ""),)), duty[1]))
    out3 = refresh(snap3, "vi", out["state"], wards, DUTY)
    assert "Trần Thị Bình" in _texts(out3["duty"]) and "feed" not in out3


# ------------------------------------------------------------- alarm-rate tile

def _with_rates(snap, opened, cleared, team):
    import numpy as np

    from processing.alarm_rate import alarm_rate

    o, c, tm = np.asarray(opened, float), np.asarray(cleared, float), np.asarray(team)
    rates = (alarm_rate(o, c, tm, snap.sim_time, 3600.0), alarm_rate(o, c, tm, snap.sim_time, 7200.0))
    duty = (DutyTeam("moi_truong", "Tổ quan trắc môi trường", "Environmental monitoring unit"),
            DutyTeam("giao_thong", "Tổ giao thông", "Traffic unit"))
    return dataclasses.replace(snap, alarm_rate=rates, on_duty=duty)


def test_alarm_tile_is_idle_before_going_live(make_snapshot) -> None:
    tile = kpi_tiles(make_snapshot(), "vi")["kpi-alarms"]
    assert tile.tone == "idle" and tile.value == "–" and tile.title == "Tần suất cảnh báo"


def test_alarm_tile_shows_rate_isa_verdict_nuisance_share_and_teams(make_snapshot) -> None:
    snap = make_snapshot()
    now = snap.sim_time
    # 4 environment alarms in the last hour, one of which cleared after 2 min; 1 traffic alarm
    snap = _with_rates(snap, [now - 3000, now - 2000, now - 1000, now - 500, now - 100],
                       [now - 2880, float("nan"), float("nan"), float("nan"), float("nan")],
                       ["moi_truong"] * 4 + ["giao_thong"])
    vi = kpi_tiles(snap, "vi")["kpi-alarms"]
    assert vi.value == "5,0" and vi.unit == "/giờ" and vi.tone == "normal" and vi.badge == "Đạt chuẩn"
    assert "ISA-18.2" in vi.detail and "≤6/giờ" in vi.detail and "20 %" in vi.detail
    assert "Tổ quan trắc môi trường 4,0" in vi.extra and "Tổ giao thông 1,0" in vi.extra
    assert "cả ca 2,5/giờ" in vi.extra
    en = kpi_tiles(snap, "en")["kpi-alarms"]
    assert en.badge == "Acceptable" and "per operator" in en.detail and "Environmental monitoring unit 4.0" in en.extra
    body = _texts(render_tile(en))
    assert "tile-extra" in body and "Alarm rate" in body
    # every piece of the tile is plain text (no markup to interpret)
    assert "dangerously" not in body and "<" not in "".join([en.title, en.value, en.detail, en.extra, en.hint])


def test_alarm_tile_flags_an_overload_and_a_flood(make_snapshot) -> None:
    snap = make_snapshot()
    now = snap.sim_time
    busy = _with_rates(snap, [now - 3500 + 250 * k for k in range(14)], [float("nan")] * 14, ["giao_thong"] * 14)
    tile = kpi_tiles(busy, "vi")["kpi-alarms"]
    assert tile.badge == "Quá tải" and tile.tone == "warn"
    flood = _with_rates(snap, [now - 500 + 30 * k for k in range(10)], [float("nan")] * 10, ["giao_thong"] * 10)
    tile = kpi_tiles(flood, "en")["kpi-alarms"]
    assert tile.badge == "Flood" and tile.tone == "alert" and "peak 10 in 10 min" in tile.hint


def test_refresh_sends_the_alarm_tile_only_when_it_changes(make_snapshot, wards) -> None:
    snap = make_snapshot()
    first = refresh(snap, "vi", None, wards, DUTY)
    assert "kpi-alarms" in first
    now = snap.sim_time
    later = _with_rates(dataclasses.replace(snap, seq=6), [now - 60], [float("nan")], ["giao_thong"])
    out = refresh(later, "vi", first["state"], wards, DUTY)
    assert "kpi-alarms" in out and "1,0" in _texts(out["kpi-alarms"])
    again = refresh(dataclasses.replace(later, seq=7), "vi", out["state"], wards, DUTY)
    assert "kpi-alarms" not in again
