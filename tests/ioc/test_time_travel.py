"""The city at a past instant, from the history on disk and the alert store: what the time slider shows."""
from __future__ import annotations

import numpy as np
import pytest

from dashboard.source import ALERT
from ioc.citydata import default_city_dir, load_extras, load_registry
from ioc.history import HistoryStore
from ioc.pipeline import Pipeline, PipelineConfig
from ioc.time_travel import alert_at
from processing.alerts import Alert

START = 1_772_420_400.0          # 2026-03-02 10:00 local


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """A pipeline with a history store, three simulated hours with frequent anomalies, and an operator's action."""
    path = default_city_dir() / "sensors.geojson"
    reg = load_registry(path)
    history = HistoryStore(tmp_path_factory.mktemp("history"), reg.ids, flush_s=3600)
    clock = iter(range(10**9))
    p = Pipeline(reg, PipelineConfig(preroll_hours=2.0, anomaly_rate=48.0, seed=4), extras=load_extras(path, reg),
                 clock=lambda: float(next(clock)), start=START, history=history)
    p.preroll()
    history.flush()                                    # part on disk, the rest in the buffer
    t = START
    while t < START + 3600:
        t += 120.0
        p.step(t)
    def injected(a) -> bool:          # an alert of an anomaly the simulator injected (the ground truth)
        return any(lab.sensor_id == a.sensor_id and lab.start - 600 <= a.opened_at <= lab.end + 600
                   for lab in p.injected)
    alert = next(a for a in p.snapshot().alerts if a.kind != "silent" and a.state == "open" and injected(a))
    p.acknowledge(alert.id, "Lan")
    t += 120.0
    p.step(t)
    yield p, alert.id, t
    p.close()


def test_the_past_snapshot_at_now_is_the_live_one(ran):
    p, _, t = ran
    live, past = p.snapshot(), p.snapshot_at(t)
    np.testing.assert_array_equal(past.last_value, live.last_value)
    np.testing.assert_array_equal(past.last_ts, live.last_ts)
    assert (past.status == ALERT).tolist() == (live.status == ALERT).tolist()
    assert {a.id for a in past.alerts} == {a.id for a in live.alerts if a.state != "resolved"}
    assert past.health.status == "history" and past.run_id == f"at:{int(t)}"


def test_a_known_injected_incident_shows_as_it_stood_then(ran):
    p, aid, _ = ran
    stored = p.alerting.store.alert(aid).alert
    i = stored.sensor
    before = p.snapshot_at(stored.opened_at - 1)
    at = p.snapshot_at(stored.opened_at)
    assert aid not in {a.id for a in before.alerts}
    mine = {a.id: a for a in at.alerts}[aid]
    assert mine.state == "open" and mine.acknowledged_by is None        # acknowledged only later
    assert at.status[i] == ALERT and before.status[i] != ALERT
    # the value shown is the reading the history has at that instant
    d = p.history(stored.sensor_id, stored.opened_at - 600, stored.opened_at, points=10**6)
    assert at.last_value[i] == d.value[-1] and at.last_ts[i] == d.ts[-1] == stored.opened_at
    later = p.snapshot_at(stored.acknowledged_at)
    assert {a.id: a for a in later.alerts}[aid].state == "acknowledged"


def test_an_alert_is_cut_to_an_instant():
    a = Alert(id=1, sensor=0, sensor_id="x", kind="spike", severity="warning", state="resolved", opened_at=10.0,
              last_at=50.0, peak_score=0.9, last_value=1.0, reasons=1, readings=3, cleared_at=40.0,
              acknowledged_by="Lan", acknowledged_at=30.0, resolved_by="Lan", resolved_at=60.0)
    assert alert_at(a, 9.0) is None and alert_at(a, 60.0) is None
    at20 = alert_at(a, 20.0)
    assert (at20.state, at20.acknowledged_by, at20.cleared_at, at20.last_at) == ("open", None, None, 20.0)
    at45 = alert_at(a, 45.0)
    assert (at45.state, at45.acknowledged_by, at45.cleared_at, at45.resolved_at) == ("acknowledged", "Lan", 40.0, None)
