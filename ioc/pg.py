"""PostgreSQL for the IOC's shared state: connecting with one-line errors, and schema migrations.

Each component that keeps tables in PostgreSQL (the workers' core state, :mod:`ioc.core_state`)
owns a list of migration steps -- SQL scripts applied in order, never edited once released --
and :func:`migrate` brings a database up to date::

    ioc_schema (component text PRIMARY KEY, version int)   -- steps applied per component

The steps of a component run in one transaction under a transaction-level advisory lock,
so two processes starting at once (three workers of a group) apply them exactly once.
"""
from __future__ import annotations

import zlib
from typing import Any, Sequence

from ingest.sources import redact
from processing.errors import IocError

__all__ = ["PgError", "connect", "migrate"]


class PgError(IocError):
    """PostgreSQL cannot be used; one line naming the address (never the password)."""


def connect(url: str, *, autocommit: bool = False, timeout_s: float = 10.0) -> Any:
    """A psycopg 3 connection to ``postgresql://USER:PASSWORD@HOST:PORT/DB``; :class:`PgError` with one
    line when psycopg is not installed or the server cannot be reached or refuses the login."""
    try:
        import psycopg
    except ImportError:
        raise PgError("PostgreSQL support needs psycopg 3: pip install 'city-ioc[cluster]'") from None
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout_s)))
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()
        why = text[-1] if text else type(exc).__name__
        raise PgError(f"cannot connect to {redact(url)}: {why}") from None


def migrate(conn: Any, component: str, steps: Sequence[str]) -> int:
    """Apply the steps of ``component`` that ``conn``'s database lacks; returns how many were applied."""
    lock = zlib.crc32(f"ioc-schema:{component}".encode())
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        conn.execute("CREATE TABLE IF NOT EXISTS ioc_schema (component text PRIMARY KEY, version int NOT NULL)")
        row = conn.execute("SELECT version FROM ioc_schema WHERE component = %s", (component,)).fetchone()
        have = row[0] if row else 0
        if have > len(steps):
            raise PgError(f"the database's {component} schema is version {have}, newer than this build's "
                          f"{len(steps)}: upgrade the IOC")
        for step in steps[have:]:
            conn.execute(step)
        if have < len(steps):
            conn.execute("INSERT INTO ioc_schema (component, version) VALUES (%s, %s) ON CONFLICT (component) "
                         "DO UPDATE SET version = EXCLUDED.version", (component, len(steps)))
    return len(steps) - have
