"""The scoring workers' core state in PostgreSQL: one checkpoint per partition of the readings topic.

A worker (:mod:`ioc.worker`) holds one anomaly core per partition it owns.  It saves each
partition's core, with the offset of the next record that core has not seen, every few
seconds and when the partition is taken from it; the worker that gets the partition next loads
that checkpoint and reads on from that offset, so the scores go on exactly as if no
hand-over had happened.  The checkpoint bytes are :mod:`processing.checkpoint`'s format (the
partition's sensors as the registry), which refuses a checkpoint of other sensors or of
other core settings.

Table (migration steps in :data:`MIGRATIONS`)::

    core_state (topic text, part int, next_offset bigint, data bytea, worker text,
                saved_at timestamptz, PRIMARY KEY (topic, part))

A save never moves a partition back: a checkpoint older (lower offset) than the stored one is
ignored, so a worker that lost a partition without noticing cannot undo its successor's work.
"""
from __future__ import annotations

import threading
from typing import Any, NamedTuple

from ioc.pg import connect, migrate

__all__ = ["MIGRATIONS", "CoreStateStore", "PartitionCheckpoint"]

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE core_state (
           topic text NOT NULL,
           part int NOT NULL,
           next_offset bigint NOT NULL,
           data bytea NOT NULL,
           worker text NOT NULL,
           saved_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (topic, part))""",
)


class PartitionCheckpoint(NamedTuple):
    next_offset: int
    data: bytes
    worker: str


class CoreStateStore:
    """Checkpoints of the partitions of ``topic``; thread-safe (one connection, one lock)."""

    def __init__(self, url: str, topic: str) -> None:
        self.topic = topic
        self._conn = connect(url, autocommit=True)
        self._lock = threading.Lock()
        migrate(self._conn, "core_state", MIGRATIONS)

    def save(self, partition: int, next_offset: int, data: bytes, worker: str) -> bool:
        """Store the checkpoint unless a newer one is stored; True if it was stored."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO core_state AS c (topic, part, next_offset, data, worker) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (topic, part) DO UPDATE SET next_offset = EXCLUDED.next_offset, data = EXCLUDED.data, "
                "worker = EXCLUDED.worker, saved_at = now() WHERE c.next_offset <= EXCLUDED.next_offset",
                (self.topic, partition, next_offset, data, worker))
            return cur.rowcount == 1

    def load(self, partition: int) -> PartitionCheckpoint | None:
        with self._lock:
            row = self._conn.execute("SELECT next_offset, data, worker FROM core_state WHERE topic = %s AND part = %s",
                                     (self.topic, partition)).fetchone()
        return None if row is None else PartitionCheckpoint(int(row[0]), bytes(row[1]), str(row[2]))

    def offsets(self) -> dict[int, int]:
        """Partition -> the offset its stored checkpoint covers up to."""
        with self._lock:
            rows = self._conn.execute("SELECT part, next_offset FROM core_state WHERE topic = %s ORDER BY part",
                                      (self.topic,)).fetchall()
        return {int(p): int(o) for p, o in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "CoreStateStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
