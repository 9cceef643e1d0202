"""HTTP hardening through Flask's test client: headers, the body limit, JSON errors without tracebacks."""
from __future__ import annotations

import logging

import pytest

from dashboard.app import create_app
from dashboard.security import MAX_BODY_BYTES


class Source:
    def __init__(self, snap) -> None:
        self.snap = snap

    def snapshot(self):
        return self.snap

    def recent(self, sensor: int):
        raise RuntimeError("the store is gone")            # an unexpected error inside a route


@pytest.fixture
def app(make_snapshot, wards, auth):
    return create_app(Source(make_snapshot()), auth=auth, wards=wards)


def test_every_response_carries_the_security_headers(app, sign_in) -> None:
    c = sign_in(app.server.test_client(), "wall")
    for path in ("/", "/api/health", "/_dash-layout", "/assets/control_room.css", "/api/nope"):
        r = c.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self' 'sha256-" in csp and "'unsafe-eval'" not in csp, path
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
    for h in app.csp_hashes():                                  # Dash's own inline scripts are allowed by hash
        assert h in c.get("/").headers["Content-Security-Policy"]
    assert c.get("/api/health").headers["Cache-Control"] == "no-store"


def test_errors_are_json_with_their_status_and_no_traceback(app, sign_in, caplog: pytest.LogCaptureFixture) -> None:
    c = sign_in(app.server.test_client(), "wall")
    r = c.get("/api/nope")
    assert r.status_code == 404 and r.is_json and "error" in r.get_json()
    r = c.post("/api/health")
    assert r.status_code == 405 and r.is_json
    with caplog.at_level(logging.ERROR, logger="dashboard.security"):
        r = c.get("/api/sensors/BG-ENV-001")      # a known sensor; reading it fails
    body = r.get_data(as_text=True)
    assert r.status_code == 500 and r.get_json() == {"error": "internal error; the server log has the details"}
    assert "Traceback" not in body and "the store is gone" not in body
    assert any("the store is gone" in (rec.exc_text or "") for rec in caplog.records)   # ... it is in the log


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(app, sign_in) -> None:
    c = sign_in(app.server.test_client(), "wall")
    r = c.post("/_dash-update-component", data=b"x" * (MAX_BODY_BYTES + 1), content_type="application/json")
    assert r.status_code == 413 and r.get_json() == {"error": f"the request body is over {MAX_BODY_BYTES:,} bytes"}
