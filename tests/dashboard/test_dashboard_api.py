"""The HTTP API beside the page, and the app factory, through Flask's test client."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from dashboard.app import create_app
from dashboard.source import AlertInfo, DutyTeam, LatencyHistogram, Metrics
from tests.dashboard.fakes import FakeSource, click


@pytest.fixture
def source(make_snapshot, make_alert):
    hist = LatencyHistogram((0.001, 0.01), (3, 1, 1), 0.05)
    snap = make_snapshot(alerts=(make_alert(1, 2), make_alert(2, 1, state="acknowledged", acknowledged_by="An"),
                                 make_alert(3, 0, state="resolved")))
    snap = dataclasses.replace(
        snap, metrics=Metrics(1000, 2, {"out_of_range": 2}, {"score": hist}),
        alert_info={1: AlertInfo(team="moi_truong", team_name="Tổ quan trắc môi trường",
                                 team_name_en="Environmental monitoring unit", level=1, assignee="an",
                                 assignee_name="Nguyễn Văn An", flaps=4, flapping=True, failed=1, sent=1)},
        on_duty=(DutyTeam("moi_truong", "Tổ quan trắc môi trường", "Environmental monitoring unit",
                          (("an", "Nguyễn Văn An", "+84 1"),)),),
        officers=(("an", "Nguyễn Văn An"), ("binh", "Trần Thị Bình")))
    return FakeSource(snap)


@pytest.fixture
def app(source, wards, auth):
    return create_app(source, auth=auth, wards=wards)


@pytest.fixture
def client(app, source, sign_in):
    """Signed in as duty officer ``ha`` (every team)."""
    c = sign_in(app.server.test_client(), "ha")
    c.source = source
    return c


def test_health(client) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["readings_per_s"] == 12.5 and body["sensors_online"] == 4
    assert body["sim_time"] == "2026-03-02T10:00:00+07:00"


def test_alerts_with_status_filter(client) -> None:
    every = client.get("/api/alerts").get_json()
    assert [a["id"] for a in every] == [3, 2, 1]
    first = every[-1]
    assert first["sensor"] == "BG-ENV-010" and first["severity"] == "warning" and first["ward"] == "Ngô Quyền"
    assert first["opened_at"].endswith("+07:00")
    assert [a["id"] for a in client.get("/api/alerts?status=open").get_json()] == [1]
    assert [a["id"] for a in client.get("/api/alerts?status=open,acknowledged").get_json()] == [2, 1]
    bad = client.get("/api/alerts?status=closed")
    assert bad.status_code == 400 and "closed" in bad.get_json()["error"]


def test_sensor(client) -> None:
    r = client.get("/api/sensors/BG-ENV-010")
    body = r.get_json()
    assert body["kind"] == "pm25" and body["status"] == "alert" and body["last_value"] == 30.0
    assert body["recent"]["value"] == [1.0, None, 3.0]                # NaN becomes null
    assert [a["id"] for a in body["alerts"]] == [1]
    missing = client.get("/api/sensors/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.get_json()["error"]


def test_metrics_in_prometheus_text_format(client) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain; version=0.0.4")
    text = r.get_data(as_text=True)
    assert "ioc_readings_total 1000\n" in text and "ioc_deadletters_total 2\n" in text
    assert "ioc_alerts_open 1\n" in text
    assert 'ioc_stage_latency_seconds_bucket{stage="score",le="0.001"} 3' in text
    assert 'ioc_stage_latency_seconds_bucket{stage="score",le="0.01"} 4' in text          # cumulative
    assert 'ioc_stage_latency_seconds_bucket{stage="score",le="+Inf"} 5' in text
    assert 'ioc_stage_latency_seconds_count{stage="score"} 5' in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[^}]*\})? [0-9.e+-]+', line), line


def test_page_and_layout_are_served(client) -> None:
    assert client.get("/").status_code == 200
    layout = json.loads(client.get("/_dash-layout").data)
    assert "sensor-map" in json.dumps(layout)


def test_alert_buttons_act_as_the_signed_in_user(client) -> None:
    assert click(client, "alert-ack") == "ha đã tiếp nhận"
    assert client.source.calls == [("ack", 1, "ha")]
    assert client.source.by == ("duty", "127.0.0.1")           # role and address, for the audit log


def test_acknowledge_resolve_and_assign_with_a_comment(client) -> None:
    assert click(client, "alert-ack", comment="đang cử người") == "ha đã tiếp nhận"
    # resolving needs a comment
    assert click(client, "alert-resolve") == "Nhập ghi chú xử lý trước khi đóng"
    assert click(client, "alert-resolve", comment=" đã thay cảm biến ") == "ha đã xử lý"
    # assigning needs an officer
    assert click(client, "alert-assign") == "Chọn cán bộ được giao trước"
    assert click(client, "alert-assign", officer="binh") == "giao cho Trần Thị Bình"
    assert client.source.calls == [("ack", 1, "ha", "đang cử người"), ("resolve", 1, "ha", "đã thay cảm biến"),
                                   ("assign", 1, "binh", "ha")]


def test_alerts_carry_routing_and_deliveries(client) -> None:
    data = client.get("/api/alerts?status=open").get_json()
    assert [a["id"] for a in data] == [1]
    a = data[0]
    assert a["team"] == "moi_truong" and a["escalation_level"] == 1 and a["assignee"] == "an"
    assert a["flaps"] == 4 and a["flapping"] and a["incident"] is None and a["silenced_by"] is None
    assert a["delivery_counts"] == {"sent": 1, "pending": 0, "failed": 1, "not_configured": 0}
    assert a["deliveries"] == [{"channel": "webhook", "address": "http://127.0.0.1:9/hook", "status": "failed",
                                "attempts": 6, "last_error": "attempt 6: refused"}]
    other = {x["id"]: x for x in client.get("/api/alerts").get_json()}[2]
    assert other["deliveries"] == [] and "team" not in other          # no routing info for it in the snapshot


def test_cap_endpoint(client) -> None:
    r = client.get("/api/alerts/1/cap")
    assert r.status_code == 200 and r.content_type.startswith("application/cap+xml")
    assert b"urn:oasis:names:tc:emergency:cap:1.2" in r.data
    for bad in ("99", "abc"):
        r = client.get(f"/api/alerts/{bad}/cap")
        assert r.status_code == 404 and "error" in r.get_json()


def test_feed_shows_on_duty_officers_and_delivery_status(client) -> None:
    layout = json.dumps(json.loads(client.get("/_dash-layout").data), ensure_ascii=False)
    assert "on-duty" in layout and "Nguyễn Văn An" in layout and "Đang trực" in layout
    assert "operator-comment" in layout and "assign-officer" in layout and "Trần Thị Bình" in layout
    assert "1 đã gửi · 1 lỗi" in layout and "has-failed" in layout and "leo thang cấp 1" in layout


def test_create_app_checks_the_refresh_period(make_snapshot, auth) -> None:
    with pytest.raises(ValueError, match="refresh_ms"):
        create_app(FakeSource(make_snapshot()), auth=auth, refresh_ms=5000)


def test_alarm_rate_is_null_before_going_live(client) -> None:
    body = client.get("/api/alarm-rate").get_json()
    assert body["last_hour"] is None and body["run"] is None
    assert body["benchmark"]["acceptable_per_hour_per_operator"] == 6.0 and body["benchmark"]["flood_count"] == 10
    assert client.get("/api/health").get_json()["alarms_per_hour"] is None


def test_alarm_rate_route_gives_totals_teams_and_nuisance_share(client) -> None:
    from processing.alarm_rate import alarm_rate

    snap = client.source.snap
    now = snap.sim_time
    opened = np.array([now - 3000, now - 1200, now - 600, now - 5000])
    cleared = np.array([now - 2900, np.nan, now - 400, np.nan])
    team = np.array(["moi_truong", "moi_truong", "giao_thong", "giao_thong"])
    client.source.snap = dataclasses.replace(snap, alarm_rate=(alarm_rate(opened, cleared, team, now, 3600.0),
                                                                alarm_rate(opened, cleared, team, now, 7200.0)))
    r = client.get("/api/alarm-rate")
    assert r.status_code == 200 and r.content_type.startswith("application/json")
    body = r.get_json()
    hour, run = body["last_hour"], body["run"]
    assert hour["count"] == 3 and hour["per_hour"] == 3.0 and hour["window_s"] == 3600.0
    assert hour["nuisance"] == 2 and hour["nuisance_share"] == pytest.approx(2 / 3) and not hour["flood"]
    assert run["count"] == 4 and run["per_hour"] == 2.0
    teams = {t["team"]: t for t in hour["teams"]}
    assert teams["moi_truong"]["team_name_en"] == "Environmental monitoring unit"
    assert teams["moi_truong"]["count"] == 2 and teams["giao_thong"]["nuisance_share"] == 1.0
    assert teams["giao_thong"]["rating"] == "acceptable" and teams["giao_thong"]["team_name"] == "giao_thong"
    assert client.get("/api/health").get_json()["alarms_per_hour"] == 3.0


def test_a_sensors_history_is_served_downsampled_between_two_instants(make_snapshot, wards, auth, sign_in):
    from processing.history import downsample

    calls = []

    class WithHistory(FakeSource):
        def history(self, sensor_id, t0, t1, points):
            calls.append((sensor_id, t0, t1, points))
            ts = np.arange(t0, t1, 60.0)
            return downsample(ts, np.sin(ts), np.zeros(ts.size), ts > t1 - 600, t0, t1, points)

    snap = make_snapshot()
    c = sign_in(create_app(WithHistory(snap), auth=auth, wards=wards).server.test_client(), "wall")
    r = c.get("/api/sensors/BG-ENV-001/history?from=2026-03-02T00:00:00%2B07:00&to=2026-03-02T06:00:00%2B07:00"
              "&points=36")
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert calls[-1][0] == "BG-ENV-001" and calls[-1][2] - calls[-1][1] == 6 * 3600 and calls[-1][3] == 36
    assert body["points"] == 36 and body["readings"] == 360 and body["downsampled"] is True
    assert body["t"][0] == "2026-03-02T00:00:00+07:00" and body["alert"][-1] is True and body["count"][0] == 10
    assert c.get("/api/sensors/BG-ENV-001/history").status_code == 200          # the last day by default
    for query, says in (("from=yesterday", "from: an ISO 8601 time"), ("to=2026-03-02T06:00:00", "needs an offset"),
                        ("points=0", "points: a whole number between 1 and 5000"),
                        ("from=2026-03-02T06:00:00Z&to=2026-03-02T00:00:00Z", "from must be before to")):
        bad = c.get(f"/api/sensors/BG-ENV-001/history?{query}")
        assert bad.status_code == 400 and says in bad.get_json()["error"], (query, bad.get_json())
    assert c.get("/api/sensors/NOPE/history").status_code == 404
    plain = sign_in(create_app(FakeSource(snap), auth=auth, wards=wards).server.test_client(), "wall")
    assert "keeps no history" in plain.get("/api/sensors/BG-ENV-001/history").get_json()["error"]


def test_a_past_instant_asked_of_a_source_without_history_shows_the_live_city(make_snapshot):
    from dashboard.callbacks import _past_or_live

    snap = make_snapshot()
    assert _past_or_live(FakeSource(snap), 12345.0) == (None, snap)

    class NoStore(FakeSource):
        def snapshot_at(self, t):
            raise LookupError("no history store")
    assert _past_or_live(NoStore(snap), 12345.0) == (None, snap)
    assert _past_or_live(FakeSource(snap), None) == (None, snap)
