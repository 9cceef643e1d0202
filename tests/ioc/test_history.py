"""The history store: Parquet files by UTC day, queries that see the unwritten buffer, retention by day."""
from __future__ import annotations

import numpy as np
import pytest

from ioc.history import HistoryStore
from processing.errors import ConfigError

DAY = 86400.0
T0 = 1_772_409_600.0            # 2026-03-02 00:00 UTC


def _add(h: HistoryStore, sensor: int, ts: np.ndarray, value: np.ndarray | None = None, alert=None) -> None:
    n = ts.size
    h.add(np.full(n, sensor), ts, np.arange(n, dtype=float) if value is None else value, np.linspace(0, 1, n),
          np.zeros(n, bool) if alert is None else alert, np.zeros(n, np.uint16))


def test_readings_go_to_one_folder_per_utc_day_and_come_back(tmp_path):
    h = HistoryStore(tmp_path, ["a", "b"])
    ts = T0 + np.arange(0, 2 * DAY, 600.0)
    _add(h, 0, ts)
    _add(h, 1, ts[:10])
    assert h.flush() == ts.size + 10 and h.flush() == 0
    assert sorted(p.name for p in tmp_path.glob("day=*")) == ["day=2026-03-02", "day=2026-03-03"]
    assert not list(tmp_path.rglob("*.tmp"))                   # written under a temporary name, renamed
    r = h.readings(T0, T0 + 3600)
    assert sorted(zip(r.sensor.tolist(), r.ts.tolist())) == sorted(
        [(0, T0 + k * 600) for k in range(7)] + [(1, T0 + k * 600) for k in range(7)])
    assert h.extent() == (T0, ts[-1])


def test_queries_see_the_buffer_and_a_sensor_history_is_downsampled_keeping_the_peak(tmp_path):
    h = HistoryStore(tmp_path, ["a", "b"])
    ts = T0 + np.arange(0, DAY, 60.0)
    value = np.zeros(ts.size)
    value[700] = 99.0                                          # one spike
    _add(h, 0, ts[:720], value[:720])
    h.flush()
    _add(h, 0, ts[720:], value[720:])                          # not written yet
    d = h.sensor_history("a", T0, T0 + DAY, points=48)
    assert len(d) == 48 and d.count.sum() == ts.size
    assert d.high.max() == 99.0 and d.value.max() < 99.0
    full = h.sensor_history("a", T0, T0 + 3600, points=1000)
    assert len(full) == 61 and (d.count == 30).all()
    assert len(h.sensor_history("b", T0, T0 + DAY)) == 0
    assert len(h.sensor_history("nobody", T0, T0 + DAY)) == 0


def test_a_sensor_the_registry_no_longer_has_is_dropped_not_misread(tmp_path):
    old = HistoryStore(tmp_path, ["a", "gone", "b"])
    _add(old, 1, np.array([T0]))
    _add(old, 2, np.array([T0 + 1]))
    old.flush()
    new = HistoryStore(tmp_path, ["b", "a"])                   # reordered, one removed
    r = new.readings(T0 - 10, T0 + 10)
    assert r.sensor.tolist() == [0] and r.ts.tolist() == [T0 + 1]


def test_days_older_than_the_retention_are_deleted(tmp_path):
    h = HistoryStore(tmp_path, ["a"], retention_days=2)
    for k in range(5):
        _add(h, 0, np.array([T0 + k * DAY + 10]))
    h.flush()
    assert len(list(tmp_path.glob("day=*"))) == 5
    gone = h.expire(now=T0 + 4 * DAY + 100)                    # 2026-03-06: keep 03-04, 03-05, 03-06
    assert gone == ["2026-03-02", "2026-03-03"]
    assert sorted(p.name[4:] for p in tmp_path.glob("day=*")) == ["2026-03-04", "2026-03-05", "2026-03-06"]
    assert len(h.readings(T0, T0 + 5 * DAY)) == 3


def test_close_writes_the_buffer_and_bad_settings_are_one_line(tmp_path):
    h = HistoryStore(tmp_path, ["a"], flush_s=3600)
    h.start()
    _add(h, 0, np.array([T0, T0 + 60]))
    h.close()
    assert h.written == 2 and len(HistoryStore(tmp_path, ["a"]).readings(T0, T0 + 60)) == 2
    with pytest.raises(ConfigError, match="retention must be > 0 days"):
        HistoryStore(tmp_path, ["a"], retention_days=0)


def test_many_small_flushes_are_merged_into_one_file_a_day_and_nothing_is_lost(tmp_path):
    h = HistoryStore(tmp_path, ["a", "b"])
    for k in range(70):
        _add(h, k % 2, np.array([T0 + k * 60.0]))
        h.flush()
    assert len(list(tmp_path.glob("day=*/part-*.parquet"))) == 70
    assert h.compact(keep_parts=64) == 1 and h.compact(keep_parts=64) == 0
    assert len(list(tmp_path.glob("day=*/part-*.parquet"))) == 1
    r = h.readings(T0, T0 + DAY)
    assert sorted(r.ts.tolist()) == [T0 + k * 60.0 for k in range(70)]
    assert h.extent() == (T0, T0 + 69 * 60.0)
