"""Command line: ``ioc alerts list|ack|resolve|assign|deliveries|copy-to-postgres``, ``ioc audit list`` and
``ioc roster now``.

The alert store (``<data>/alerts.sqlite3``, default ``var/alerts``) is the meeting
point: ``list`` and ``deliveries`` read it; ``ack``, ``resolve`` and ``assign``
queue the action in it for the running pipeline, which applies it on its next
step (``--offline`` applies it at once, for when no pipeline is running).
Wired into ``ioc/cli.py`` by :func:`add_parsers`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from processing.alerting.config import AlertingConfig, ConfigError
from processing.alerting.roster import Roster

__all__ = ["add_parsers", "default_alerts_dir"]


def default_alerts_dir() -> Path:
    """``<data-dir>/alerts`` (the data folder of :func:`ioc.paths.data_dir`)."""
    from ioc.paths import data_dir

    return data_dir() / "alerts"


def _config(path: str | None) -> AlertingConfig:
    from ioc.alerting import load_config
    from ioc.citydata import default_city_dir
    return load_config(path or default_city_dir() / "alerting.toml")


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _store(args: argparse.Namespace) -> Any:
    from ioc.alerting.store import AlertStore, StoreError
    folder = Path(args.data) if args.data else default_alerts_dir()
    if not (folder / AlertStore.FILENAME).exists():
        raise StoreError(f"{folder / AlertStore.FILENAME}: no alert store yet (has the pipeline run with alerting?)")
    return AlertStore.in_folder(folder)


def cmd_list(args: argparse.Namespace) -> int:
    from ioc.citydata import load_city

    try:
        local_iso = load_city().iso
    except ConfigError as exc:
        return _fail(str(exc))
    from ioc.alerting.store import StoreError
    states = {"open": ["open"], "acknowledged": ["acknowledged"], "resolved": ["resolved"],
              "active": ["open", "acknowledged"], "all": None}[args.status]
    try:
        with _store(args) as store:
            rows = store.alerts(states, limit=args.limit)
    except StoreError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps([{"id": r.id, "state": r.alert.state, "severity": r.alert.severity, "kind": r.alert.kind,
                           "sensor_id": r.alert.sensor_id, "team": r.team, "level": r.level,
                           "since": local_iso(r.alert.opened_at), "acknowledged_by": r.alert.acknowledged_by,
                           "assignee": r.assignee, "flaps": r.flaps, "incident": r.incident,
                           "silenced_by": r.silenced_by} for r in rows], ensure_ascii=False, indent=1))
        return 0
    print(f"{'id':>5} {'state':<12} {'severity':<8} {'kind':<9} {'sensor':<12} {'team':<14} lvl  since")
    for r in rows:
        a = r.alert
        extra = " ".join(x for x in (f"ack:{a.acknowledged_by}" if a.acknowledged_by else "",
                                     f"silenced:{r.silenced_by}" if r.silenced_by else "",
                                     f"flaps:{r.flaps}" if r.flaps else "",
                                     f"incident:{r.incident}" if r.incident else "") if x)
        print(f"{a.id:>5} {a.state:<12} {a.severity:<8} {a.kind:<9} {a.sensor_id:<12} {r.team:<14} {r.level:>3}  "
              f"{local_iso(a.opened_at)} {extra}")
    print(f"{len(rows)} alert(s)")
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    from ioc.alerting.store import StoreError
    try:
        with _store(args) as store:
            rows = store.deliveries(args.alert, args.status)
            counts = store.delivery_counts()
    except StoreError as exc:
        return _fail(str(exc))
    for d in rows[-args.limit:]:
        print(f"{d.status:<8} {d.attempts:>2}x {d.channel:<8} {d.address:<45} {d.key} {d.last_error}")
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_action(args: argparse.Namespace) -> int:
    from ioc.alerting.store import StoreError
    from processing.alerts import AlertError
    action = {"ack": "acknowledge", "resolve": "resolve", "assign": "assign"}[args.action]
    arg = args.officer if action == "assign" else (args.comment or "")
    if not args.by.strip():
        return _fail("--by needs a name")
    now = time.time()
    if not args.offline:
        try:
            with _store(args) as store:
                cid = store.queue_command(args.by.strip(), action, args.id, arg, now)
                deadline = time.monotonic() + args.wait
                while time.monotonic() < deadline:
                    st = store.command(cid)
                    if st and st[0] != "queued":
                        if st[0] == "error":
                            return _fail(st[1])
                        print(f"alert {args.id}: {action} done")
                        return 0
                    time.sleep(0.2)
        except StoreError as exc:
            return _fail(str(exc))
        print(f"alert {args.id}: {action} queued (command {cid}); the running pipeline applies it on its next step")
        return 0
    try:
        from ioc.alerting.dispatcher import LOCAL_ACTOR, AlertService
        from ioc.alerting.store import AlertStore
        from ioc.citydata import default_city_dir, load_registry
        registry = load_registry(args.registry or default_city_dir() / "sensors.geojson")
        cfg = _config(args.config)
        folder = Path(args.data) if args.data else default_alerts_dir()
        with AlertStore.in_folder(folder) as store:
            svc = AlertService(registry, cfg, store)
            if action == "acknowledge":
                svc.acknowledge(args.id, args.by, now, arg, **LOCAL_ACTOR)
            elif action == "resolve":
                svc.resolve(args.id, args.by, now, arg, **LOCAL_ACTOR)
            else:
                svc.assign(args.id, arg, args.by, now, **LOCAL_ACTOR)
    except (AlertError, ConfigError, StoreError, ValueError) as exc:
        return _fail(str(exc))
    print(f"alert {args.id}: {action} done")
    return 0


def cmd_audit_list(args: argparse.Namespace) -> int:
    """The newest operator actions first: when (the city's local time), who, what, on which alert."""
    from ioc.alerting.store import StoreError, audit_json
    from ioc.citydata import load_city

    try:
        local_iso = load_city().iso
        with _store(args) as store:
            rows = store.audit_log(args.limit)
    except (ConfigError, StoreError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps([audit_json(e, local_iso) for e in rows], ensure_ascii=False, indent=1))
        return 0
    for e in rows:
        who = f"{e.actor} ({e.role})" if e.role else e.actor
        print(f"{local_iso(e.at)}  {who:<32} {e.address or '-':<15} {e.action:<15} "
              f"{'' if e.alert_id is None else e.alert_id:>6}  {e.detail}")
    print(f"{len(rows)} action(s)")
    return 0


def cmd_roster_now(args: argparse.Namespace) -> int:
    try:
        cfg = _config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.at:
        try:
            dt = datetime.fromisoformat(args.at)
        except ValueError:
            return _fail(f"--at: expected an ISO date-time, got {args.at!r}")
        now = (dt if dt.tzinfo else dt.replace(tzinfo=cfg.city.tz)).timestamp()
    else:
        now = time.time()
    print(f"On duty at {cfg.city.iso(now)} ({cfg.city.timezone_name or cfg.city.offset_label})")
    for team_id, officers in Roster(cfg).everyone_on_duty(now).items():
        team = cfg.team(team_id)
        who = ", ".join(f"{o.name} ({o.phone or o.email})" for o in officers) or "— nobody on shift —"
        print(f"  {team.name} [{team.id}]: {who}")
    return 0


def cmd_copy_to_postgres(args: argparse.Namespace) -> int:
    """Copy one machine's alert store into the cluster's PostgreSQL one (empty), ids and audit log kept."""
    import os

    from ingest.sources import redact
    from ioc.alerting.store import AlertStore, StoreError

    url = args.postgres or os.environ.get("IOC_POSTGRES_URL", "")
    if not url:
        return _fail("copy-to-postgres: set IOC_POSTGRES_URL=postgresql://… (the password stays off the command "
                     "line) or give --postgres")
    try:
        with _store(args) as source, AlertStore(url) as target:
            copied = source.copy_into(target)
    except StoreError as exc:
        return _fail(str(exc))
    print(f"Copied {source.where} into {redact(url)}: " + ", ".join(f"{n:,} {t}" for t, n in copied.items()))
    print("Start the cluster's 'ioc alerting' (or 'ioc run --postgres-store') on it; keep the SQLite file as it is.")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add ``alerts``, ``audit`` and ``roster`` to the ``ioc`` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", help="alert store folder (default var/alerts)")

    p = subparsers.add_parser("alerts", help="list, acknowledge and resolve alerts; delivery status")
    asub = p.add_subparsers(dest="alerts_command", required=True)
    q = asub.add_parser("list", parents=[common], help="alerts in the store")
    q.add_argument("--status", choices=["open", "acknowledged", "resolved", "active", "all"], default="active")
    q.add_argument("--limit", type=int, default=200)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)
    q = asub.add_parser("deliveries", parents=[common], help="notifications and their delivery status")
    q.add_argument("--alert", type=int)
    q.add_argument("--status", choices=["pending", "sent", "failed"])
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(func=cmd_deliveries)
    q = asub.add_parser("copy-to-postgres", parents=[common],
                        help="copy this machine's alert store into the cluster's PostgreSQL store (an empty one), "
                             "ids and audit log kept; stop 'ioc run' first")
    q.add_argument("--postgres", metavar="URL", help="postgresql://… (default $IOC_POSTGRES_URL)")
    q.set_defaults(func=cmd_copy_to_postgres)
    for name, helptext in (("ack", "acknowledge an alert"), ("resolve", "resolve an alert with a comment"),
                           ("assign", "assign an alert to an officer")):
        q = asub.add_parser(name, parents=[common], help=helptext)
        q.add_argument("id", type=int)
        q.add_argument("--by", required=True, help="your name (recorded in the audit log)")
        if name == "assign":
            q.add_argument("officer", help="officer id from alerting.toml")
        else:
            q.add_argument("--comment", default="")
        q.add_argument("--wait", type=float, default=3.0, help="seconds to wait for the running pipeline")
        q.add_argument("--offline", action="store_true", help="no pipeline running: apply now in this process")
        q.add_argument("--config", help="alerting.toml (with --offline)")
        q.add_argument("--registry", help="sensors.geojson (with --offline)")
        q.set_defaults(func=cmd_action, action=name)

    p = subparsers.add_parser("audit", help="the audit log of operator actions")
    ausub = p.add_subparsers(dest="audit_command", required=True)
    q = ausub.add_parser("list", parents=[common], help="the newest actions first")
    q.add_argument("--limit", type=int, default=200)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_audit_list)

    p = subparsers.add_parser("roster", help="the duty roster")
    rsub = p.add_subparsers(dest="roster_command", required=True)
    q = rsub.add_parser("now", help="who is on duty now (or --at a time)")
    q.add_argument("--at", help="ISO date-time (the city's local time if no offset)")
    q.add_argument("--config", help="alerting.toml (default config/<city>/alerting.toml)")
    q.set_defaults(func=cmd_roster_now)
