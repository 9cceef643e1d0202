"""Fixtures of the alerting tests: ``store_at`` runs a test against both backends of the alert store."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_at(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Where the rig keeps its alert store: SQLite in the test's folder, or a fresh schema of the
    real PostgreSQL (the same tests against both backends)."""
    if request.param == "sqlite":
        yield None
        return
    from ioc.pg import connect

    brokers = request.getfixturevalue("brokers")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with connect(brokers.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{brokers.postgres_url}?options=-csearch_path%3D{schema}"
    with connect(brokers.postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
