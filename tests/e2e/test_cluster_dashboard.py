"""End to end: the control room of a cluster -- ``ioc dashboard`` and ``ioc alerting`` as real processes,
the real Kafka and PostgreSQL, a real headless Chromium.

Scores and alert evidence for every sensor of the city are published as the scoring workers
publish them.  The operator, added to the cluster's user store (``ioc users add --cluster``),
signs in on the dashboard node, sees a marker for every sensor and the alert the owner opened
from the evidence, and acknowledges it: the node queues the action in the store, the alerting
owner applies it, and the audit log names the operator with their role and address.  The node
keeps the history it reads (``--history-dir``): its time slider shows the city before the alert
and in it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from browser import CHROMIUM, chromium, poll, severe, sign_in
from ingest.kafka import KafkaSettings
from ioc.alerting.store import AlertStore
from live import free_port, ioc_cli, make_topics
from scored_feeds import city_registry, publish_flagged

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")]

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "cluster e2e horse battery"
T0 = time.time() - 600          # recent: the owner pages for it without --notify-history
FLAGGED = 3                     # the sensor in alert


async def _publish(settings: KafkaSettings, registry, steps: int) -> None:
    """Every sensor's reading at each step, per partition; sensor FLAGGED in alert from the second step."""
    await publish_flagged(settings, registry, T0, steps=steps, partitions=6, flagged=FLAGGED,
                          topics=(settings.scores_topic, settings.events_topic))


async def test_an_operator_acts_on_the_cluster_from_a_dashboard_node(brokers, pg_schema, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    registry = city_registry()
    uid = uuid.uuid4().hex[:8]
    await make_topics(brokers.kafka_bootstrap, (f"r{uid}", 6), (f"s{uid}", 6), (f"e{uid}", 6))
    source = f"{brokers.kafka_url}?topic=r{uid}&scores=s{uid}&events=e{uid}"
    env = {**{k: v for k, v in os.environ.items() if k != "IOC_WEBHOOK_SECRET" and not k.startswith("IOC_SMTP_")},
           "IOC_POSTGRES_URL": pg_schema, "PYTHONUNBUFFERED": "1"}
    ioc_cli("users", "add", "lan", "--role", "operator", "--cluster", stdin=PASSWORD + "\n", env=env)
    port = free_port()
    procs = {
        "alerting": subprocess.Popen([sys.executable, "-m", "ioc.cli", "alerting", "--source", source],
                                     cwd=REPO, env=env, stdout=open(tmp_path / "alerting.log", "wb"),
                                     stderr=subprocess.STDOUT),
        "dashboard": subprocess.Popen([sys.executable, "-m", "ioc.cli", "dashboard", "--source", source,
                                       "--port", str(port), "--history-dir", str(tmp_path / "history")],
                                      cwd=REPO, env=env,
                                      stdout=open(tmp_path / "dashboard.log", "wb"), stderr=subprocess.STDOUT),
    }
    d = None
    try:
        poll("the owner to lead", lambda: b": leading" in (tmp_path / "alerting.log").read_bytes(), 60)
        poll("the dashboard to serve", lambda: b"dashboard: http" in (tmp_path / "dashboard.log").read_bytes(), 60)
        await _publish(KafkaSettings.from_url(source), registry, steps=8)   # 7 min: the slider's last 90 s are live
        store = AlertStore(pg_schema)
        try:
            (alert,) = poll("the owner to open the alert", lambda: store.alerts(["open"]), 60)
            assert alert.alert.sensor == FLAGGED
            url = f"http://127.0.0.1:{port}/"
            d = chromium(tmp_path / "profile")
            sign_in(d, url, "lan", PASSWORD)
            shown = poll("a marker for every sensor", lambda: d.execute_script(
                "var g = document.querySelector('#sensor-map .js-plotly-plot');"
                "return g && g._fullData && g._fullData[0].lat.length;"))
            assert shown == len(registry)
            button = poll("the alert in the feed", lambda: d.find_elements(
                By.CSS_SELECTOR, "#alert-feed .alert-row.state-open .btn-ack:not([disabled])"))
            assert registry.sensors[FLAGGED].name in d.find_element(By.ID, "alert-feed").text
            button[0].click()
            acked = poll("the owner to apply the acknowledgement",
                         lambda: (r := store.alert(alert.id)) is not None and r.alert.state == "acknowledged" and r, 30)
            assert acked.alert.acknowledged_by == "lan"
            poll("the acknowledgement on screen", lambda: d.find_elements(
                By.CSS_SELECTOR, "#alert-feed .alert-row.state-acknowledged"), 30)
            entry = next(e for e in store.audit_log() if e.action == "acknowledge")
            assert (entry.actor, entry.role, entry.address) == ("lan", "operator", "127.0.0.1")
            # the node keeps the history (--history-dir): the time bar takes the display back in time
            poll("the time bar", lambda: d.find_element(By.ID, "time-bar").is_displayed())
            js_flagged = ("var g = document.querySelector('#sensor-map .js-plotly-plot');"
                          "return g && g.data[0].marker.color[arguments[0]];")
            for at, colour, rows in ((T0 + 30, 0, 0), (T0 + 90, 2, 1)):   # before the alert, then in it
                d.execute_script("window.dash_clientside.set_props('time-slider', {value: arguments[0]});", int(at))
                poll(f"the city at T0+{at - T0:.0f} s", lambda: "Đang xem lúc" in d.find_element(By.ID, "time-label").text
                     and d.execute_script(js_flagged, FLAGGED) == colour
                     and len(d.find_elements(By.CSS_SELECTOR, "#alert-feed .alert-row")) == rows, 30)
            assert not d.find_elements(By.CSS_SELECTOR, "#alert-feed .btn-ack")         # the past is read-only
            d.find_element(By.ID, "time-live").click()
            poll("live again", lambda: d.find_element(By.ID, "time-label").text == "Trực tiếp")
            errors = severe(d)
            assert not errors, errors
        finally:
            store.close()
    finally:
        if d is not None:
            d.quit()
        for p in procs.values():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for name, p in procs.items():
            assert p.wait(30) == 0, (tmp_path / f"{name}.log").read_text()
