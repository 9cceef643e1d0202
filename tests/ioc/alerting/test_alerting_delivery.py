"""End to end with real receivers: an HTTP server checking the HMAC signature, an aiosmtpd SMTP server.

Fake clock throughout (every call takes ``now``); real sockets on 127.0.0.1.
"""
from __future__ import annotations

import copy
import json
import logging
import socket
import sqlite3
import threading
import time
import tomllib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from ioc.alerting.channels import (EmailChannel, SmtpSettings, TopicChannel, WebhookChannel,
                                   verify_signature)
from ioc.alerting.dispatcher import AlertService, Dispatcher
from ioc.alerting.store import AlertStore, Delivery
from ioc.citydata import default_city_dir, load_city, load_registry, load_wards
from processing.alerting import parse_config
from processing.alerting.config import AlertingConfig
from processing.batch import ReadingBatch
from processing.reasons import Reason

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

ICT = timezone(timedelta(hours=7))
CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
WARDS = load_wards(CITY / "wards.geojson")
RINGS = {name: WARDS.ring(name) for name in WARDS.names}
RAW = tomllib.loads((CITY / "alerting.toml").read_text("utf-8"))
SECRET = b"bi-mat-chung-cua-ioc"
DEV = int(Reason.DEVIATION)
TRF = REG.index_of("BG-TRF-001")            # Ngô Quyền, traffic → Đội điều hành giao thông
ENV = REG.index_of("BG-ENV-010")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=ICT).timestamp()     # Monday 08:00: Nguyễn Văn An on duty


# ------------------------------------------------------------------ receivers
class Hooks:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()

    def unique(self, path: str | None = None) -> dict[str, dict[str, Any]]:
        """Deliveries as a receiver sees them after dropping duplicates by Idempotency-Key."""
        with self.lock:
            return {r["key"]: r for r in self.received if path is None or r["path"] == path}

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.received if path is None or r["path"] == path)


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, str]]:
    box = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify_signature(SECRET, body, self.headers.get("X-IOC-Signature"))
            if not ok:
                self.send_response(401)
                self.end_headers()
                return
            with box.lock:
                status = box.status
                if status == 200:
                    box.received.append({"path": self.path, "key": self.headers["Idempotency-Key"],
                                         "body": json.loads(body), "event": self.headers["X-IOC-Event"]})
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield box, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult
        return AuthResult(success=data.login == b"ioc" and data.password == b"mat-khau")

    port = free_port()
    ctl = aiosmtpd_controller.Controller(box, hostname="127.0.0.1", port=port, authenticator=auth,
                                         auth_require_tls=False)
    ctl.start()
    yield box, port
    ctl.stop()


class Topic:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bytes]] = []

    def publish(self, topic: str, payload: bytes, key: bytes) -> None:
        self.messages.append((topic, payload, key))


# -------------------------------------------------------------------- wiring
def config_for(base_url: str, max_attempts: int = 3) -> AlertingConfig:
    raw = copy.deepcopy(RAW)
    for o in raw["officers"]:
        o["webhook"] = f"{base_url}/hook/{o['id']}"
    raw["delivery"].update(max_attempts=max_attempts, backoff_s=5, backoff_max_s=60)
    return parse_config(raw, "alerting.toml", city=load_city(CITY / "city.toml"), wards=REG.wards, sensor_ids=REG.ids)


class Rig:
    def __init__(self, tmp: Path, base_url: str, smtp_port: int, max_attempts: int = 3,
                 store_at: str | None = None) -> None:
        self.cfg = config_for(base_url, max_attempts)
        self.tmp, self.smtp_port = tmp, smtp_port
        self.store_at = store_at          # a PostgreSQL URL, else the SQLite file in tmp
        self.mqtt, self.kafka = Topic(), Topic()
        self.open()

    def channels(self) -> dict[str, Any]:
        return {"webhook": WebhookChannel(SECRET, timeout_s=5),
                "email": EmailChannel(SmtpSettings("127.0.0.1", self.smtp_port, sender="ioc@bacgiang.gov.vn",
                                                   username="ioc", password="mat-khau", starttls=False)),
                "mqtt": TopicChannel(self.mqtt), "kafka": TopicChannel(self.kafka)}

    def open(self) -> None:
        self.store = AlertStore(self.store_at) if self.store_at else AlertStore.in_folder(self.tmp)
        self.svc = AlertService(REG, self.cfg, self.store, ward_rings=RINGS)
        self.disp = Dispatcher(self.store, self.channels(), self.cfg.delivery, clock=lambda: T0)

    def crash(self) -> None:
        """The process dies: nothing is flushed or closed cleanly beyond what SQLite committed."""
        self.store.close()

    def feed(self, sensor: int, now: float, flag: bool = True) -> None:
        batch = ReadingBatch.from_arrays([sensor], [now], [950.0 if flag else 10.0])

        class S:
            alert = np.array([flag])
            score = np.array([0.95 if flag else 0.1])
            reasons = np.array([DEV if flag else 0], dtype=np.uint16)
        self.svc.step(batch, S, None, now)


@pytest.fixture
def rig(tmp_path: Path, hooks: tuple[Hooks, str], smtp: tuple[Mailbox, int], store_at: str | None) -> Rig:
    return Rig(tmp_path, hooks[1], smtp[1], store_at=store_at)


# --------------------------------------------------------------------- tests
def test_an_injected_anomaly_reaches_the_officer_on_duty_once_on_each_channel(
        rig: Rig, hooks: tuple[Hooks, str], smtp: tuple[Mailbox, int]) -> None:
    box, _ = hooks
    mail, _ = smtp
    for k in range(10):                                   # the condition goes on for 10 minutes
        rig.feed(TRF, T0 + 60 * k)
        rig.disp.run_once(T0 + 60 * k)
    assert box.count() == 1 and box.count("/hook/nguyen_van_an") == 1
    (got,) = box.received
    assert got["event"] == "opened" and got["body"]["alert"]["sensor_id"] == "BG-TRF-001"
    assert "Ngô Quyền" in got["body"]["text"]["vi"]["description"]
    assert got["body"]["cap"].startswith("<?xml") and "<msgType>Alert</msgType>" in got["body"]["cap"]
    assert len(mail.messages) == 1 and mail.messages[0][1] == ["an.nv@ioc.bacgiang.example.vn"]
    raw = mail.messages[0][2].decode("utf-8", "replace")
    assert "X-IOC-Idempotency-Key" in raw and "application/cap+xml" in raw
    assert [t for t, *_ in rig.mqtt.messages] == ["ioc/alerts/giao_thong"]
    assert [t for t, *_ in rig.kafka.messages] == ["ioc.alerts"]
    assert rig.store.delivery_counts() == {"pending": 0, "sent": 4, "failed": 0}


def test_not_acknowledged_is_escalated_after_the_configured_delay(rig: Rig, hooks: tuple[Hooks, str],
                                                                 smtp: tuple[Mailbox, int]) -> None:
    box, _ = hooks
    rig.feed(TRF, T0)
    rig.disp.run_once(T0)
    rig.svc.tick(T0 + 9 * 60)
    rig.disp.run_once(T0 + 9 * 60)
    assert box.count("/hook/ngo_thi_lan") == 0
    rig.svc.tick(T0 + 10 * 60)
    rig.disp.run_once(T0 + 10 * 60)
    (esc,) = box.unique("/hook/ngo_thi_lan").values()
    assert esc["event"] == "escalated" and "<msgType>Update</msgType>" in esc["body"]["cap"]
    assert "CHUYỂN CẤP" in esc["body"]["text"]["vi"]["subject"]
    assert any(m[1] == ["lan.nt@ioc.bacgiang.example.vn"] for m in smtp[0].messages)


def test_acknowledged_is_not_escalated(rig: Rig, hooks: tuple[Hooks, str]) -> None:
    box, _ = hooks
    rig.feed(TRF, T0)
    rig.disp.run_once(T0)
    (alert,) = rig.svc.open_alerts()
    rig.svc.acknowledge(alert.id, "Nguyễn Văn An", T0 + 120, "đang xử lý")
    for k in range(1, 7):
        rig.svc.tick(T0 + 600 * k)
        rig.disp.run_once(T0 + 600 * k)
    assert box.count() == 1
    assert rig.store.acknowledgements(alert.id) == [("Nguyễn Văn An", T0 + 120, "đang xử lý")]
    assert rig.store.audit_log()[0][1:4] == ("Nguyễn Văn An", "acknowledge", alert.id)


def test_a_silenced_sensor_is_recorded_but_not_notified(rig: Rig, hooks: tuple[Hooks, str],
                                                        smtp: tuple[Mailbox, int]) -> None:
    sunday = datetime(2026, 3, 8, 1, 30, tzinfo=ICT).timestamp()     # weekly maintenance of environment
    rig.feed(ENV, sunday)
    rig.svc.tick(sunday + 600)
    rig.disp.run_once(sunday + 600)
    assert hooks[0].count() == 0 and smtp[0].messages == []
    (stored,) = rig.store.alerts(["open"])
    assert stored.silenced_by == "bao_tri_tram_quan_trac"
    assert [e.type for e in rig.store.events(stored.id)] == ["opened", "silenced"]


def test_a_flapping_sensor_gives_one_alert_not_dozens(rig: Rig, hooks: tuple[Hooks, str]) -> None:
    for k in range(60):
        t = T0 + 30 * k
        rig.feed(TRF, t, flag=k % 2 == 0)
        rig.disp.run_once(t)
    # one alert notification; the only other message is the escalation (nobody acknowledged in 30 min)
    assert hooks[0].count("/hook/nguyen_van_an") == 1
    assert sorted(r["event"] for r in hooks[0].received) == ["escalated", "opened"]
    (a,) = rig.store.alerts()
    assert a.flaps == 29 and a.flapping
    assert [e.type for e in rig.store.events(a.id)].count("flapping") == 1


def test_receiver_answering_500_is_retried_with_backoff_then_marked_failed(rig: Rig,
                                                                           hooks: tuple[Hooks, str]) -> None:
    box, _ = hooks
    box.status = 500
    rig.feed(TRF, T0)
    rig.disp.run_once(T0)
    (d,) = [x for x in rig.store.deliveries(1) if x.channel == "webhook"]
    assert (d.status, d.attempts, d.next_at) == ("pending", 1, T0 + 5) and "HTTP 500" in d.last_error
    rig.disp.run_once(T0 + 4)                              # not due yet
    assert rig.store.delivery(d.key).attempts == 1
    rig.disp.run_once(T0 + 5)                              # second attempt, next after 10 s
    assert rig.store.delivery(d.key).next_at == T0 + 15
    rig.disp.run_once(T0 + 15)                             # third = max_attempts
    d = rig.store.delivery(d.key)
    assert (d.status, d.attempts) == ("failed", 3) and d.last_error.startswith("attempt 3: webhook")
    assert rig.store.delivery_counts()["failed"] == 1
    # an operator retries once the receiver is back
    box.status = 200
    assert rig.svc.retry_delivery(d.key, "Ngô Thị Lan", T0 + 100)
    rig.disp.run_once(T0 + 100)
    assert rig.store.delivery(d.key).status == "sent" and box.count() == 1


def test_receiver_down_is_retried_then_failed(tmp_path: Path, smtp: tuple[Mailbox, int]) -> None:
    rig = Rig(tmp_path, f"http://127.0.0.1:{free_port()}", smtp[1], max_attempts=2)
    rig.feed(TRF, T0)
    rig.disp.run_once(T0)
    rig.disp.run_once(T0 + 5)
    (d,) = [x for x in rig.store.deliveries(1) if x.channel == "webhook"]
    assert (d.status, d.attempts) == ("failed", 2) and "refused" in d.last_error.lower()
    assert rig.store.delivery_counts() == {"pending": 0, "sent": 3, "failed": 1}


def test_the_dispatcher_thread_survives_a_failing_store_and_resumes(
        rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real, calls = rig.store.due, []

    def due(now: float, limit: int = 100) -> list[Delivery]:
        calls.append(now)
        if len(calls) <= 3:                                   # the disk fails for a while
            raise sqlite3.OperationalError("disk I/O error")
        return real(now, limit)

    monkeypatch.setattr(rig.store, "due", due)
    rig.feed(TRF, T0)
    stop = threading.Event()
    thread = threading.Thread(target=rig.disp.run_forever, args=(stop,),
                              kwargs={"poll_s": 0.01, "error_wait_s": 0.01}, daemon=True)
    with caplog.at_level(logging.WARNING, logger="ioc.alerting.dispatcher"):
        thread.start()
        deadline = time.monotonic() + 20
        while rig.store.delivery_counts()["sent"] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and len(calls) > 3
    assert rig.store.delivery_counts() == {"pending": 0, "sent": 4, "failed": 0}
    paused = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert paused == ["alert deliveries paused: OperationalError: disk I/O error (retrying every 0.01 s)"]
    assert any("resumed" in r.getMessage() for r in caplog.records)


class Crash(BaseException):
    """The process is killed."""


def test_killed_mid_delivery_and_restarted_delivers_once(rig: Rig, hooks: tuple[Hooks, str],
                                                         smtp: tuple[Mailbox, int]) -> None:
    box, _ = hooks
    real = rig.disp.channels["webhook"]

    class DiesAfterSending:
        def send(self, d: Delivery) -> None:
            real.send(d)                                   # the receiver has it ...
            raise Crash()                                  # ... and we die before recording that

    rig.disp.channels["webhook"] = DiesAfterSending()
    rig.feed(TRF, T0)
    with pytest.raises(Crash):
        rig.disp.run_once(T0)
    rig.crash()
    rig.open()                                             # restart: store reopened, engine restored
    (a,) = rig.svc.open_alerts()
    assert a.alert.state == "open" and a.notified_at == T0
    rig.feed(TRF, T0 + 60)                                 # the condition continues: no new notification
    rig.disp.run_once(T0 + 60)                             # the interrupted delivery is retried (same key)
    for k in range(2, 6):
        rig.disp.run_once(T0 + 60 * k)
    assert box.count() == 2 and len(box.unique()) == 1     # sent twice on the wire, one delivery after dedup
    assert len(smtp[0].messages) == 1
    assert rig.store.delivery_counts() == {"pending": 0, "sent": 4, "failed": 0}
    (d,) = [x for x in rig.store.deliveries(1) if x.channel == "webhook"]
    assert d.attempts == 2 and d.status == "sent"


def test_killed_before_sending_and_restarted_delivers_exactly_once(rig: Rig, hooks: tuple[Hooks, str]) -> None:
    class DiesBeforeSending:
        def send(self, d: Delivery) -> None:
            raise Crash()

    rig.disp.channels["webhook"] = DiesBeforeSending()
    rig.feed(TRF, T0)
    with pytest.raises(Crash):
        rig.disp.run_once(T0)
    rig.crash()
    rig.open()
    for k in range(1, 4):
        rig.disp.run_once(T0 + 60 * k)
    assert hooks[0].count() == 1
    assert rig.store.delivery_counts()["sent"] == 4


def test_restart_keeps_open_alerts_open_and_escalates_on_time(rig: Rig, hooks: tuple[Hooks, str]) -> None:
    rig.feed(TRF, T0)
    rig.disp.run_once(T0)
    rig.crash()
    rig.open()
    rig.svc.tick(T0 + 600)
    rig.disp.run_once(T0 + 600)
    assert hooks[0].count("/hook/ngo_thi_lan") == 1 and hooks[0].count() == 2
    cap = rig.svc.cap_xml(1)
    assert "<msgType>Alert</msgType>" in cap and "<polygon>" in cap


def test_bad_signature_and_client_errors_are_not_retried(tmp_path: Path, hooks: tuple[Hooks, str],
                                                         smtp: tuple[Mailbox, int]) -> None:
    rig = Rig(tmp_path, hooks[1], smtp[1])
    rig.disp.channels["webhook"] = WebhookChannel(b"wrong-secret")
    rig.feed(TRF, T0)
    rig.disp.run_once(T0)
    (d,) = [x for x in rig.store.deliveries(1) if x.channel == "webhook"]
    assert (d.status, d.attempts) == ("failed", 1) and "HTTP 401" in d.last_error
