"""Replay of recorded ``timestamp,value`` CSV series (NAB files, the simulator's
own corpus, exports from real sensors) at any speed.

:func:`read_series_csv` parses one file; :class:`Replayer` releases readings as
replay time passes.  The caller owns the clock: the replayer never sleeps and
never reads the wall clock.

>>> import numpy as np
>>> r = Replayer({0: (np.array([0.0, 60.0, 120.0]), np.array([1.0, 2.0, 3.0]))}, 10.0, start_wall=100.0)
>>> r.due(100.0).value.tolist(), r.due(106.0).value.tolist(), r.done
([1.0], [2.0], False)
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from processing.batch import ReadingBatch

__all__ = ["Replayer", "read_series_csv"]

_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_FIELDS_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_series_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, values)`` from a CSV with columns ``timestamp`` and ``value``.

    Timestamps are ``YYYY-MM-DD HH:MM:SS`` (naive means UTC) or ISO 8601 with
    an offset; they come back as float64 epoch seconds UTC, in file order.
    Blank lines are skipped.  A missing column, an unparsable timestamp or a
    value that is not a finite number raises one ``ValueError`` naming the file
    and line.
    """
    path = Path(path)
    try:
        # header=None: the header row fixes the field count, so a longer row is an
        # error with its line number instead of silently becoming an index column.
        df = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: line 1: empty file, expected a header 'timestamp,value'") from None
    except pd.errors.ParserError as exc:
        m = _FIELDS_RE.search(str(exc))
        detail = f"line {m[2]}: expected {m[1]} fields, saw {m[3]}" if m else str(exc).strip()
        raise ValueError(f"{path}: {detail}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    cols = [str(c).strip() for c in df.iloc[0]]
    df = df.iloc[1:]
    df.columns = cols
    for name in ("timestamp", "value"):
        if name not in cols:
            raise ValueError(f"{path}: line 1: missing column {name!r} (header has {', '.join(cols)})")
        if cols.count(name) > 1:
            raise ValueError(f"{path}: line 1: column {name!r} appears twice")
    raw_ts = df["timestamp"].str.strip()
    raw_v = df["value"].str.strip()
    line = np.arange(len(df)) + 2                     # header is line 1
    blank = ((raw_ts == "") & (raw_v == "")).to_numpy()
    if blank.any():
        raw_ts, raw_v, line = raw_ts[~blank], raw_v[~blank], line[~blank]
    when = pd.to_datetime(raw_ts, utc=True, format="ISO8601", errors="coerce")
    bad = when.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{path}: line {line[i]}: unparsable timestamp {raw_ts.iloc[i]!r} "
                         "(expected 'YYYY-MM-DD HH:MM:SS' or ISO 8601)")
    values = pd.to_numeric(raw_v, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{path}: line {line[i]}: value {raw_v.iloc[i]!r} is not a finite number")
    ts = ((when - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    return ts, values


class Replayer:
    """Releases recorded readings as replay time passes.

    ``series`` maps a sensor index to ``(ts, values)``.  Replay time at wall
    time ``w`` is ``first_ts + (w - start_wall) * speed``, where ``first_ts`` is
    the earliest timestamp over all series (sensors keep their relative
    timing).  :meth:`due` returns each reading exactly once, time-sorted, with
    its recorded timestamp -- or, with ``retime=True``, stamped with the wall
    time at which it became due (for a live pipeline whose heartbeat checks
    compare timestamps with the wall clock).
    """

    def __init__(self, series: Mapping[int, tuple[np.ndarray, np.ndarray]], speed: float, *,
                 start_wall: float, retime: bool = False) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number > 0, got {speed!r}")
        parts = []
        for index, (ts, values) in series.items():
            ts = np.asarray(ts, dtype=np.float64).reshape(-1)
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            if ts.shape != values.shape:
                raise ValueError(f"sensor {index}: {ts.size} timestamps but {values.size} values")
            parts.append(ReadingBatch.from_arrays(np.full(ts.size, index), ts, values))
        self._batch = ReadingBatch.concat(parts).sorted_by_time()
        self._pos = 0
        self.speed = float(speed)
        self.start_wall = float(start_wall)
        self.retime = retime
        self.first_ts = float(self._batch.ts[0]) if len(self._batch) else 0.0

    def __len__(self) -> int:
        return len(self._batch)

    @property
    def done(self) -> bool:
        """True once every reading has been returned."""
        return self._pos >= len(self._batch)

    @property
    def remaining(self) -> int:
        return len(self._batch) - self._pos

    def replay_time(self, now_wall: float) -> float:
        """The recorded time that has been reached at wall time ``now_wall``."""
        return self.first_ts + (now_wall - self.start_wall) * self.speed

    def wall_time(self, ts: float) -> float:
        """The wall time at which a reading recorded at ``ts`` becomes due."""
        return self.start_wall + (ts - self.first_ts) / self.speed

    def next_due_wall(self) -> float | None:
        """Wall time at which the next reading becomes due (``None`` when done),
        so a caller can sleep exactly as long as needed."""
        return None if self.done else self.wall_time(float(self._batch.ts[self._pos]))

    def due(self, now_wall: float) -> ReadingBatch:
        """Readings whose replay time has come by ``now_wall`` and that were not
        returned before."""
        t = self.replay_time(float(now_wall))
        end = int(np.searchsorted(self._batch.ts, t, side="right"))
        if end <= self._pos:
            return ReadingBatch.empty()
        out = self._batch.take(slice(self._pos, end))
        self._pos = end
        if self.retime:
            out = ReadingBatch(out.sensor, self.start_wall + (out.ts - self.first_ts) / self.speed, out.value)
        return out
