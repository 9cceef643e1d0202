"""Replay of recorded ``timestamp,value`` CSV series (NAB files, the simulator's
own corpus, exports from real sensors) at any speed.

:func:`read_series_csv` (from :mod:`ingest.series_csv`) parses one file;
:class:`Replayer` releases readings as
replay time passes.  The caller owns the clock: the replayer never sleeps and
never reads the wall clock.

>>> import numpy as np
>>> r = Replayer({0: (np.array([0.0, 60.0, 120.0]), np.array([1.0, 2.0, 3.0]))}, 10.0, start_wall=100.0)
>>> r.due(100.0).value.tolist(), r.due(106.0).value.tolist(), r.done
([1.0], [2.0], False)
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ingest.series_csv import read_series_csv
from processing.batch import ReadingBatch

__all__ = ["Replayer", "read_series_csv"]

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
