"""Fixtures of the alerting tests: ``store_at`` runs a test against both backends of the alert store."""
from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_at(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Where the rig keeps its alert store: SQLite in the test's folder, or a fresh schema of the
    real PostgreSQL (the same tests against both backends)."""
    if request.param == "sqlite":
        yield None
        return
    yield request.getfixturevalue("pg_schema")
