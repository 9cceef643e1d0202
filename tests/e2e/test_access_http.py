"""Access control from outside: ``ioc run --source mqtt://`` as a real process on a fresh data
folder, driven with ``requests`` over real HTTP and with the real Chromium.

* The first start makes an admin with a random password, printed once; the next start
  does not print one again.
* Every state-changing route and Dash callback: without a session 401; with a viewer's
  session 403; an operator's without the CSRF token 403, with it done.
* SenML and NGSI-LD messages carrying script and image payloads in their names, units and
  ids are published with ``mosquitto_pub``; the control room shows them as text on its
  dead-letter page, and nothing runs in Chromium.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from browser import CHROMIUM, chromium, severe, sign_in
from live import ioc_cli as _ioc
from live import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "http correct horse battery"
SENSOR = "BG-ENV-001"
XSS_NAME = "<img src=x onerror=window.__pwned=1>"           # no double quote: reasons quote names as JSON
XSS_UNIT = "<script>window.__pwned=2</script>"
XSS_ID = "<svg onload=window.__pwned=3>"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")]


class Server:
    def __init__(self, brokers, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data.parent / f"ioc-run-{self.port}.log"
        self.out = open(self.log, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "run", "--port", str(self.port), "--data-dir", str(data),
             "--source", f"mqtt://127.0.0.1:{brokers.mqtt_port}"], cwd=REPO, stdout=self.out,
            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_for(lambda: "Live." in self.log.read_text(encoding="utf-8") or self.proc.poll() is not None, 90,
                 "the server to go live")
        assert self.proc.poll() is None, self.log.read_text(encoding="utf-8")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()
        return self.proc.returncode


def _session(url: str, name: str, password: str) -> requests.Session:
    s = requests.Session()
    r = s.post(url + "/login", data={"name": name, "password": password}, allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    return s


def _callbacks(s: requests.Session, url: str, alert: int) -> dict[str, dict]:
    """The three alert-button callbacks as the page would post them, by button."""
    deps = s.get(url + "/_dash-dependencies", timeout=10).json()
    out = {}
    for button in ("alert-ack", "alert-resolve", "alert-assign"):
        dep = next(d for d in deps if d["inputs"][0]["id"] == f'{{"alert":["MATCH"],"type":"{button}"}}')
        out[button] = {"output": dep["output"],
                       "outputs": {"id": {"type": "alert-note", "alert": alert}, "property": "children"},
                       "inputs": [{"id": {"type": button, "alert": alert}, "property": "n_clicks", "value": 1}],
                       "state": [{"id": "operator-comment", "property": "value", "value": "kiểm tra"},
                                 {"id": "assign-officer", "property": "value", "value": None},
                                 {"id": "lang-switch", "property": "value", "value": "vi"}],
                       "changedPropIds": [f'{{"alert":{alert},"type":"{button}"}}.n_clicks']}
    return out


def _publish(brokers, topic: str, payload: str) -> None:
    subprocess.run(["mosquitto_pub", "-p", str(brokers.mqtt_port), "-q", "1", "-t", topic, "-m", payload],
                   check=True, timeout=30)


def test_sign_in_roles_and_csrf_from_outside_and_payload_strings_stay_text(brokers, tmp_path: Path) -> None:
    data = tmp_path / "var"
    server = Server(brokers, data)
    try:
        first = re.search(r"First start: sign in as 'admin' with the password (\S+) ", server.output())
        assert first, server.output()
        admin_pw = first.group(1)
        assert server.output().count(admin_pw) == 1                   # printed this once
        url = server.url
        for name, role in (("wall", "viewer"), ("lan", "operator")):
            _ioc("users", "add", name, "--role", role, "--data", str(data / "auth"), stdin=PASSWORD + "\n")

        # an alert to act on: a river level above the registry's danger level
        t0 = time.time() - 3600
        for k in range(12):
            _publish(brokers, f"city/tran-phu/environment/{SENSOR}",
                     json.dumps({"id": SENSOR, "ts": t0 + 300 * k, "v": 2.0 + 0.1 * (k % 3)}))
        _publish(brokers, f"city/tran-phu/environment/{SENSOR}", json.dumps({"id": SENSOR, "ts": t0 + 3600, "v": 7.0}))
        admin = _session(url, "admin", admin_pw)
        alert = wait_for(lambda: [a for a in admin.get(url + "/api/alerts?status=open", timeout=10).json()
                                  if a["sensor"] == SENSOR], 60, "the alert")[0]["id"]
        routes = [(f"/api/alerts/{alert}/{action}", {"comment": "x", "officer": "x"})
                  for action in ("acknowledge", "assign", "resolve")]

        # nobody signed in: 401 everywhere, the page sends to the sign-in form
        anon = requests.Session()
        r = anon.get(url + "/", allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"] == "/login"
        assert anon.get(url + "/api/alerts", timeout=10).status_code == 401
        for path, body in routes:
            r = anon.post(url + path, json=body, timeout=10)
            assert r.status_code == 401 and "error" in r.json(), path
        for button, body in _callbacks(admin, url, alert).items():
            assert anon.post(url + "/_dash-update-component", json=body, timeout=10).status_code == 401, button

        # a viewer: 403 for each, with the right CSRF token
        wall = _session(url, "wall", PASSWORD)
        cookie = wall.cookies.get("_csrf_token")
        assert wall.get(url + "/api/alerts", timeout=10).status_code == 200
        for path, body in routes:
            r = wall.post(url + path, json=body, headers={"X-CSRFToken": cookie}, timeout=10)
            assert r.status_code == 403 and "viewer 'wall' may not" in r.json()["error"], path
        for button, body in _callbacks(wall, url, alert).items():
            r = wall.post(url + "/_dash-update-component", json=body, headers={"X-CSRFToken": cookie}, timeout=10)
            assert r.status_code == 403 and "viewer 'wall' may not" in r.json()["error"], button

        # an operator: without the CSRF token refused, with it the acknowledgement is made
        lan = _session(url, "lan", PASSWORD)
        set_cookie = lan.post(url + "/login", data={"name": "lan", "password": PASSWORD}, allow_redirects=False,
                              timeout=10).headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        ack = f"/api/alerts/{alert}/acknowledge"
        r = lan.post(url + ack, json={"comment": "đang kiểm tra"}, timeout=10)
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        r = lan.post(url + ack, json={"comment": "đang kiểm tra"}, headers={"X-CSRFToken": "forged"}, timeout=10)
        assert r.status_code == 403
        body = _callbacks(lan, url, alert)["alert-ack"]
        assert lan.post(url + "/_dash-update-component", json=body, timeout=10).status_code == 403
        r = lan.post(url + ack, json={"comment": "đang kiểm tra"},
                     headers={"X-CSRFToken": lan.cookies.get("_csrf_token")}, timeout=10)
        assert r.status_code == 200 and r.json()["acknowledged_by"] == "lan", r.text
        audit = admin.get(url + "/api/audit", timeout=10).json()
        assert [(e["actor"], e["role"], e["action"], e["address"]) for e in audit] == [
            ("lan", "operator", "acknowledge", "127.0.0.1")]
        assert wall.get(url + "/api/audit", timeout=10).status_code == 403

        # payload strings: SenML name and unit, NGSI-LD id, published by the broker's own client
        _publish(brokers, "city/tran-phu/environment/senml",
                 json.dumps([{"n": XSS_NAME, "u": "m", "v": 1, "t": time.time()},
                             {"n": SENSOR, "u": XSS_UNIT, "v": 2.5, "t": time.time()}]))
        _publish(brokers, "city/ngsi-ld/air", json.dumps(
            {"id": f"urn:ngsi-ld:AirQualityObserved:{XSS_ID}", "type": "AirQualityObserved",
             "pm25": {"type": "Property", "value": 3, "unitCode": "GQ"}}))
        dead = wait_for(lambda: len(rows := wall.get(url + "/api/deadletters", timeout=10).json()) >= 3 and rows,
                        30, "the three dead letters")
        reasons = " ".join(d["reason"] for d in dead)
        assert XSS_NAME in reasons and XSS_UNIT in reasons and XSS_ID in reasons
        _no_script_runs(url, PASSWORD)
    finally:
        code = server.stop()
    assert code == 0, server.output()[-3000:]

    again = Server(brokers, data)                                    # a restart prints no password
    try:
        assert "First start" not in again.output() and admin_pw not in again.output()
    finally:
        assert again.stop() == 0


def _no_script_runs(url: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    d = chromium(width=1600, height=1000)
    try:
        sign_in(d, url, "wall", password)
        wait_for(lambda: d.find_elements(By.ID, "h-dead-link"), 30, "the control room")
        d.find_element(By.ID, "h-dead-link").click()                # the dead-letter chip leads to the page
        cells = wait_for(lambda: [td.text for td in d.find_elements(By.CSS_SELECTOR, "#dead-table td")], 30,
                         "the dead-letter table")
        text = "\n".join(cells)
        assert XSS_NAME in text and XSS_UNIT in text and XSS_ID in text          # shown, as text
        assert not d.find_elements(By.CSS_SELECTOR, "#dead-table img, #dead-table script, #dead-table svg")
        assert d.execute_script("return window.__pwned === undefined")
        d.get(url + "/")
        wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#sensor-map canvas"), 30, "the map")
        assert d.execute_script("return window.__pwned === undefined")
        errors = severe(d)
        assert not errors, errors
    finally:
        d.quit()
