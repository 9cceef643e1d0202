"""``ioc run --postgres-store``: the one-process control room with its alerts in PostgreSQL, the store a
cluster shares, and never two processes writing it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ioc.alerting.store import AlertStore
from live import free_port, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, Path, int]:
    port = free_port()
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "ioc.cli", "run", "--postgres-store", "--port", str(port),
                             "--preroll-hours", "2", "--anomaly-rate", "48", "--seed", "2", "--history-days", "0",
                             "--data-dir", str(tmp_path / name)], cwd=REPO, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    return proc, log, port


def test_the_alerts_go_to_postgresql_and_a_second_writer_is_refused(brokers, pg_schema, tmp_path):
    env = {**os.environ, "IOC_POSTGRES_URL": pg_schema}
    first, log, port = _run(tmp_path, "first", env)
    try:
        wait_for(lambda: first.poll() is None and requests.get(f"http://127.0.0.1:{port}/api/health",
                                                                timeout=2).json()["status"] == "ok", 120, "ioc run")
        text = log.read_text()
        line = next(x for x in text.splitlines() if x.startswith("Alert store:"))
        assert line.startswith("Alert store: postgresql://ioc:***@127.0.0.1:") and pg_schema.split("@")[0] not in text
        with AlertStore(pg_schema) as store:
            assert wait_for(lambda: store.alerts(), 60, "alerts in PostgreSQL")
        second, log2, _ = _run(tmp_path, "second", env)
        assert second.wait(60) == 2
        assert "another process leads the alerts of postgresql://ioc:***@" in log2.read_text()
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0, log.read_text()[-2000:]
    # the lock went with the process: the store can be led again
    with AlertStore(pg_schema) as store:
        from ioc.alert_owner import lead_key
        from ingest.kafka.settings import EVENTS_TOPIC
        assert store.try_lead(lead_key(EVENTS_TOPIC))
