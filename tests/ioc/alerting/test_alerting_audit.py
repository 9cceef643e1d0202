"""The audit log in the alert store: who (role, address), what, when; older stores gain the columns."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ioc.alerting.store import AlertStore, AuditEntry, audit_json

T0 = 1_800_000_000.0


def _open(tmp_path: Path, store_at: str | None) -> AlertStore:
    return AlertStore(store_at) if store_at else AlertStore.in_folder(tmp_path)


def test_an_action_is_recorded_with_role_address_and_both_clocks(tmp_path: Path, store_at: str | None) -> None:
    with _open(tmp_path, store_at) as store:
        store.audit("an", "acknowledge", 7, "đang kiểm tra", T0, role="operator", address="10.1.2.3",
                    recorded_at=T0 + 5)
        store.audit("ha", "resolve", 7, "xong", T0 + 60, role="duty", address="::1")
        newest, first = store.audit_log()
    assert first == AuditEntry(T0, "an", "acknowledge", 7, "đang kiểm tra", "operator", "10.1.2.3", T0 + 5)
    assert (newest.actor, newest.role, newest.address) == ("ha", "duty", "::1")
    assert newest.recorded_at == pytest.approx(time.time(), abs=60)      # the wall clock by default
    as_json = audit_json(first, lambda t: f"t{t:.0f}")
    assert as_json == {"at": f"t{T0:.0f}", "recorded_at": f"t{T0 + 5:.0f}", "actor": "an", "role": "operator",
                       "address": "10.1.2.3", "action": "acknowledge", "alert_id": 7, "detail": "đang kiểm tra"}


def test_a_store_from_before_roles_were_recorded_gains_the_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / AlertStore.FILENAME
    with sqlite3.connect(path) as db:                       # the audit table as the first stores had it
        db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL,"
                   " action TEXT NOT NULL, alert_id INTEGER, detail TEXT NOT NULL)")
        db.execute("INSERT INTO audit (at, actor, action, alert_id, detail) VALUES (?, 'Lan', 'acknowledge', 3, '')",
                   (T0,))
    with AlertStore(path) as store:
        store.audit("hung", "resolve", 3, "ok", T0 + 1, role="duty", address="127.0.0.1")
        new, old = store.audit_log()
    assert old == AuditEntry(T0, "Lan", "acknowledge", 3, "", "", "", None)
    assert (new.role, new.address) == ("duty", "127.0.0.1")
    with AlertStore(path) as again:                          # opening it once more changes nothing
        assert len(again.audit_log()) == 2


def test_the_newest_come_first_and_the_limit_holds(tmp_path: Path, store_at: str | None) -> None:
    with _open(tmp_path, store_at) as store:
        for k in range(5):
            store.audit(f"u{k}", "acknowledge", k, "", T0 + k)
        assert [e.actor for e in store.audit_log(3)] == ["u4", "u3", "u2"]


def test_commands_summaries_and_a_second_open_on_both_backends(tmp_path: Path, store_at: str | None) -> None:
    with _open(tmp_path, store_at) as store:
        first = store.queue_command("lan", "acknowledge", 4, "", T0)
        second = store.queue_command("lan", "resolve", 4, "xong", T0 + 1)
        assert second == first + 1
        assert [c[0] for c in store.queued_commands()] == [first, second]
        store.finish_command(first, True, "ok")
        assert store.command(first) == ("done", "ok") and store.delivery_summary() == {}
        assert sum(store.delivery_counts().values()) == 0 and store.horizon() is None
    with _open(tmp_path, store_at) as again:                 # the schema is there: opening changes nothing
        assert [c[0] for c in again.queued_commands()] == [second]
