"""`ioc run --source` as a user runs it: the real command, real brokers, readings published by
the brokers' own clients, read back through the HTTP API."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live import add_token, free_port, get_json, wait_for

REPO = Path(__file__).resolve().parents[2]
SENSOR = "BG-ENV-001"
pytestmark = pytest.mark.integration


@pytest.mark.parametrize("scheme", ["mqtt", "kafka"])
def test_run_source_scores_what_the_broker_clients_publish(brokers, tmp_path: Path, scheme: str) -> None:
    port = free_port()
    url = (f"mqtt://127.0.0.1:{brokers.mqtt_port}" if scheme == "mqtt"
           else f"kafka://{brokers.kafka_bootstrap}?group=run-source-{os.getpid()}")
    proc = subprocess.Popen([sys.executable, "-m", "ioc.cli", "run", "--port", str(port), "--source", url,
                             "--data-dir", str(tmp_path / "var")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/health")["status"], 90, "the server")
        token = add_token(tmp_path / "var" / "auth")                 # the API beyond health needs one
        t0 = time.time() - 3600
        # twelve ordinary river levels, then one above the registry's danger level (6.3 m): an alert
        lines = [json.dumps({"id": SENSOR, "ts": t0 + 300 * k, "v": 2.0 + 0.1 * (k % 3)}) for k in range(12)]
        lines.append(json.dumps({"id": SENSOR, "ts": t0 + 300 * 12, "v": 7.0}))
        if scheme == "mqtt":
            import threading

            import paho.mqtt.client as mqtt

            subscribed, got = threading.Event(), []
            alerts_sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"run-source-{port}")
            alerts_sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("ioc/alerts/#", qos=1)
            alerts_sub.on_subscribe = lambda c, u, mid, rcs, p=None: subscribed.set()   # the SUBACK
            alerts_sub.on_message = lambda c, u, m: got.append((m.topic, m.payload.decode()))
            alerts_sub.connect("127.0.0.1", brokers.mqtt_port)
            alerts_sub.loop_start()
            assert subscribed.wait(10), "the alert subscriber did not subscribe"
            subprocess.run(["mosquitto_pub", "-p", str(brokers.mqtt_port), "-q", "1",
                            "-t", f"city/tran-phu/environment/{SENSOR}", "-l"],
                           input="\n".join(lines) + "\n", text=True, check=True, timeout=30)
        else:
            subprocess.run(["kcat", "-P", "-b", brokers.kafka_bootstrap, "-t", "ioc.readings", "-K", "\t",
                            "-X", "partitioner=murmur2_random"],
                           input="".join(f"{SENSOR}\t{line}\n" for line in lines), text=True, check=True,
                           timeout=30)
        detail = wait_for(lambda: (d := get_json(f"http://127.0.0.1:{port}/api/sensors/{SENSOR}", token))
                           and len(d["recent"]["value"]) >= 13 and d,
                           60, "the readings in /api/sensors")
        health = get_json(f"http://127.0.0.1:{port}/api/health")
        assert health["readings_total"] >= 13
        assert health["deadletters_total"] == 0
        assert detail["id"] == SENSOR
        assert detail["recent"]["value"][-13:] == [2.0 + 0.1 * (k % 3) for k in range(12)] + [7.0]
        assert detail["recent"]["ts"][-1] == pytest.approx(t0 + 300 * 12, abs=1e-3)
        # the alert reaches the operator API and the broker's alert topic
        wait_for(lambda: [a for a in get_json(f"http://127.0.0.1:{port}/api/alerts?status=open", token)
                           if a.get("sensor_id", a.get("sensor")) == SENSOR], 30, "the alert in /api/alerts")
        if scheme == "mqtt":
            wait_for(lambda: got, 30, "the alert on ioc/alerts/#")
            alerts_sub.loop_stop()
            alerts_sub.disconnect()
            assert len(got) == 1 and got[0][0].startswith("ioc/alerts/") and SENSOR in got[0][1], got
        else:
            def on_topic() -> bool:
                got = subprocess.run(["kcat", "-C", "-b", brokers.kafka_bootstrap, "-t", "ioc.alerts", "-o",
                                      "beginning", "-e", "-q"], capture_output=True, text=True, timeout=30)
                return SENSOR in got.stdout
            wait_for(on_topic, 40, "the alert on ioc.alerts")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"readings from {url}" in out
