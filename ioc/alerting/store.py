"""Durable alert store: SQLite in WAL mode in the data folder (``<data>/alerts.sqlite3``), or PostgreSQL.

``AlertStore("postgresql://USER:PASSWORD@HOST:PORT/DB")`` keeps the same tables in PostgreSQL
(psycopg 3), for several machines sharing one store: the same SQL, translated once per statement
by :func:`_to_pg` (``?`` placeholders, ``INSERT OR REPLACE``/``OR IGNORE`` as ``ON CONFLICT``,
``instr`` as ``strpos``, the reserved column name ``by`` quoted), and the schema created through
:func:`ioc.pg.migrate` (``REAL`` as double precision, identities for the generated ids).

Tables::

    alerts           one row per alert: the engine's Routed record as JSON + queryable columns
    events           every state transition (seq = the engine's event number), for the audit trail
    incidents        grouped alerts (ward + domain)
    notifications    one row per delivery, keyed by its idempotency key (alert:event:channel:recipient);
                     status pending → sent | failed, attempts, last_error, next_at (retry time)
    acknowledgements who acknowledged which alert, when, with what comment
    audit            operator actions (ack, assign, resolve, …) with the actor
    commands         operator actions queued by another process (``ioc alerts ack``) for the running service
    meta             key -> JSON; ``horizon``: the stream position of the last outcome recorded by the
                     pipeline (its event time, and Kafka offsets), written in the same transaction, so
                     a warm start (ioc.checkpoints) knows which replayed readings were already alerted on

An engine outcome is written in one transaction (:meth:`AlertStore.record`);
notifications are inserted with ``INSERT OR IGNORE`` on their key, so recording
the same notice twice never makes a second delivery.  A delivery attempt is
claimed *before* sending (:meth:`claim`: attempts + 1, ``next_at`` pushed to the
retry time), so after a crash mid-delivery the row is still pending and is
retried with the same idempotency key, which receivers use to drop the
duplicate.  Thread-safe: one connection behind a lock.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from processing.alerting.engine import Event, Incident, Outcome, Routed
from processing.alerts import Alert
from processing.errors import StateError

__all__ = ["AlertStore", "AuditEntry", "Delivery", "StoreError", "audit_json"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, state TEXT NOT NULL, severity TEXT NOT NULL, kind TEXT NOT NULL,
    sensor_id TEXT NOT NULL, team TEXT NOT NULL, opened_at REAL NOT NULL, updated_at REAL NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, type TEXT NOT NULL, at REAL NOT NULL,
    by TEXT NOT NULL, level INTEGER NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_alert ON events(alert_id);
CREATE TABLE IF NOT EXISTS incidents (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    key TEXT PRIMARY KEY, alert_id INTEGER NOT NULL, event_seq INTEGER NOT NULL, event TEXT NOT NULL,
    msg_type TEXT NOT NULL, channel TEXT NOT NULL, address TEXT NOT NULL, officer TEXT NOT NULL,
    level INTEGER NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
    next_at REAL NOT NULL, sent_at REAL);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(status, next_at);
CREATE INDEX IF NOT EXISTS notifications_alert ON notifications(alert_id);
CREATE TABLE IF NOT EXISTS acknowledgements (
    alert_id INTEGER NOT NULL, by TEXT NOT NULL, at REAL NOT NULL, comment TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    alert_id INTEGER NOT NULL, arg TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
    result TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    alert_id INTEGER, detail TEXT NOT NULL);
"""


#: every table, in the order a copy writes them (:meth:`AlertStore.copy_into`)
_TABLES = ("alerts", "events", "incidents", "notifications", "acknowledgements", "commands", "meta", "audit")


#: audit columns added after the first stores were written: (name, declaration)
_AUDIT_ADDED = (("role", "TEXT NOT NULL DEFAULT ''"), ("address", "TEXT NOT NULL DEFAULT ''"),
                ("recorded_at", "REAL"))


#: command columns added since: who queued it from where (a dashboard node of a cluster), for the audit log
_COMMANDS_ADDED = (("role", "TEXT NOT NULL DEFAULT ''"), ("address", "TEXT NOT NULL DEFAULT ''"))


class AuditEntry(NamedTuple):
    """One recorded action.  ``at``: the pipeline's clock (simulated time in the embedded
    demo); ``recorded_at``: the wall clock (None in stores from before it was kept)."""

    at: float
    actor: str
    action: str
    alert_id: int | None
    detail: str
    role: str
    address: str
    recorded_at: float | None


def audit_json(e: AuditEntry, local_iso: Callable[[float], str | None]) -> dict[str, Any]:
    """One audit entry as JSON, its times in the city's local time (``local_iso``)."""
    return {"at": local_iso(e.at), "recorded_at": None if e.recorded_at is None else local_iso(e.recorded_at),
            "actor": e.actor, "role": e.role, "address": e.address, "action": e.action, "alert_id": e.alert_id,
            "detail": e.detail}


class StoreError(StateError, RuntimeError):
    """The alert store cannot be opened or used (message names the file)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification row: what to send, where, and how it went."""
    key: str
    alert_id: int
    event_seq: int
    event: str
    msg_type: str
    channel: str
    address: str
    officer: str
    level: int
    payload: Mapping[str, Any]
    status: str
    attempts: int
    last_error: str
    created_at: float
    next_at: float
    sent_at: float | None


def _routed_json(r: Routed) -> str:
    return json.dumps(dataclasses.asdict(r), ensure_ascii=False, allow_nan=True)


def _routed_from(text: str) -> Routed:
    d = json.loads(text)
    d["alert"] = Alert(**d["alert"])
    return Routed(**d)


#: table -> (primary key, the other columns), for INSERT OR REPLACE on PostgreSQL
_UPSERT: dict[str, tuple[str, tuple[str, ...]]] = {
    "alerts": ("id", ("state", "severity", "kind", "sensor_id", "team", "opened_at", "updated_at", "data")),
    "incidents": ("id", ("data",)),
    "meta": ("key", ("value",)),
}


@functools.lru_cache(maxsize=256)
def _to_pg(sql: str) -> str:
    """One statement of this module in PostgreSQL's dialect.

    >>> _to_pg("INSERT OR REPLACE INTO meta VALUES ('horizon', ?)")
    "INSERT INTO meta VALUES ('horizon', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    >>> _to_pg("SELECT by, at FROM acknowledgements WHERE alert_id = ?")
    'SELECT "by", at FROM acknowledgements WHERE alert_id = %s'
    """
    out = sql.replace("BEGIN IMMEDIATE", "BEGIN").replace("instr(last_error, ?)", "strpos(last_error, ?)")
    out = re.sub(r"\bSELECT by,", 'SELECT "by",', out)
    m = re.match(r"INSERT OR REPLACE INTO (\w+) ", out)
    if m:
        key, cols = _UPSERT[m.group(1)]
        out = (out.replace("INSERT OR REPLACE INTO", "INSERT INTO", 1) + f" ON CONFLICT ({key}) DO UPDATE SET "
               + ", ".join(f"{c} = EXCLUDED.{c}" for c in cols))
    elif out.startswith("INSERT OR IGNORE INTO"):
        out = out.replace("INSERT OR IGNORE INTO", "INSERT INTO", 1) + " ON CONFLICT DO NOTHING"
    return out.replace("?", "%s")


def _pg_schema() -> str:
    """:data:`_SCHEMA` with the audit columns added since, in PostgreSQL's types."""
    from ioc.pg import pg_types

    schema = re.sub(r"\bby TEXT", '"by" TEXT', pg_types(_SCHEMA))
    added = ", ".join(f"ADD COLUMN IF NOT EXISTS {c} {d.replace('REAL', 'DOUBLE PRECISION')}" for c, d in _AUDIT_ADDED)
    return schema + f"\nALTER TABLE audit {added};\n"


def _pg_commands_added() -> str:
    """Migration step 2: :data:`_COMMANDS_ADDED`."""
    return "ALTER TABLE commands " + ", ".join(f"ADD COLUMN IF NOT EXISTS {c} {d}" for c, d in _COMMANDS_ADDED) + ";"


class AlertStore:
    """The durable record of alerts, events, deliveries, acknowledgements and operator actions."""

    FILENAME = "alerts.sqlite3"

    def __init__(self, path: str | Path) -> None:
        from ioc.pg import is_postgres

        if is_postgres(path):
            from ingest.sources import redact
            from ioc.pg import PgError, SqliteLike

            self.path = Path(redact(str(path)))
            self.where = redact(str(path))              # for messages: the address, without its password
            self.postgres = True
            try:
                self._db = SqliteLike(str(path), "alert_store", (_pg_schema(), _pg_commands_added()),  # type: ignore[assignment]
                                      _to_pg)
            except PgError as exc:
                raise StoreError(f"cannot open the alert store: {exc}") from None
            self._lock = threading.Lock()
            return
        self.postgres = False
        self.path = Path(path)
        self.where = str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(audit)")}
            for column, decl in _AUDIT_ADDED:             # a store from before they were recorded
                if column not in have:
                    self._db.execute(f"ALTER TABLE audit ADD COLUMN {column} {decl}")
            have = {r[1] for r in self._db.execute("PRAGMA table_info(commands)")}
            for column, decl in _COMMANDS_ADDED:
                if column not in have:
                    self._db.execute(f"ALTER TABLE commands ADD COLUMN {column} {decl}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the alert store: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def in_folder(cls, data_dir: str | Path) -> "AlertStore":
        return cls(Path(data_dir) / cls.FILENAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "AlertStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- writes
    def record(self, outcome: Outcome, payloads: Mapping[str, Mapping[str, Any]], now: float, *,
               horizon: Mapping[str, Any] | None = None) -> int:
        """Write one engine outcome atomically (with the stream ``horizon`` it was computed at, if
        given: see :meth:`horizon`); returns how many *new* notifications were queued."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for r in outcome.alerts:
                    a = r.alert
                    cur.execute("INSERT OR REPLACE INTO alerts VALUES (?,?,?,?,?,?,?,?,?)",
                                (a.id, a.state, a.severity, a.kind, a.sensor_id, r.team, a.opened_at, now,
                                 _routed_json(r)))
                for e in outcome.events:
                    cur.execute("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?)",
                                (e.seq, e.alert_id, e.type, e.at, e.by, e.level, e.detail))
                    if e.type == "acknowledged":
                        cur.execute("INSERT INTO acknowledgements VALUES (?,?,?,?)", (e.alert_id, e.by, e.at, e.detail))
                for inc in outcome.incidents:
                    cur.execute("INSERT OR REPLACE INTO incidents VALUES (?,?)",
                                (inc.id, json.dumps(dataclasses.asdict(inc), ensure_ascii=False)))
                queued = 0
                for n in outcome.notices:
                    cur.execute(
                        "INSERT OR IGNORE INTO notifications (key, alert_id, event_seq, event, msg_type, channel, "
                        "address, officer, level, payload, created_at, next_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (n.key, n.alert_id, n.event_seq, n.event, n.msg_type, n.channel, n.address, n.officer,
                         n.level, json.dumps(payloads.get(n.key, {}), ensure_ascii=False), now, now))
                    queued += cur.rowcount
                if horizon is not None:
                    cur.execute("INSERT OR REPLACE INTO meta VALUES ('horizon', ?)",
                                (json.dumps(dict(horizon), sort_keys=True),))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return queued

    def audit(self, actor: str, action: str, alert_id: int | None, detail: str, at: float, *,
              role: str = "", address: str = "", recorded_at: float | None = None) -> None:
        """Record an action: who (``actor``, their ``role``, the ``address`` they came from), what,
        when on the pipeline's clock (``at``) and on the wall clock (``recorded_at``, default now)."""
        with self._lock:
            self._db.execute("INSERT INTO audit (at, actor, action, alert_id, detail, role, address, recorded_at) "
                             "VALUES (?,?,?,?,?,?,?,?)", (at, actor, action, alert_id, detail, role, address,
                                                          time.time() if recorded_at is None else recorded_at))

    def queue_command(self, actor: str, action: str, alert_id: int, arg: str, at: float, *, role: str = "",
                      address: str = "") -> int:
        """Queue an operator action (``acknowledge`` | ``resolve`` | ``assign``) for the engine's owner;
        ``role`` and ``address``: of the signed-in user who asked (empty: the local command line)."""
        sql = "INSERT INTO commands (at, actor, action, alert_id, arg, role, address) VALUES (?,?,?,?,?,?,?)"
        args = (at, actor, action, alert_id, arg, role, address)
        with self._lock:
            if self.postgres:
                return int(self._db.execute(sql + " RETURNING id", args).fetchone()[0])
            cur = self._db.execute(sql, args)
        return int(cur.lastrowid)

    def queued_commands(self) -> list[tuple[int, float, str, str, int, str, str, str]]:
        """``(id, at, actor, action, alert_id, arg, role, address)`` of the commands not applied yet, oldest first."""
        with self._lock:
            return [tuple(r) for r in self._db.execute(  # type: ignore[misc]
                "SELECT id, at, actor, action, alert_id, arg, role, address FROM commands WHERE status = 'queued' "
                "ORDER BY id")]

    def finish_command(self, command_id: int, ok: bool, result: str) -> None:
        with self._lock:
            self._db.execute("UPDATE commands SET status = ?, result = ? WHERE id = ?",
                             ("done" if ok else "error", result[:500], command_id))

    def command(self, command_id: int) -> tuple[str, str] | None:
        """``(status, result)`` of a queued command."""
        with self._lock:
            row = self._db.execute("SELECT status, result FROM commands WHERE id = ?", (command_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def claim(self, key: str, now: float, retry_at: float) -> int:
        """Start an attempt: attempts + 1 and the retry time set *before* sending; returns the attempt number."""
        with self._lock:
            self._db.execute("UPDATE notifications SET attempts = attempts + 1, next_at = ? "
                             "WHERE key = ? AND status = 'pending'", (retry_at, key))
            row = self._db.execute("SELECT attempts FROM notifications WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def mark_sent(self, key: str, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE notifications SET status = 'sent', sent_at = ?, last_error = '' WHERE key = ?",
                             (now, key))

    def mark_error(self, key: str, error: str, *, final: bool) -> None:
        """A failed attempt; ``final`` marks the delivery failed (no more retries)."""
        with self._lock:
            self._db.execute("UPDATE notifications SET last_error = ?, status = ? WHERE key = ?",
                             (error[:500], "failed" if final else "pending", key))

    def retry_failed(self, key: str, now: float) -> bool:
        """An operator asks to try a failed delivery again."""
        with self._lock:
            cur = self._db.execute("UPDATE notifications SET status = 'pending', attempts = 0, next_at = ? "
                                   "WHERE key = ? AND status = 'failed'", (now, key))
        return cur.rowcount == 1

    # --------------------------------------------------------------- reads
    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose (re)try time has come, oldest first."""
        return self._deliveries("WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, created_at LIMIT ?",
                                (now, limit))

    def deliveries(self, alert_id: int | None = None, status: str | None = None) -> list[Delivery]:
        where, args = [], []
        if alert_id is not None:
            where.append("alert_id = ?")
            args.append(alert_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._deliveries(f"{clause} ORDER BY created_at, key", tuple(args))

    def delivery(self, key: str) -> Delivery | None:
        rows = self._deliveries("WHERE key = ?", (key,))
        return rows[0] if rows else None

    def _deliveries(self, clause: str, args: tuple) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, alert_id, event_seq, event, msg_type, channel, address, officer, level, payload, "
                f"status, attempts, last_error, created_at, next_at, sent_at FROM notifications {clause}",
                args).fetchall()
        return [Delivery(*r[:9], json.loads(r[9]), *r[10:]) for r in rows]  # type: ignore[arg-type]

    def delivery_status(self, alert_ids: Iterable[int] | None = None) -> list[tuple[int, str, str, str, int, str]]:
        """``(alert_id, channel, address, status, attempts, last_error)`` per delivery, without the payloads
        (cheap enough for every dashboard snapshot); ``alert_ids`` None: every delivery."""
        with self._lock:
            if alert_ids is None:
                rows = self._db.execute("SELECT alert_id, channel, address, status, attempts, last_error "
                                        "FROM notifications ORDER BY created_at, key").fetchall()
            else:
                ids = sorted({int(i) for i in alert_ids})
                rows = []
                for k in range(0, len(ids), 500):          # SQLite's limit on bound parameters
                    chunk = ids[k:k + 500]
                    rows += self._db.execute(
                        "SELECT alert_id, channel, address, status, attempts, last_error FROM notifications "
                        f"WHERE alert_id IN ({','.join('?' * len(chunk))}) ORDER BY created_at, key",
                        chunk).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def delivery_summary(self, since_alert_id: int = 0, unconfigured: str = "not configured"
                         ) -> dict[int, tuple[int, int, int, int]]:
        """Alert id → ``(sent, pending, failed, not configured)`` delivery counts for alerts from
        ``since_alert_id`` on; a failed delivery whose last error contains ``unconfigured`` counts
        as not configured (no receiver for its channel), not as failed.  One grouped query."""
        with self._lock:
            rows = self._db.execute(
                "SELECT alert_id, status, instr(last_error, ?) > 0, COUNT(*) FROM notifications "
                "WHERE alert_id >= ? GROUP BY 1, 2, 3", (unconfigured, since_alert_id)).fetchall()
        out: dict[int, list[int]] = {}
        for aid, status, unconf, n in rows:
            c = out.setdefault(int(aid), [0, 0, 0, 0])
            c[{"sent": 0, "pending": 1}.get(status, 3 if unconf else 2)] += int(n)
        return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}

    def delivery_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM notifications GROUP BY status").fetchall()
        return {"pending": 0, "sent": 0, "failed": 0, **{s: int(n) for s, n in rows}}

    def alerts(self, states: Iterable[str] | None = None, limit: int = 1000) -> list[Routed]:
        with self._lock:
            if states is None:
                rows = self._db.execute("SELECT data FROM alerts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                st = list(states)
                rows = self._db.execute(f"SELECT data FROM alerts WHERE state IN ({','.join('?' * len(st))}) "
                                        "ORDER BY id DESC LIMIT ?", (*st, limit)).fetchall()
        return [_routed_from(r[0]) for r in rows]

    def alert(self, alert_id: int) -> Routed | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return _routed_from(row[0]) if row else None

    def events(self, alert_id: int | None = None) -> list[Event]:
        with self._lock:
            if alert_id is None:
                rows = self._db.execute("SELECT * FROM events ORDER BY seq").fetchall()
            else:
                rows = self._db.execute("SELECT * FROM events WHERE alert_id = ? ORDER BY seq", (alert_id,)).fetchall()
        return [Event(*r) for r in rows]

    def acknowledgements(self, alert_id: int) -> list[tuple[str, float, str]]:
        with self._lock:
            return [tuple(r) for r in self._db.execute(  # type: ignore[misc]
                "SELECT by, at, comment FROM acknowledgements WHERE alert_id = ? ORDER BY at", (alert_id,))]

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        """The newest ``limit`` actions, newest first."""
        with self._lock:
            return [AuditEntry(*r) for r in self._db.execute(
                "SELECT at, actor, action, alert_id, detail, role, address, recorded_at FROM audit "
                "ORDER BY id DESC LIMIT ?", (limit,))]

    def try_lead(self, key: int) -> bool:
        """Become the one active alerting owner: take PostgreSQL's session advisory lock ``key`` on
        this store's own connection, without waiting (True: taken, or held already).

        The lock lives as long as this connection: when the process dies, PostgreSQL drops it and
        a standby's next try takes it; and every write of the leader goes through the same
        session, so a leader that lost its session cannot write on.  SQLite has no such lock:
        one process owns its file (the embedded pipeline), so :class:`StoreError`."""
        if not self.postgres:
            raise StoreError(f"{self.where}: an alerting owner with a standby needs the PostgreSQL alert store "
                             "(postgresql://…); SQLite is for one process")
        with self._lock:
            row = self._db.execute("SELECT pg_try_advisory_lock(?)", (int(key),)).fetchone()
        return bool(row[0])

    def copy_into(self, target: "AlertStore") -> dict[str, int]:
        """Every row of this store into ``target``, an empty store (one machine's SQLite store into the
        cluster's PostgreSQL one): alerts, their events, incidents, deliveries, acknowledgements, the
        audit log, queued commands and the stream horizon, ids kept, in one transaction of ``target``;
        returns the rows copied per table.  :class:`StoreError` when ``target`` holds alerts, events or
        an audit log already (two histories are not merged)."""
        if target is self or (target.postgres == self.postgres and target.where == self.where):
            raise StoreError(f"{self.where}: a store cannot be copied into itself")
        with self._lock:
            rows: dict[str, tuple[list[str], list[tuple]]] = {}
            for table in _TABLES:
                cur = self._db.execute(f"SELECT * FROM {table}")
                rows[table] = ([d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()])
        with target._lock:
            held = target._db.execute("SELECT (SELECT COUNT(*) FROM alerts) + (SELECT COUNT(*) FROM events) + "
                                      "(SELECT COUNT(*) FROM audit)").fetchone()[0]
            if held:
                raise StoreError(f"{target.where}: holds alerts or an audit log already ({held} rows); copy into "
                                 "an empty store")
            cur = target._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for table, (cols, data) in rows.items():
                    if data:
                        names = ", ".join(f'"{c}"' for c in cols)
                        cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})", data)
                if target.postgres:                       # the generated ids go on after the copied ones
                    for table in ("commands", "audit"):
                        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return {table: len(data) for table, (_, data) in rows.items()}

    def horizon(self) -> dict[str, Any] | None:
        """The stream position of the last outcome the pipeline recorded (None: none yet)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'horizon'").fetchone()
        return None if row is None else json.loads(row[0])

    def load_state(self) -> tuple[list[Routed], list[Incident], int, int]:
        """What an engine needs after a restart: unresolved alerts, incidents, next event seq, next alert id."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM alerts WHERE state != 'resolved' ORDER BY id").fetchall()
            incs = self._db.execute("SELECT data FROM incidents ORDER BY id").fetchall()
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events").fetchone()[0]
            nid = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts").fetchone()[0]
        incidents = []
        for (text,) in incs:
            d = json.loads(text)
            d["alert_ids"] = tuple(d["alert_ids"])
            incidents.append(Incident(**d))
        return [_routed_from(r[0]) for r in rows], incidents, int(seq), int(nid)
