"""The plain pages beside the control room: /deadletters for anyone signed in, /audit for admins;
every string (a rejected payload's, a comment) is escaped."""
from __future__ import annotations

import json

import pytest

from dashboard.app import create_app
from tests.dashboard.fakes import FakeSource

XSS = '<img src=x onerror="alert(1)">'


@pytest.fixture
def app(make_snapshot, wards, auth):
    source = FakeSource(make_snapshot())
    source.dead_letters = lambda limit=100: [
        {"source": "city/senml", "code": "unknown_sensor", "reason": f"senml record 0: unknown sensor {XSS!r}",
         "received": 1_772_420_400.0, "payload": f'[{{"n": "{XSS}"}}]'}]
    return create_app(source, auth=auth, wards=wards)


def test_dead_letters_are_shown_as_text_to_anyone_signed_in(app, sign_in) -> None:
    assert app.server.test_client().get("/deadletters").status_code == 302      # sign in first
    wall = sign_in(app.server.test_client(), "wall")
    page = wall.get("/deadletters").get_data(as_text=True)
    assert "unknown_sensor" in page and "2026-03-02T10:00:00+07:00" in page
    assert XSS not in page and "&lt;img src=x onerror=" in page and "<script" not in page
    rows = wall.get("/api/deadletters").get_json()
    assert rows[0]["reason"].endswith(repr(XSS)) and rows[0]["received_s"] == 1_772_420_400.0
    layout = json.dumps(wall.get("/_dash-layout").get_json())
    assert '"id": "h-dead-link", "className": "chip chip-link", "href": "/deadletters"' in layout   # the chip links


def test_the_audit_page_is_for_admins(app, sign_in) -> None:
    for name in ("wall", "an", "ha"):
        r = sign_in(app.server.test_client(), name).get("/audit")
        assert r.status_code == 403 and "may not read the audit log" in r.get_json()["error"]
    assert sign_in(app.server.test_client(), "root").get("/audit").status_code == 200
