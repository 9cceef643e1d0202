"""End to end: ``ioc run`` as a real process, driven by a real headless Chromium.

Starts ``python3 -m ioc.cli run`` on a free port (sped up, with a high anomaly
rate so alerts appear at once), then with Debian's ``/usr/bin/chromium`` and
``/usr/bin/chromedriver`` (selenium).  Users are made first as an admin makes
them (``ioc users add``, the password on standard input): ``lan`` (operator),
``hung`` (duty officer), ``wall`` (viewer), ``root`` (admin).

* The operator signs in at ``/login``, sees the map with every sensor's marker and
  at least one alert, the officers on duty and each alert's delivery status, and
  acknowledges an alert (checked through ``/api/alerts``: acknowledged by ``lan``);
  signs out.  The duty officer signs in, opens a drill-down and resolves the alert
  with a comment (checked through ``/api/alerts`` and its CAP 1.2 XML); switches to
  English; a screenshot goes to ``artifacts/control_room.png`` (the CI artefact).
  ``ioc audit list`` names each of them with role and address.
* The viewer sees the live city and no action button, and the server refuses the
  acknowledge callback forged from the viewer's own page (403).
* Script and image payloads in a comment are shown as text, never run, on the
  admin's audit page.  The alert store lives in the test's temporary folder
(``--data-dir``); no webhook secret or SMTP host is set, so deliveries show as
"not configured".  Any
SEVERE browser console entry fails the test.  The server is stopped by its PID
with SIGTERM and must exit 0.

Run with ``python3 -m pytest -m integration tests/e2e``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from live import ioc_cli as _ioc

from browser import CHROMIUM, chromium, poll, severe, sign_in

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "artifacts" / "control_room.png"
PASSWORD = "e2e correct horse battery"
USERS = {"lan": "operator", "hung": "duty", "wall": "viewer", "root": "admin"}
COMMENT = "Đã cử tổ kỹ thuật kiểm tra, cảm biến hoạt động lại bình thường"
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium chromium-driver)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return json.loads(r.read())


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    token: str                     # a read token, for the checks made through the API
    data: Path

    def api(self, path: str):
        return _get_json(self.url + path, self.token)


@pytest.fixture
def server(tmp_path):
    for name, role in USERS.items():                        # as an admin adds them; password from stdin
        _ioc("users", "add", name, "--role", role, "--data", str(tmp_path / "data" / "auth"), stdin=PASSWORD + "\n")
    port = _free_port()
    log = tmp_path / "ioc-run.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "run", "--host", "127.0.0.1", "--port", str(port), "--speed", "60",
             "--anomaly-rate", "48", "--preroll-hours", "3", "--seed", "5", "--data-dir", str(tmp_path / "data")],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if k != "IOC_WEBHOOK_SECRET" and not k.startswith("IOC_SMTP_")},
                 "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        poll("the server to answer /api/health",
              lambda: proc.poll() is None and _get_json(url + "api/health")["status"] == "ok", timeout=120)
        token = _ioc("tokens", "add", "e2e-reader", "--scope", "read",
                     "--data", str(tmp_path / "data" / "auth")).strip().splitlines()[-1]
        yield Server(url, proc, log, token, tmp_path / "data")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def _sign_in(d, url: str, name: str) -> None:
    sign_in(d, url, name, PASSWORD)


def _sign_out(d) -> None:
    from selenium.webdriver.common.by import By

    d.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    poll("the sign-in page", lambda: d.find_elements(By.ID, "login-form"))


def test_control_room_end_to_end(server, browser) -> None:
    from selenium.webdriver.common.by import By

    url, proc, log = server.url, server.proc, server.log
    d = browser
    d.get(url)
    assert d.find_elements(By.ID, "login-form")             # nobody signed in: the sign-in page
    _sign_in(d, url, "lan")
    assert "Điều hành viên" in d.find_element(By.ID, "signed-in").text
    n_sensors = _get_json(url + "api/health")["sensors_total"]
    page = urllib.request.Request(url, headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(page, timeout=5) as r:     # the page runs under its CSP (no SEVERE logs below)
        assert "script-src 'self' 'sha256-" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"

    # the map, with a marker per sensor, drawn by MapLibre
    poll("the map canvas", lambda: d.find_elements(By.CSS_SELECTOR, "#sensor-map canvas"))
    shown = poll("map markers", lambda: d.execute_script(
        "var g = document.querySelector('#sensor-map .js-plotly-plot');"
        "return g && g._fullData && g._fullData[0].lat.length;"))
    assert shown == n_sensors
    assert d.find_element(By.ID, "kpi-air").text.strip()
    assert "Trung tâm Điều hành Thông minh" in d.find_element(By.TAG_NAME, "header").text

    # who is on duty, and each routed alert's delivery status
    poll("the officers on duty", lambda: d.find_elements(By.CSS_SELECTOR, "#on-duty .duty-chip"))
    assert "Đang trực" in d.find_element(By.CSS_SELECTOR, ".feed-card").text
    poll("a delivery status in the feed", lambda: d.find_elements(By.CSS_SELECTOR, "#alert-feed .alert-deliv"))

    # at least one alert that can be acknowledged
    poll("an open alert in the feed",
          lambda: d.find_elements(By.CSS_SELECTOR, "#alert-feed .alert-row.state-open .btn-ack:not([disabled])"))
    # rows are patched live: a button can be replaced under the click, or its alert clear on its
    # own, so click (again) until the API says an alert was acknowledged by this officer
    ack_clicked: list[int] = []

    def acknowledge():
        for target in ack_clicked[-1:]:
            mine = [a for a in server.api("api/alerts") if a["id"] == target]
            if mine and mine[0]["state"] == "acknowledged" and mine[0]["acknowledged_by"] == "lan":
                return target
        hit = d.execute_script("""
            var bs = Array.from(document.querySelectorAll('#alert-feed .alert-row.state-open .btn-ack:not([disabled])'));
            var last = %d;
            var b = bs.find(function (b) { return JSON.parse(b.id).alert === last; }) || bs[0];
            if (!b) { return null; }
            b.click();
            return JSON.parse(b.id).alert;""" % (ack_clicked[-1] if ack_clicked else -1))
        if hit is not None:
            ack_clicked.append(int(hit))
        return None
    alert_id = poll("an alert acknowledged by lan", acknowledge, timeout=60, every=1.5)
    def acknowledgement_on_screen():
        # unacknowledged alerts sort first: under load newer ones can push this row out of the
        # visible feed, and then the API's word (checked above) is all there is to see
        rows = d.execute_script(
            "return Array.from(document.querySelectorAll('#alert-feed .alert-row')).map(function (r) {"
            "  return [JSON.parse(r.id).alert, r.innerText]; });")
        text = dict((int(k), v) for k, v in rows)
        return "pushed out of view" if alert_id not in text else ("lan" in text[alert_id]) or None
    poll("the acknowledgement on screen", acknowledgement_on_screen, timeout=30)
    assert not d.find_elements(By.CSS_SELECTOR, "#alert-feed .btn-resolve")     # an operator does not resolve
    errors = severe(d)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
    _sign_out(d)

    # the duty officer resolves it
    _sign_in(d, url, "hung")

    # drill-down from the alert's row
    def open_detail():
        # rows are patched live, so a button may be replaced under the click: click again until it opens
        if "is-hidden" not in d.find_element(By.ID, "sensor-detail").get_attribute("class"):
            return True
        d.execute_script("""
            var buttons = Array.from(document.querySelectorAll('#alert-feed .btn-view'));
            var mine = buttons.find(function (b) { return JSON.parse(b.id).alert === %d; });
            (mine || buttons[0]).click();""" % alert_id)
        return False
    poll("the drill-down panel", open_detail, timeout=60, every=1.5)
    points = poll("the drill-down series", lambda: d.execute_script(
        "var g = document.querySelector('#detail-graph .js-plotly-plot');"
        "return g && g.data && g.data.length >= 4 && g.data[3].x.length;"))
    assert points > 5
    assert d.find_element(By.ID, "detail-header").text.strip()

    # resolve it with a comment
    d.find_element(By.ID, "operator-comment").send_keys(COMMENT)

    # The feed is live: under load the acknowledged alert may have been pushed out of the
    # visible rows (or cleared on its own) by newer, more severe ones. Resolve it if its row is
    # shown, else the first alert the feed shows; then read that alert back through the API.
    clicked: list[int] = []

    def resolve():
        for target in clicked[-1:]:
            mine = [a for a in server.api("api/alerts") if a["id"] == target]
            if mine and mine[0]["state"] == "resolved" and mine[0].get("comment") == COMMENT:
                return mine[0]
        hit = d.execute_script("""
            var bs = Array.from(document.querySelectorAll('#alert-feed .btn-resolve'));
            var b = bs.find(function (b) { return JSON.parse(b.id).alert === %d; }) || bs[0];
            if (!b) { return null; }
            b.click();
            return JSON.parse(b.id).alert;""" % alert_id)
        if hit is not None:
            clicked.append(int(hit))
        return None
    resolved = poll("an alert resolved with a comment", resolve, timeout=60, every=1.5)
    alert_id = resolved["id"]
    assert resolved["resolved_by"] == "hung" and resolved["comment"] == COMMENT
    assert "team" in resolved and isinstance(resolved["deliveries"], list)
    for a in server.api("api/alerts?status=open"):
        assert {"team", "escalation_level", "assignee", "flaps", "incident", "silenced_by", "deliveries"} <= set(a)
        assert all(x["status"] in ("sent", "pending", "failed", "not_configured") for x in a["deliveries"])
    cap_request = urllib.request.Request(url + f"api/alerts/{alert_id}/cap",
                                         headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(cap_request, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("application/cap+xml")
        cap = ET.fromstring(r.read())
    assert cap.tag == CAP_NS + "alert" and cap.find(CAP_NS + "msgType").text == "Cancel"
    assert {i.find(CAP_NS + "language").text for i in cap.findall(CAP_NS + "info")} == {"vi-VN", "en-US"}
    try:
        urllib.request.urlopen(urllib.request.Request(url + "api/alerts/999999/cap",
                                                      headers={"Authorization": f"Bearer {server.token}"}), timeout=5)
        raise AssertionError("an unknown alert's CAP should be 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and "error" in json.loads(exc.read())

    # switch to English
    d.find_element(By.CSS_SELECTOR, "#lang-switch label:nth-of-type(2)").click()
    poll("the English page", lambda: "Intelligent Operations Center" in d.find_element(By.TAG_NAME, "header").text)
    poll("English KPI tiles", lambda: "Sensors" in d.find_element(By.ID, "kpi-health").text)
    poll("English feed", lambda: "Acknowledge" in d.find_element(By.ID, "alert-feed").text
          or "No active alerts" in d.find_element(By.ID, "alert-feed").text)
    clock = d.find_element(By.ID, "h-clock").text
    poll("a live refresh in English", lambda: d.find_element(By.ID, "h-clock").text != clock)
    clock = d.find_element(By.ID, "h-clock").text
    poll("another live refresh", lambda: d.find_element(By.ID, "h-clock").text != clock)

    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(ARTIFACT))
    errors = severe(d)
    assert not errors, "browser console errors:\n" + "\n".join(errors)

    # the audit log names each of them, with role and address
    audit = json.loads(_ioc("audit", "list", "--json", "--data", str(server.data / "alerts")))
    done = {(e["actor"], e["role"], e["action"], e["alert_id"], e["address"]) for e in audit}
    assert ("lan", "operator", "acknowledge", ack_clicked[-1], "127.0.0.1") in done, audit
    assert ("hung", "duty", "resolve", alert_id, "127.0.0.1") in done, audit

    # stop the server by its PID: clean exit
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text(encoding="utf-8")
    output = log.read_text(encoding="utf-8")
    assert "Control room: " + url in output and "Warming up" in output and "Stopped." in output


XSS = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
       '<svg onload="window.__pwned=3"></svg>')


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_viewer_sees_the_city_but_cannot_act_and_payload_strings_stay_text(server, browser) -> None:
    from selenium.webdriver.common.by import By

    url, d = server.url, browser
    _sign_in(d, url, "wall")
    assert "Xem" in d.find_element(By.ID, "signed-in").text
    poll("map markers", lambda: d.execute_script(
        "var g = document.querySelector('#sensor-map .js-plotly-plot');"
        "return g && g._fullData && g._fullData[0].lat.length;"))
    # the id read in the same try as the row: the feed may redraw in between (a stale element)
    target = poll("an open alert in the viewer's feed", lambda: int(json.loads(d.find_elements(
        By.CSS_SELECTOR, "#alert-feed .alert-row.state-open")[0].get_attribute("id"))["alert"]))
    # no button to act, no comment box
    assert not d.find_elements(By.CSS_SELECTOR, "#alert-feed .btn-ack, #alert-feed .btn-resolve, "
                                                "#alert-feed .btn-assign")
    assert not d.find_element(By.ID, "operator-comment").is_displayed()
    # ... and the server refuses the acknowledge callback forged from the viewer's own page,
    # with the viewer's cookies and CSRF token (a user who knows the route)
    status = d.execute_async_script("""
        var done = arguments[arguments.length - 1], id = %d;
        var csrf = document.cookie.split('; ').find(function (c) { return c.indexOf('_csrf_token=') === 0; });
        fetch('/_dash-dependencies').then(function (r) { return r.json(); }).then(function (deps) {
          var act = deps.find(function (x) { return x.inputs[0].id.indexOf('alert-ack') >= 0; });
          var body = {output: act.output, outputs: {id: {type: 'alert-note', alert: id}, property: 'children'},
            inputs: [{id: {type: 'alert-ack', alert: id}, property: 'n_clicks', value: 1}],
            state: [{id: 'operator-comment', property: 'value', value: 'forged'},
                    {id: 'assign-officer', property: 'value', value: null},
                    {id: 'lang-switch', property: 'value', value: 'vi'}],
            changedPropIds: ['{"alert":' + id + ',"type":"alert-ack"}.n_clicks']};
          return fetch('/_dash-update-component', {method: 'POST', body: JSON.stringify(body),
            headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf ? csrf.split('=')[1] : ''}});
        }).then(function (r) { return r.text().then(function (t) { done([r.status, t]); }); })
          .catch(function (e) { done([0, String(e)]); });""" % target)
    assert status[0] == 403 and "viewer 'wall' may not acknowledge" in status[1], status
    assert [a for a in server.api("api/alerts") if a["id"] == target][0]["state"] != "acknowledged" or \
        [a for a in server.api("api/alerts") if a["id"] == target][0]["acknowledged_by"] != "wall"
    assert not [e for e in json.loads(_ioc("audit", "list", "--json", "--data", str(server.data / "alerts")))
                if e["actor"] == "wall"]                                       # nothing done, nothing recorded
    assert not severe(d, except_refused=True)
    # the session ends (here: the account is disabled): the wall goes to the sign-in page, it does
    # not sit there looking live while nothing updates
    _ioc("users", "disable", "wall", "--data", str(server.data / "auth"))
    poll("the sign-in page after the session ended", lambda: d.find_elements(By.ID, "login-form"), timeout=30)
    _ioc("users", "enable", "wall", "--data", str(server.data / "auth"))
    assert not [m for m in severe(d) if "status of 401" not in m]          # the refused refresh, nothing else

    # stored XSS: an operator's token acknowledges with a script/img payload as the comment;
    # it is text on the admin's audit page, in the API, and nothing runs
    writer = _ioc("tokens", "add", "e2e-writer", "--scope", "write",
                  "--data", str(server.data / "auth")).strip().splitlines()[-1]
    code, body = _post(url + f"api/alerts/{target}/acknowledge", writer, {"comment": XSS})
    assert code in (200, 409), body                    # 409: it had just been acknowledged or cleared
    code, body = _post(url + f"api/alerts/{target}/resolve", writer, {"comment": XSS})
    assert code == 403 and "may not resolve" in body["error"]                # a write token is an operator
    code, body = _post(url + f"api/alerts/{target}/assign", writer, {"officer": XSS})
    assert code == 409 and XSS in body["error"]                              # unknown officer, said as JSON
    _sign_in(d, url, "root")
    d.find_element(By.ID, "audit-link").click()
    cell = poll("the payload in the audit table", lambda: [td for td in d.find_elements(By.CSS_SELECTOR,
                                                                                            "#audit-table td")
                                                            if td.text == XSS])
    assert cell and d.execute_script("return window.__pwned === undefined")
    assert not d.find_elements(By.CSS_SELECTOR, "#audit-table img, #audit-table script, #audit-table svg")
    d.get(url)                                                       # and the live page: nothing runs there
    poll("the admin's control room", lambda: "root" in d.find_element(By.ID, "signed-in").text)
    assert d.execute_script("return window.__pwned === undefined")
    assert not severe(d)


def test_the_map_shows_the_city_layers_switches_them_and_labels_the_wards(server, browser) -> None:
    """GIS layers from config/<city>/layers/ under the sensors, a switcher that shows and hides them,
    and every ward's name on the map, offline (no tile or glyph server)."""
    from selenium.webdriver.common.by import By

    url, d = server.url, browser
    _sign_in(d, url, "wall")
    js_layers = ("var g = document.querySelector('#sensor-map .js-plotly-plot');"
                 "if (!g || !g.layout || !g.layout.map) { return null; }"
                 "var out = {}; g.layout.map.layers.forEach(function (l) {"
                 "  if (l.name && l.name.indexOf('layer:') === 0) { out[l.name.slice(6)] = l.visible !== false; } });"
                 "return out;")
    shown = poll("the city layers on the map", lambda: d.execute_script(js_layers))
    assert shown == {"water": True, "roads": True, "flood_zones": False, "planning_zones": False}
    # the map's own renderer draws them: MapLibre's style shows or hides a layer per entry
    js_drawn = ("var m = document.querySelector('#sensor-map .js-plotly-plot')._fullLayout.map._subplot.map;"
                "return m.getStyle().layers.filter(function (l) {"
                "  return !(l.layout && l.layout.visibility === 'none'); }).length;")
    drawn = poll("the layers in MapLibre's style", lambda: d.execute_script(js_drawn))
    switch = d.find_element(By.ID, "layer-switch")
    assert "Vùng ngập, thoát nước" in switch.text and "Sông, hồ, kênh" in switch.text
    flood = next(i for i in switch.find_elements(By.CSS_SELECTOR, "input") if i.get_attribute("value") == "flood_zones")
    flood.click()
    poll("flood zones shown", lambda: (d.execute_script(js_layers) or {}).get("flood_zones") is True)
    poll("flood zones drawn (a fill and an outline)", lambda: d.execute_script(js_drawn) == drawn + 2)
    water = next(i for i in switch.find_elements(By.CSS_SELECTOR, "input") if i.get_attribute("value") == "water")
    water.click()
    poll("the rivers hidden", lambda: (d.execute_script(js_layers) or {}).get("water") is False)
    poll("the rivers no longer drawn", lambda: d.execute_script(js_drawn) < drawn + 2)
    # ward labels: one per ward, placed over the map, as text
    labels = poll("the ward labels", lambda: d.execute_script(
        "return Array.from(document.querySelectorAll('#sensor-map .ward-label')).map(function (e) {"
        "  var r = e.getBoundingClientRect(); return [e.textContent, r.width > 0 && r.height > 0]; });"))
    wards = json.loads((REPO / "config" / "bac_giang" / "wards.geojson").read_text(encoding="utf-8"))
    assert sorted(t for t, _ in labels) == sorted(f["properties"]["name"] for f in wards["features"])
    assert all(visible for _, visible in labels)
    assert not d.find_elements(By.CSS_SELECTOR, ".ward-label *")            # text only, no markup
    # English names follow the language switch
    d.find_element(By.CSS_SELECTOR, "#lang-switch input[value='en']").click()
    poll("the switcher in English", lambda: "Flood and drainage zones" in d.find_element(By.ID, "layer-switch").text)
    poll("the switch state kept", lambda: (d.execute_script(js_layers) or {}).get("flood_zones") is True)
    shot = REPO / "artifacts" / "control_room_layers.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(shot))
    errors = severe(d)
    assert not errors, errors


def test_the_time_slider_shows_a_known_incident_as_the_history_has_it_and_replays_it(server, browser) -> None:
    """Back in time: the slider moves the whole display to a past instant, read from the history on
    disk and the alert store (no re-simulation), Live comes back, and an alert's hour replays."""
    from datetime import datetime

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, d = server.url, browser
    _sign_in(d, url, "wall")
    bar = poll("the time bar", lambda: (b := d.find_element(By.ID, "time-bar")).is_displayed() and b)
    # a known incident: an alert the simulator's injected anomalies raised during the warm-up
    alerts = [a for a in server.api("api/alerts") if a["reason"] != "silent"]
    assert alerts, "no alert to travel back to"
    incident = min(alerts, key=lambda a: a["opened_at"])
    opened = datetime.fromisoformat(incident["opened_at"]).timestamp()
    # a click on the slider's rail moves the display into the past
    rail = poll("the slider", lambda: bar.find_element(By.CSS_SELECTOR, "#time-slider .dash-slider-track"))
    ActionChains(d).move_to_element_with_offset(rail, -rail.size["width"] // 4, 0).click().perform()
    poll("a past instant", lambda: "Đang xem lúc" in d.find_element(By.ID, "time-label").text)
    assert d.find_element(By.ID, "h-status").text == "Xem lại quá khứ"
    # the slider set to the instant the alert opened: the display as the history has it then
    d.execute_script("window.dash_clientside.set_props('time-slider', {value: arguments[0]});", int(opened) + 30)
    poll("the incident's instant", lambda: "Đang xem lúc" in d.find_element(By.ID, "time-label").text)
    hist = server.api(f"api/sensors/{incident['sensor']}/history?from={int(opened) - 3600}&to={int(opened) + 30}"
                      "&points=5000")
    assert hist["alert"][-1] is True                   # the history: in alert at that instant
    idx = [s["id"] for s in server.api("ogc/collections/sensors/items?limit=10000")["features"]].index(
        incident["sensor"])
    poll("the sensor in alert on the map then", lambda: d.execute_script(
        "var g = document.querySelector('#sensor-map .js-plotly-plot');"
        "return g && g.data[0].marker.color[arguments[0]] === 2;", idx))
    row = poll("the incident in the feed then", lambda: [r for r in d.find_elements(By.CSS_SELECTOR, "#alert-feed .alert-row")
                                                          if json.loads(r.get_attribute("id"))["alert"] == incident["id"]])
    assert "state-open" in row[0].get_attribute("class")
    assert not d.find_elements(By.CSS_SELECTOR, "#alert-feed .btn-ack")           # the past is read-only
    # back to live
    d.find_element(By.ID, "time-live").click()
    poll("live again", lambda: d.find_element(By.ID, "time-label").text == "Trực tiếp")
    # the drill-down over a range of the history: a sensor's last 24 h, downsampled, drawn once; a
    # sensor heard every minute, so the day holds more than its live window (the incident's may be slow)
    import numpy as np

    from ioc.citydata import load_registry

    reg = load_registry(REPO / "config" / "bac_giang" / "sensors.geojson")
    fast = idx if reg.interval_s[idx] <= 60 else int(np.flatnonzero(reg.interval_s <= 60)[0])
    d.execute_script("window.dash_clientside.set_props('selected-sensor', {data: arguments[0]});", fast)
    poll("the drill-down", lambda: "is-hidden" not in d.find_element(By.ID, "sensor-detail").get_attribute("class"))
    d.execute_script("window.dash_clientside.set_props('detail-range', {value: '24h'});")
    window = 128                                      # the live chart's points at most (detail_window)
    drawn = poll("the day's readings in the chart", lambda: (n := d.execute_script(
        "var g = document.querySelector('#detail-graph .js-plotly-plot');"
        "if (!g || !g.data) { return null; } var n = 0;"
        "g.data.forEach(function (t) { if (t.x && t.x.length > n) { n = t.x.length; } }); return n;")) and
        n > window and n)
    span = server.api(f"api/sensors/{reg.sensors[fast].id}/history?points=800")
    assert abs(drawn - span["points"]) <= 5, (drawn, span["points"])   # the clock runs at x60: a reading a second
    # replay the incident's hour at x60: the instant shown moves on by itself
    d.execute_script("window.dash_clientside.set_props('replay-alert', {value: arguments[0]});", incident["id"])
    first = poll("the replay", lambda: (x := d.find_element(By.ID, "time-label").text).startswith("Đang xem lúc") and x)
    try:
        poll("the replay moving", lambda: d.find_element(By.ID, "time-label").text not in (first, "Trực tiếp"), timeout=20)
    except AssertionError:
        raise AssertionError(f"{first!r} -> {d.find_element(By.ID, 'time-label').text!r}; {severe(d)}; "
                             f"{server.log.read_text()[-3000:]}") from None
    errors = severe(d)
    assert not errors, errors
