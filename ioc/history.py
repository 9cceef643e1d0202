"""The history of the city on disk: every reading with its score, in Parquet files by day.

    <data>/history/day=2026-03-02/part-<first ts>-<n>.parquet     (UTC days; hive partitioning)
        sensor_id  dictionary<int32, string>   the registry id (a registry may change; ids stay)
        key        int64                       CRC-32 of the id: files sorted by it, so a one-sensor
                                               query skips the row groups of other sensors
        ts         double                      epoch seconds
        value      double
        score      float
        alert      bool                        the sensor was in alert after this reading
        reasons    uint16                      processing.reasons bits

The pipeline hands each scored batch to :meth:`HistoryStore.add` (a copy into a buffer, no I/O);
a thread writes the buffer every ``flush_s`` seconds (each file written under a temporary name
and renamed, so a reader never sees half a file) and deletes the days older than
``retention_days``.  Queries (pyarrow's dataset reader, filtering on the day partitions and on
``ts`` / ``sensor_id`` inside the files) see the buffer too, so the last seconds are not missing:

* :meth:`sensor_history` -- one sensor over ``[t0, t1]``, downsampled (:func:`processing.history.downsample`);
* :meth:`readings` -- every reading of ``[t0, t1]`` (the city at a past instant, an incident's hour).

What is lost in a crash is the buffer: at most ``flush_s`` seconds of readings.  Alert transitions
are kept by the alert store (its ``events`` table), which never deletes them.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from processing.errors import ConfigError, StateError
from processing.history import Downsampled, downsample

__all__ = ["HistoryStore", "Readings"]

log = logging.getLogger("ioc.history")

_COLUMNS = ("ts", "value", "score", "alert", "reasons")


@dataclass(frozen=True, slots=True)
class Readings:
    """Readings as arrays, ``sensor`` in the registry's indices (ids it does not know are dropped)."""
    sensor: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    score: np.ndarray
    alert: np.ndarray
    reasons: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)


def _key(sensor_id: str) -> int:
    """The ``key`` column of a sensor: a number its row-group statistics can be pruned on."""
    return zlib.crc32(sensor_id.encode("utf-8"))


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


class HistoryStore:
    """Readings and scores of one city, by UTC day, in ``folder``."""

    def __init__(self, folder: str | Path, sensor_ids: Sequence[str], *, retention_days: float = 30.0,
                 flush_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("the history store needs pyarrow: pip install pyarrow") from None
        if not retention_days > 0:
            raise ConfigError(f"history retention must be > 0 days, got {retention_days}")
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"{self.folder}: cannot make the history folder: {exc.strerror or exc}") from None
        self.ids = list(sensor_ids)
        self._index = {sid: i for i, sid in enumerate(self.ids)}
        self._keys = np.array([_key(sid) for sid in self.ids], dtype=np.int64)
        self.retention_days = float(retention_days)
        self.flush_s = float(flush_s)
        self.clock = clock
        self._lock = threading.Lock()          # the buffer
        self._io = threading.Lock()            # one writer at a time
        self._buf: list[tuple[np.ndarray, ...]] = []
        self._buffered = 0
        self._seq = 0
        self.written = 0                       # rows written to disk
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lo: float | None = None          # the extent, followed in memory once read from disk
        self._hi: float | None = None
        self._extent_known = False

    # ------------------------------------------------------------------ writing
    def add(self, sensor: np.ndarray, ts: np.ndarray, value: np.ndarray, score: np.ndarray, alert: np.ndarray,
            reasons: np.ndarray) -> None:
        """Keep one scored batch (registry indices) until the next flush; copies, no I/O."""
        if len(ts) == 0:
            return
        cols = (np.asarray(sensor, dtype=np.int32).copy(), np.asarray(ts, dtype=np.float64).copy(),
                np.asarray(value, dtype=np.float64).copy(), np.asarray(score, dtype=np.float32).copy(),
                np.asarray(alert, dtype=bool).copy(), np.asarray(reasons, dtype=np.uint16).copy())
        lo, hi = float(cols[1].min()), float(cols[1].max())
        with self._lock:
            self._buf.append(cols)
            self._buffered += len(ts)
            self._lo = lo if self._lo is None else min(self._lo, lo)
            self._hi = hi if self._hi is None else max(self._hi, hi)

    def _take_buffer(self) -> tuple[np.ndarray, ...] | None:
        with self._lock:
            if not self._buf:
                return None
            buf, self._buf, self._buffered = self._buf, [], 0
        return tuple(np.concatenate([b[k] for b in buf]) for k in range(6))

    def _peek_buffer(self) -> tuple[np.ndarray, ...] | None:
        with self._lock:
            buf = list(self._buf)
        return tuple(np.concatenate([b[k] for b in buf]) for k in range(6)) if buf else None

    def flush(self) -> int:
        """Write the buffered readings, one file per day they fall on; returns the rows written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._io:
            cols = self._take_buffer()
            if cols is None:
                return 0
            sensor, ts = cols[0], cols[1]
            key = (ts // 86400).astype(np.int64)               # the UTC day: one date per distinct day
            uniq, inv = np.unique(key, return_inverse=True)
            days = np.array([_day(float(k) * 86400) for k in uniq.tolist()])[inv]
            ids = pa.array(self.ids, type=pa.string())
            for day in np.unique(days).tolist():
                rows = np.flatnonzero(days == day)
                keys = self._keys[sensor[rows]]
                order = rows[np.lexsort((ts[rows], keys))]              # by key, then time: fast filters
                table = pa.table({
                    "sensor_id": pa.DictionaryArray.from_arrays(pa.array(sensor[order], type=pa.int32()), ids),
                    "key": self._keys[sensor[order]], "ts": ts[order], "value": cols[2][order], "score": cols[3][order], "alert": cols[4][order],
                    "reasons": cols[5][order]})
                folder = self.folder / f"day={day}"
                folder.mkdir(exist_ok=True)
                self._seq += 1
                name = f"part-{int(ts[order].min() * 1000)}-{os.getpid()}-{self._seq}.parquet"
                tmp = folder / f".{name}.tmp"
                pq.write_table(table, tmp, compression="zstd", row_group_size=256_000)
                os.replace(tmp, folder / name)
            self.written += int(ts.size)
            return int(ts.size)

    def expire(self, now: float | None = None) -> list[str]:
        """Delete the days older than the retention; returns their names."""
        now = self.clock() if now is None else now
        cutoff = (datetime.fromtimestamp(now, timezone.utc) - timedelta(days=self.retention_days)).strftime("%Y-%m-%d")
        gone = []
        for d in sorted(self.folder.glob("day=*")):
            if d.name[4:] < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d.name[4:])
        if gone:
            with self._lock:
                self._lo, self._extent_known = None, False       # the first day went: read it again
            log.info("history: deleted %d day(s) older than %g days: %s", len(gone), self.retention_days,
                     ", ".join(gone))
        return gone

    def compact(self, keep_parts: int = 64) -> int:
        """Merge each day's files into one when it has more than ``keep_parts`` (a day of 10 s flushes
        makes thousands); returns the days merged.  The merged file replaces the parts by rename, then
        the parts go: a reader in between may see a reading twice, never miss one (queries keep one per
        sensor and time)."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        merged = 0
        with self._io:
            for d in sorted(self.folder.glob("day=*")):
                parts = sorted(d.glob("part-*.parquet"))
                if len(parts) <= keep_parts:
                    continue
                table = ds.dataset([str(p) for p in parts], format="parquet").to_table()
                first = pc.min(table.column("ts")).as_py()
                # by sensor key, then time: a row group holds a few sensors, so a one-sensor query reads
                # the row groups whose key statistics include it, not the whole day
                table = table.sort_by([("key", "ascending"), ("ts", "ascending")])
                self._seq += 1
                name = f"part-{int(first * 1000)}-{os.getpid()}-{self._seq}m.parquet"
                tmp = d / f".{name}.tmp"
                pq.write_table(table, tmp, compression="zstd", row_group_size=32_768)
                os.replace(tmp, d / name)
                for p in parts:
                    p.unlink(missing_ok=True)
                merged += 1
        return merged

    def start(self) -> None:
        """Flush every ``flush_s`` and expire old days, on a thread of its own, until :meth:`close`."""
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.wait(self.flush_s):
                try:
                    self.flush()
                    self.compact()
                    self.expire()
                except Exception as exc:  # noqa: BLE001 - logged, kept in memory no longer than the next try
                    log.error("history: cannot write to %s: %s", self.folder, exc)
        self._thread = threading.Thread(target=run, name="ioc-history", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write what is buffered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.flush()

    # ------------------------------------------------------------------ reading
    def _read(self, t0: float, t1: float, sensor_id: str | None = None) -> Readings:
        import pyarrow.dataset as ds

        parts: list[Readings] = []
        days = [d for d in sorted(self.folder.glob("day=*")) if _day(t0) <= d.name[4:] <= _day(t1)]
        files = [str(f) for d in days for f in sorted(d.glob("part-*.parquet"))]
        if files:
            data = ds.dataset(files, format="parquet")
            cond = (ds.field("ts") >= t0) & (ds.field("ts") <= t1)
            if sensor_id is not None:      # the key prunes row groups; the id settles a CRC collision
                cond = cond & (ds.field("key") == _key(sensor_id)) & (ds.field("sensor_id") == sensor_id)
            table = data.to_table(filter=cond, columns=["sensor_id", *_COLUMNS])
            if table.num_rows:
                col = table.column("sensor_id").combine_chunks()
                names = col.dictionary.to_pylist()
                remap = np.array([self._index.get(n, -1) for n in names], dtype=np.int64)
                idx = remap[col.indices.to_numpy(zero_copy_only=False)] if names else np.empty(0, np.int64)
                known = idx >= 0
                parts.append(Readings(idx[known].astype(np.int32),
                                      *(table.column(c).to_numpy()[known] for c in _COLUMNS)))
        buf = self._peek_buffer()
        if buf is not None:
            keep = (buf[1] >= t0) & (buf[1] <= t1)
            if sensor_id is not None:
                keep &= buf[0] == self._index.get(sensor_id, -1)
            parts.append(Readings(*(c[keep] for c in buf)))
        if not parts:
            return Readings(np.empty(0, np.int32), np.empty(0), np.empty(0), np.empty(0, np.float32),
                            np.empty(0, bool), np.empty(0, np.uint16))
        if len(parts) == 1:
            return parts[0]
        return Readings(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in ("sensor", "ts", "value", "score", "alert", "reasons")))

    def readings(self, t0: float, t1: float) -> Readings:
        """Every reading of ``[t0, t1]``, in no particular order."""
        return self._read(t0, t1)

    def sensor_history(self, sensor_id: str, t0: float, t1: float, points: int = 500) -> Downsampled:
        """One sensor's readings of ``[t0, t1]`` in time order, as at most ``points`` buckets."""
        r = self._read(t0, t1, sensor_id)
        order = np.argsort(r.ts, kind="stable")
        ts = r.ts[order]
        keep = np.r_[True, np.diff(ts) > 0] if ts.size else np.zeros(0, dtype=bool)   # one per time (a copy)
        return downsample(ts[keep], r.value[order][keep], r.score[order][keep], r.alert[order][keep], t0, t1, points)

    def extent(self) -> tuple[float, float] | None:
        """The first and last reading time kept (None: nothing yet); from disk once, then followed in memory."""
        with self._lock:
            lo, hi, known = self._lo, self._hi, self._extent_known
        if not known:
            found = self._disk_extent()
            with self._lock:
                self._extent_known = True
                if found is not None:
                    self._lo = found[0] if self._lo is None else min(self._lo, found[0])
                    self._hi = found[1] if self._hi is None else max(self._hi, found[1])
                lo, hi = self._lo, self._hi
        return None if lo is None or hi is None else (float(lo), float(hi))

    def _disk_extent(self) -> tuple[float, float] | None:
        import pyarrow.dataset as ds
        import pyarrow.compute as pc

        days = sorted(self.folder.glob("day=*"))
        lo = hi = None
        for d in (days[:1] + days[-1:]) if days else []:
            files = [str(f) for f in d.glob("part-*.parquet")]
            if files:
                col = ds.dataset(files, format="parquet").to_table(columns=["ts"]).column("ts")
                mm = pc.min_max(col).as_py()
                lo = mm["min"] if lo is None else min(lo, mm["min"])
                hi = mm["max"] if hi is None else max(hi, mm["max"])
        return None if lo is None else (float(lo), float(hi))

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.glob("day=*/part-*.parquet"))
