"""Command line: ``ioc users add|list|passwd|disable|enable`` and ``ioc tokens add|list|revoke``.

The user store is ``<data>/auth/auth.sqlite3`` (``--data`` overrides the folder; the data
folder is :func:`ioc.paths.data_dir`), or with ``--cluster`` the one the ``ioc dashboard``
nodes of a cluster share, in the PostgreSQL of ``$IOC_POSTGRES_URL``.  A password is read from the terminal without echo
(twice), or as the first line of standard input when that is not a terminal (for
scripts: ``printf '%s\\n' "$PW" | ioc users add an --role operator``); it is never printed
or logged.  A new token's secret is printed once, to standard output, and never again.
Wired into ``ioc/cli.py`` by :func:`add_parsers`.
"""
from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from processing.access import ROLES, SCOPES
from processing.errors import ConfigError

__all__ = ["add_parsers", "default_auth_dir", "read_password"]


def default_auth_dir() -> Path:
    from ioc.paths import data_dir

    return data_dir() / "auth"


def _store(args: argparse.Namespace) -> Any:
    import os

    from ioc.auth.store import AuthStore

    if getattr(args, "cluster", False):
        url = os.environ.get("IOC_POSTGRES_URL", "")
        if not url:
            raise ConfigError("--cluster: set IOC_POSTGRES_URL=postgresql://… (the cluster's database)")
        return AuthStore(url)
    return AuthStore.in_folder(Path(args.data) if args.data else default_auth_dir())


def read_password(stdin: Any = None, prompt: Any = getpass.getpass) -> str:
    """A new password: typed twice without echo at a terminal, else the first line of ``stdin``."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = prompt("New password: ")
        if prompt("Repeat it: ") != first:
            raise ConfigError("the two passwords differ")
        return first
    line = stdin.readline()
    if not line:
        raise ConfigError("no password on standard input (one line expected)")
    return line.rstrip("\r\n")


def _check_roster(args: argparse.Namespace) -> None:
    """``--officer`` and ``--team`` must name an officer and teams of the city's alerting.toml."""
    if not args.officer and not args.team:
        return
    from ioc.alerting import load_config
    from ioc.citydata import default_city_dir

    config = load_config(args.config or default_city_dir() / "alerting.toml")
    officers, teams = {o.id for o in config.officers}, {t.id for t in config.teams}
    if args.officer and args.officer not in officers:
        raise ConfigError(f"--officer {args.officer!r}: not an officer of alerting.toml "
                          f"({', '.join(sorted(officers))})")
    for team in args.team:
        if team not in teams:
            raise ConfigError(f"--team {team!r}: not a team of alerting.toml ({', '.join(sorted(teams))})")


def cmd_add(args: argparse.Namespace) -> int:
    _check_roster(args)
    password = read_password()
    with _store(args) as store:
        user = store.add_user(args.name, args.role, password, time.time(), teams=tuple(args.team),
                              officer=args.officer or "")
    print(f"user {user.name} added: {user.role}" + (f", teams {', '.join(user.teams)}" if user.teams else "")
          + (f", officer {user.officer}" if user.officer else ""))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        users = store.users()
    now = time.time()
    print(f"{'name':<20} {'role':<9} {'officer':<18} {'teams':<24} state")
    for u in users:
        state = "disabled" if u.disabled else "locked" if u.locked_until > now else "active"
        print(f"{u.name:<20} {u.role:<9} {u.officer or '-':<18} {','.join(u.teams) or '(all)':<24} {state}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    password = read_password()
    with _store(args) as store:
        store.set_password(args.name, password)
    print(f"password of {args.name} changed; their sessions are signed out")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.set_disabled(args.name, args.disable)
    print(f"user {args.name} {'disabled and signed out' if args.disable else 'enabled'}")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    with _store(args) as store:
        secret, token = store.add_token(args.name, args.scope, time.time())
    print(f"token {token.id} ({token.name}, {token.scope}); send it as 'Authorization: Bearer <token>'. "
          "It is shown this once:", file=sys.stderr)
    print(secret)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tokens = store.tokens()
    print(f"{'id':<9} {'name':<20} {'scope':<6} {'created (UTC)':<17} state")
    for t in tokens:
        created = datetime.fromtimestamp(t.created_at, timezone.utc).strftime("%Y-%m-%d %H:%M")
        print(f"{t.id:<9} {t.name:<20} {t.scope:<6} {created:<17} {'revoked' if t.revoked_at else 'live'}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.revoke_token(args.id, time.time())
    print(f"token {args.id} revoked")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add ``users`` and ``tokens`` to the ``ioc`` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", help="user store folder (default <data-dir>/auth)")
    common.add_argument("--cluster", action="store_true",
                        help="the user store of the cluster's dashboards, in PostgreSQL ($IOC_POSTGRES_URL)")

    p = subparsers.add_parser("users", help="control-room users: add, list, change password, disable")
    usub = p.add_subparsers(dest="users_command", required=True)
    q = usub.add_parser("add", parents=[common], help="add a user (password from the terminal or stdin)")
    q.add_argument("name")
    q.add_argument("--role", required=True, help=f"one of {', '.join(ROLES)} (duty = duty officer)")
    q.add_argument("--team", action="append", default=[], help="a team of theirs (repeat); duty officers "
                                                               "resolve and silence for their teams only")
    q.add_argument("--officer", help="the officer id of alerting.toml this user is")
    q.add_argument("--config", help="alerting.toml to check --officer and --team against")
    q.set_defaults(func=cmd_add)
    q = usub.add_parser("list", parents=[common], help="users, roles and state")
    q.set_defaults(func=cmd_list)
    q = usub.add_parser("passwd", parents=[common], help="set a user's password (signs them out)")
    q.add_argument("name")
    q.set_defaults(func=cmd_passwd)
    for name, disable in (("disable", True), ("enable", False)):
        q = usub.add_parser(name, parents=[common], help=f"{name} a user")
        q.add_argument("name")
        q.set_defaults(func=cmd_disable, disable=disable)

    p = subparsers.add_parser("tokens", help="API tokens for machines: add, list, revoke")
    tsub = p.add_subparsers(dest="tokens_command", required=True)
    q = tsub.add_parser("add", parents=[common], help="a new token (its secret printed once)")
    q.add_argument("name")
    q.add_argument("--scope", choices=SCOPES, default="read")
    q.set_defaults(func=cmd_token_add)
    q = tsub.add_parser("list", parents=[common], help="tokens and whether they are live")
    q.set_defaults(func=cmd_token_list)
    q = tsub.add_parser("revoke", parents=[common], help="revoke a token by id")
    q.add_argument("id")
    q.set_defaults(func=cmd_token_revoke)
