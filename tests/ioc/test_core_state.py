"""The workers' core state in the real PostgreSQL: migrations once, checkpoints that never move back."""
from __future__ import annotations

import threading
import uuid

import pytest

from ioc.core_state import MIGRATIONS, CoreStateStore
from ioc.pg import PgError, connect, migrate

pytestmark = pytest.mark.integration


def test_save_load_and_never_back(brokers):
    topic = f"t{uuid.uuid4().hex[:8]}"
    with CoreStateStore(brokers.postgres_url, topic) as store:
        assert store.load(3) is None
        assert store.save(3, 100, b"state-100", "w1")
        assert store.load(3) == (100, b"state-100", "w1")
        assert not store.save(3, 90, b"state-90", "zombie")       # an older checkpoint does not overwrite
        assert store.load(3) == (100, b"state-100", "w1")
        assert store.save(3, 150, b"\x00" * 1_000_000, "w2")       # a megabyte of state
        assert store.save(0, 7, b"p0", "w2")
        assert store.offsets() == {0: 7, 3: 150}
    with CoreStateStore(brokers.postgres_url, topic) as again:     # another process, later
        assert again.load(3).next_offset == 150 and len(again.load(3).data) == 1_000_000


def test_migrations_apply_once_even_when_started_together(brokers):
    component = f"test_{uuid.uuid4().hex[:8]}"
    table = f"{component}_t"
    steps = (f"CREATE TABLE {table} (n int)", f"INSERT INTO {table} VALUES (1)")
    applied: list[int] = []

    def run() -> None:
        with connect(brokers.postgres_url, autocommit=True) as conn:
            applied.append(migrate(conn, component, steps))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(applied) == [0, 0, 0, 2]
    with connect(brokers.postgres_url, autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
        assert migrate(conn, component, steps + (f"INSERT INTO {table} VALUES (2)",)) == 1
        with pytest.raises(PgError, match="newer than this build's 1"):
            migrate(conn, component, steps[:1])
        assert migrate(conn, "core_state", MIGRATIONS) == 0


def test_wrong_password_is_one_line_without_the_password(brokers):
    wrong = brokers.postgres_url.replace(brokers.postgres.password(), "s3cret-wrong")
    with pytest.raises(PgError) as err:
        connect(wrong, timeout_s=5)
    text = str(err.value)
    assert "\n" not in text and "s3cret-wrong" not in text and "password authentication failed" in text
    assert text.startswith("cannot connect to postgresql://ioc:***@127.0.0.1:")
