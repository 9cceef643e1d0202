"""Shared by the dashboard tests: a fake snapshot source recording the actions it is asked
for, the test users' password, and pressing an alert button through Dash's callback route."""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from processing.alerts import AlertError

PASSWORD = "correct horse battery"       # every test user's (the policy asks for 10 characters or more)
USERS = {"wall": ("viewer", ()), "an": ("operator", ()), "ha": ("duty", ()), "giao": ("duty", ("giao_thong",)),
         "root": ("admin", ())}


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

    def acknowledge(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = ""):
        self.calls.append(("ack", alert_id, by) + ((comment,) if comment else ()))
        self.by = (role, address)
        a = next((a for a in self.snap.alerts if a.id == alert_id), None)
        if a is None:
            raise AlertError(f"no alert {alert_id}")
        return dataclasses.replace(a, state="acknowledged", acknowledged_by=by)

    def resolve(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = ""):
        self.calls.append(("resolve", alert_id, by, comment))
        self.by = (role, address)
        a = next(a for a in self.snap.alerts if a.id == alert_id)
        return dataclasses.replace(a, state="resolved", resolved_by=by, comment=comment)

    def assign(self, alert_id: int, officer_id: str, by: str, *, role: str = "", address: str = ""):
        self.calls.append(("assign", alert_id, officer_id, by))
        self.by = (role, address)
        return next(a for a in self.snap.alerts if a.id == alert_id)

    def deliveries(self, alert_ids):
        return {i: ([{"channel": "webhook", "address": "http://127.0.0.1:9/hook", "status": "failed", "attempts": 6,
                      "last_error": "attempt 6: refused"}] if i == 1 else []) for i in alert_ids}

    def cap_xml(self, alert_id: int) -> str:
        if alert_id not in {a.id for a in self.snap.alerts}:
            raise AlertError(f"no alert {alert_id}")
        return f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">' \
               f"<identifier>{alert_id}</identifier></alert>"


def click(client, button: str, *, comment: str = "", officer: str | None = None, alert: int = 1,
          status: int = 200):
    """Press an alert's button through Dash's callback route, as the page does; its note (or the
    JSON error when ``status`` is not 200)."""
    deps = client.get("/_dash-dependencies").get_json()
    act = next(d for d in deps if d["inputs"][0]["id"] == f'{{"alert":["MATCH"],"type":"{button}"}}')
    body = {"output": act["output"], "outputs": {"id": {"type": "alert-note", "alert": alert}, "property": "children"},
            "inputs": [{"id": {"type": button, "alert": alert}, "property": "n_clicks", "value": 1}],
            "state": [{"id": "operator-comment", "property": "value", "value": comment},
                      {"id": "assign-officer", "property": "value", "value": officer},
                      {"id": "lang-switch", "property": "value", "value": "vi"}],
            "changedPropIds": [f'{{"alert":{alert},"type":"{button}"}}.n_clicks']}
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == status, r.data
    if status != 200:
        return r.get_json()["error"]
    return next(iter(json.loads(r.data)["response"].values()))["children"]
