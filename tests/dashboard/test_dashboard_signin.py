"""Sign-in, roles and CSRF on the control room's server, through Flask's test client: who gets
in, what each role may change (Dash callbacks and API routes alike), tokens, cookies, log-out."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest

from dashboard.app import create_app
from dashboard.signin import _safe_next
from dashboard.source import AlertInfo
from ioc.auth.store import AuthStore

from tests.dashboard.fakes import PASSWORD, FakeSource, click


@pytest.fixture
def source(make_snapshot, make_alert):
    snap = make_snapshot(alerts=(make_alert(1, 2), make_alert(2, 1)))
    snap = dataclasses.replace(snap, alert_info={
        1: AlertInfo(team="moi_truong", team_name="Tổ quan trắc môi trường", team_name_en="Environment"),
        2: AlertInfo(team="giao_thong", team_name="Tổ giao thông", team_name_en="Traffic")},
        officers=(("an", "Nguyễn Văn An"),))
    return FakeSource(snap)


@pytest.fixture
def app(source, wards, auth):
    return create_app(source, auth=auth, wards=wards)


@pytest.fixture
def anon(app):
    return app.server.test_client()


def as_user(app, sign_in, name: str):
    return sign_in(app.server.test_client(), name)


def post_api(client, alert: int, action: str, body: dict | None = None, **kw):
    return client.post(f"/api/alerts/{alert}/{action}", json=body or {}, **kw)


# ------------------------------------------------------------------ who gets in

def test_nobody_signed_in_is_sent_to_the_sign_in_page_or_answered_401(anon) -> None:
    r = anon.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    r = anon.get("/audit?limit=5")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=%2Faudit%3Flimit%3D5"
    for path in ("/api/alerts", "/api/sensors/BG-ENV-001", "/api/alarm-rate", "/_dash-layout", "/_dash-dependencies"):
        r = anon.get(path)
        assert r.status_code == 401 and "sign in" in r.get_json()["error"], path
    for action in ("acknowledge", "assign", "resolve"):
        assert post_api(anon, 1, action, {"comment": "x"}).status_code == 401
    assert anon.post("/_dash-update-component", json={}).status_code == 401
    assert anon.post("/logout").status_code == 401
    assert anon.get("/login").status_code == 200                           # the form, and the static files
    assert anon.get("/assets/control_room.css").status_code == 200


def test_health_and_metrics_stay_open_on_loopback_only_and_can_be_closed(anon, source, wards, auth) -> None:
    assert anon.get("/api/health").status_code == 200 and anon.get("/metrics").status_code == 200
    remote = {"REMOTE_ADDR": "10.20.30.40"}
    assert anon.get("/api/health", environ_base=remote).status_code == 401
    assert anon.get("/metrics", environ_base=remote).status_code == 401
    closed = create_app(source, auth=auth, wards=wards, loopback_open=()).server.test_client()
    assert closed.get("/api/health").status_code == 401
    anon.set_cookie("ioc_session", "an-ended-session")               # a stale cookie does not close it
    assert anon.get("/api/health").status_code == 200 and anon.get("/api/alerts").status_code == 401


def test_the_sign_in_form_has_no_script_and_a_wrong_password_is_one_line(anon) -> None:
    page = anon.get("/login?next=/x%22%3E%3Cscript%3E").get_data(as_text=True)
    assert "<form" in page and "<script" not in page.lower() and 'name="next" value="/x&quot;&gt;&lt;script&gt;"' in page
    r = anon.post("/login", data={"name": "an", "password": "not the password"})
    assert r.status_code == 401 and "wrong user name or password" in r.get_data(as_text=True)
    assert "Set-Cookie" not in r.headers
    r = anon.post("/login", data={"name": "<b>ghost</b>", "password": "x" * 12})
    assert r.status_code == 401 and "<b>ghost" not in r.get_data(as_text=True)


@pytest.mark.parametrize("target, safe", [("/", "/"), ("/audit?limit=5", "/audit?limit=5"), ("//evil.example", "/"),
                                          ("https://evil.example/", "/"), ("/\\evil", "/"), ("", "/"),
                                          ("javascript:alert(1)", "/")])
def test_after_sign_in_only_a_path_of_this_server_is_followed(target: str, safe: str) -> None:
    assert _safe_next(target) == safe


def test_the_session_cookie_is_http_only_and_same_site_and_secure_over_https(anon) -> None:
    r = anon.post("/login", data={"name": "an", "password": PASSWORD, "next": "/audit"})
    assert r.status_code == 303 and r.headers["Location"] == "/audit"
    cookies = {c.split("=", 1)[0]: c for c in r.headers.getlist("Set-Cookie")}
    assert "HttpOnly" in cookies["ioc_session"] and "SameSite=Strict" in cookies["ioc_session"]
    assert "HttpOnly" not in cookies["_csrf_token"] and "SameSite=Strict" in cookies["_csrf_token"]
    assert "Secure" not in cookies["ioc_session"]
    r = anon.post("/login", data={"name": "an", "password": PASSWORD}, base_url="https://ioc.example")
    assert all("Secure" in c for c in r.headers.getlist("Set-Cookie"))


# ------------------------------------------------------------------ roles

def test_a_viewer_sees_everything_and_changes_nothing(app, sign_in, source) -> None:
    wall = as_user(app, sign_in, "wall")
    assert wall.get("/").status_code == 200 and wall.get("/api/alerts").status_code == 200
    layout = json.dumps(wall.get("/_dash-layout").get_json(), ensure_ascii=False)
    assert "alert-row" in layout and "btn-ack" not in layout and "btn-resolve" not in layout
    assert '"display": "none"' in layout                                 # no comment box either
    for button in ("alert-ack", "alert-resolve", "alert-assign"):        # a forged callback is refused
        error = click(wall, button, comment="x", officer="an", status=403)
        assert error.startswith("viewer 'wall' may not ")
    for action in ("acknowledge", "assign", "resolve"):
        r = post_api(wall, 1, action, {"comment": "x", "officer": "an"})
        assert r.status_code == 403 and "viewer 'wall'" in r.get_json()["error"]
    assert wall.get("/audit").status_code == 403 and wall.get("/api/audit").status_code == 403
    assert source.calls == []


def test_an_operator_acknowledges_and_assigns_but_does_not_resolve(app, sign_in, source) -> None:
    an = as_user(app, sign_in, "an")
    layout = json.dumps(an.get("/_dash-layout").get_json())
    assert "btn-ack" in layout and "btn-assign" in layout and "btn-resolve" not in layout
    assert click(an, "alert-ack", comment="đang cử người") == "an đã tiếp nhận"
    assert source.by == ("operator", "127.0.0.1")
    r = post_api(an, 2, "assign", {"officer": "an"})
    assert r.status_code == 200 and r.get_json()["id"] == 2
    assert click(an, "alert-resolve", comment="xong", status=403) == "operator 'an' may not resolve alerts"
    assert post_api(an, 1, "resolve", {"comment": "xong"}).status_code == 403
    assert source.calls == [("ack", 1, "an", "đang cử người"), ("assign", 2, "an", "an")]


def test_a_duty_officer_resolves_the_alerts_of_their_own_teams_only(app, sign_in, source) -> None:
    giao = as_user(app, sign_in, "giao")                              # duty officer of giao_thong
    r = post_api(giao, 1, "resolve", {"comment": "xong"})
    assert r.status_code == 403 and r.get_json()["error"] == "duty 'giao' may not resolve alerts of team moi_truong"
    assert click(giao, "alert-resolve", comment="xong", alert=1, status=403).endswith("of team moi_truong")
    r = post_api(giao, 2, "resolve", {"comment": "đã xử lý"})
    assert r.status_code == 200 and source.calls == [("resolve", 2, "giao", "đã xử lý")]
    assert post_api(giao, 1, "acknowledge").status_code == 200         # acknowledging is not team-bound
    ha = as_user(app, sign_in, "ha")                                  # every team
    assert post_api(ha, 1, "resolve", {"comment": "xong"}).status_code == 200


def test_api_actions_check_their_input(app, sign_in) -> None:
    ha = as_user(app, sign_in, "ha")
    assert post_api(ha, 99, "acknowledge").status_code == 404
    assert post_api(ha, 1, "resolve", {"comment": "  "}).status_code == 400
    assert post_api(ha, 1, "resolve", {"comment": "x" * 501}).status_code == 400
    assert post_api(ha, 1, "assign", {}).status_code == 400
    r = ha.post("/api/alerts/1/acknowledge", data="[1, 2]", content_type="application/json")
    assert r.status_code == 400 and "JSON object" in r.get_json()["error"]
    r = ha.post("/api/alerts/1/acknowledge", data="{not json", content_type="application/json")
    assert r.status_code == 400


def test_only_an_admin_reads_the_audit_log_and_it_is_escaped(app, sign_in, source) -> None:
    from ioc.alerting.store import AuditEntry

    payload = '<img src=x onerror="alert(1)">'
    source.audit_log = lambda limit: [AuditEntry(1_772_420_400.0, "an", "acknowledge", 1, payload, "operator",
                                                 "10.0.0.9", 1_772_420_401.0)]
    root = as_user(app, sign_in, "root")
    page = root.get("/audit").get_data(as_text=True)
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.replace("&quot;", "&#34;") and payload not in page
    assert "<script" not in page and "10.0.0.9" in page and "operator" in page
    rows = root.get("/api/audit?limit=10").get_json()
    assert rows[0]["detail"] == payload and rows[0]["role"] == "operator" and rows[0]["at"].endswith("+07:00")
    assert root.get("/api/audit?limit=0").status_code == 400
    layout = json.dumps(root.get("/_dash-layout").get_json())
    assert "audit-link" in layout
    assert "audit-link" not in json.dumps(as_user(app, sign_in, "ha").get("/_dash-layout").get_json())


# ------------------------------------------------------------------ CSRF

def test_a_state_change_without_its_csrf_token_or_from_another_site_is_refused(app, sign_in, source) -> None:
    an = as_user(app, sign_in, "an")
    token = an.environ_base.pop("HTTP_X_CSRFTOKEN")
    r = post_api(an, 1, "acknowledge")
    assert r.status_code == 403 and "CSRF" in r.get_json()["error"]
    assert click(an, "alert-ack", status=403).startswith("refused: the CSRF token")
    assert post_api(an, 1, "acknowledge", headers={"X-CSRFToken": token[:-1] + "x"}).status_code == 403
    other_session = as_user(app, sign_in, "an").environ_base["HTTP_X_CSRFTOKEN"]
    assert post_api(an, 1, "acknowledge", headers={"X-CSRFToken": other_session}).status_code == 403
    r = post_api(an, 1, "acknowledge", headers={"X-CSRFToken": token, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "own page" in r.get_json()["error"]
    assert source.calls == []
    # the page's own requests: its token, and Origin null (the page sends no referrer)
    assert post_api(an, 1, "acknowledge", headers={"X-CSRFToken": token, "Origin": "null"}).status_code == 200
    assert post_api(an, 1, "acknowledge", headers={"X-CSRFToken": token,
                                                   "Origin": "http://localhost"}).status_code == 200


# ------------------------------------------------------------------ tokens

def test_api_tokens_act_within_their_scope_without_a_cookie_and_can_be_revoked(app, auth, source) -> None:
    read, _ = auth.add_token("wall-screen", "read", time.time())
    write, tok = auth.add_token("webhook-back", "write", time.time())
    c = app.server.test_client()
    bearer = lambda s: {"Authorization": f"Bearer {s}"}               # noqa: E731
    assert c.get("/api/alerts", headers=bearer(read)).status_code == 200
    r = post_api(c, 1, "acknowledge", headers=bearer(read))
    assert r.status_code == 403 and r.get_json()["error"] == "viewer 'wall-screen' may not acknowledge alerts"
    assert post_api(c, 1, "acknowledge", {"comment": "từ hệ thống"}, headers=bearer(write)).status_code == 200
    assert source.calls == [("ack", 1, "webhook-back", "từ hệ thống")] and source.by[0] == "operator"
    assert post_api(c, 1, "resolve", {"comment": "x"}, headers=bearer(write)).status_code == 403
    auth.revoke_token(tok.id, time.time())
    r = c.get("/api/alerts", headers=bearer(write))
    assert r.status_code == 401 and "revoked" in r.get_json()["error"]
    assert c.get("/api/alerts", headers=bearer(write[:-2] + "zz")).status_code == 401
    assert c.get("/api/alerts", headers={"Authorization": "Basic YW46eA=="}).status_code == 401


# ------------------------------------------------------------------ sessions end

def test_sign_out_ends_the_session_and_needs_its_csrf_token(app, sign_in) -> None:
    an = as_user(app, sign_in, "an")
    token = an.environ_base.pop("HTTP_X_CSRFTOKEN")
    assert an.post("/logout").status_code == 403                      # a forged sign-out is refused too
    r = an.post("/logout", data={"csrf": token})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert an.get("/api/alerts").status_code == 401


def test_an_idle_session_ends(source, wards, auth, sign_in) -> None:
    now = [1_900_000_000.0]
    app = create_app(source, auth=auth, wards=wards, clock=lambda: now[0])
    an = sign_in(app.server.test_client(), "an")
    now[0] += auth.idle_s - 60
    assert an.get("/api/alerts").status_code == 200                   # a request restarts the idle time
    now[0] += auth.idle_s - 60
    assert an.get("/api/alerts").status_code == 200
    now[0] += auth.idle_s + 1
    r = an.get("/api/alerts")
    assert r.status_code == 401 and "sign in again" in r.get_json()["error"]


def test_repeated_wrong_passwords_lock_the_account(source, wards, tmp_path) -> None:
    store = AuthStore.in_folder(tmp_path, max_failures=3, lock_s=600.0)
    store.add_user("an", "operator", PASSWORD, time.time())
    c = create_app(source, auth=store, wards=wards).server.test_client()
    for k in range(3):
        assert c.post("/login", data={"name": "an", "password": f"wrong-{k}-password"}).status_code == 401
    r = c.post("/login", data={"name": "an", "password": PASSWORD})
    assert r.status_code == 401 and "locked" in r.get_data(as_text=True)
    store.close()
