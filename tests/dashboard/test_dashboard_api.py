"""The HTTP API beside the page, and the app factory, through Flask's test client."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from dashboard.app import create_app
from dashboard.source import LatencyHistogram, Metrics
from processing.alerts import AlertError


class FakeSource:
    def __init__(self, snap) -> None:
        self.snap = snap
        self.calls: list[tuple] = []

    def snapshot(self):
        return self.snap

    def recent(self, sensor: int):
        ts = 1_772_420_000.0 + 300.0 * np.arange(3)
        return {"ts": ts, "value": np.array([1.0, np.nan, 3.0]), "score": np.zeros(3), "baseline": np.ones(3),
                "scale": np.full(3, 0.5)}

    def acknowledge(self, alert_id: int, by: str):
        self.calls.append(("ack", alert_id, by))
        a = next((a for a in self.snap.alerts if a.id == alert_id), None)
        if a is None:
            raise AlertError(f"no alert {alert_id}")
        return dataclasses.replace(a, state="acknowledged", acknowledged_by=by)

    def resolve(self, alert_id: int, by: str, comment: str = ""):
        self.calls.append(("resolve", alert_id, by))
        a = next(a for a in self.snap.alerts if a.id == alert_id)
        return dataclasses.replace(a, state="resolved", resolved_by=by)


@pytest.fixture
def client(make_snapshot, make_alert, wards):
    hist = LatencyHistogram((0.001, 0.01), (3, 1, 1), 0.05)
    snap = make_snapshot(alerts=(make_alert(1, 2), make_alert(2, 1, state="acknowledged", acknowledged_by="An"),
                                 make_alert(3, 0, state="resolved")))
    snap = dataclasses.replace(snap, metrics=Metrics(1000, 2, {"out_of_range": 2}, {"score": hist}))
    source = FakeSource(snap)
    app = create_app(source, wards=wards)
    c = app.server.test_client()
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


def test_alert_buttons_reach_the_source(client) -> None:
    deps = client.get("/_dash-dependencies").get_json()
    act = next(d for d in deps if "alert-note" in d["output"])
    body = {"output": act["output"], "outputs": {"id": {"type": "alert-note", "alert": 1}, "property": "children"},
            "inputs": [{"id": {"type": "alert-ack", "alert": 1}, "property": "n_clicks", "value": 1},
                       {"id": {"type": "alert-resolve", "alert": 1}, "property": "n_clicks", "value": 0}],
            "state": [{"id": "operator-name", "property": "value", "value": "Phạm Thu Hà"},
                      {"id": "lang-switch", "property": "value", "value": "vi"}],
            "changedPropIds": ['{"alert":1,"type":"alert-ack"}.n_clicks']}
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.data
    assert client.source.calls == [("ack", 1, "Phạm Thu Hà")]
    note = next(iter(json.loads(r.data)["response"].values()))["children"]
    assert note == "Phạm Thu Hà đã tiếp nhận"
    # no name: nothing is done, the operator is asked for it
    body["state"][0]["value"] = "  "
    r = client.post("/_dash-update-component", json=body)
    assert client.source.calls == [("ack", 1, "Phạm Thu Hà")]
    assert next(iter(json.loads(r.data)["response"].values()))["children"] == "Nhập họ tên trực ban trước"


def test_create_app_checks_the_refresh_period(make_snapshot) -> None:
    with pytest.raises(ValueError, match="refresh_ms"):
        create_app(FakeSource(make_snapshot()), refresh_ms=5000)
