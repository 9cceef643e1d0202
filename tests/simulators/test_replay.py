"""CSV reading with clear errors, and paced replay driven by an injected clock."""
from __future__ import annotations

import numpy as np
import pytest

from simulators.replay import Replayer, read_series_csv


def write(tmp_path, text: str, name: str = "series.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_naive_utc_and_iso_offsets(tmp_path):
    p = write(tmp_path, "timestamp,value\n"
                        "2026-03-01 17:00:00,1.5\n"
                        "\n"
                        "2026-03-02T00:05:00+07:00,2\n"
                        "2026-03-01T17:10:00Z,-3e-1\n")
    ts, v = read_series_csv(p)
    assert ts.dtype == np.float64 and v.dtype == np.float64
    assert ts.tolist() == [1772384400.0, 1772384700.0, 1772385000.0]
    assert v.tolist() == [1.5, 2.0, -0.3]


def test_reads_nab_files_and_extra_columns(tmp_path):
    p = write(tmp_path, "value,timestamp,label\n7,2015-07-10 14:24:00,0\n8,2015-07-10 14:38:00,1\n")
    ts, v = read_series_csv(p)
    assert v.tolist() == [7.0, 8.0] and ts[1] - ts[0] == 14 * 60
    empty = write(tmp_path, "timestamp,value\n", "empty.csv")
    ts, v = read_series_csv(empty)
    assert ts.size == 0 and v.size == 0


@pytest.mark.parametrize("text, line, what", [
    ("time,value\n2026-03-01 17:00:00,1\n", 1, "missing column 'timestamp'"),
    ("timestamp\n2026-03-01 17:00:00\n", 1, "missing column 'value'"),
    ("timestamp,value\n2026-03-01 17:00:00,1\n2026-13-01 17:00:00,2\n", 3, "unparsable timestamp '2026-13-01"),
    ("timestamp,value\n2026-03-01 17:00:00,1\n\n2026-03-01 17:05:00,abc\n", 4, "value 'abc'"),
    ("timestamp,value\n2026-03-01 17:00:00,\n", 2, "value ''"),
    ("timestamp,value\n2026-03-01 17:00:00,1\n2026-03-01 17:05:00,2,9\n", 3, "expected 2 fields, saw 3"),
    ("", 1, "empty file"),
])
def test_errors_name_file_and_line(tmp_path, text, line, what):
    p = write(tmp_path, text, "broken.csv")
    with pytest.raises(ValueError) as exc:
        read_series_csv(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: line {line}: ") and what in msg and "\n" not in msg


def test_replay_pacing_with_injected_clock():
    """speed 10: a reading every 60 s of recorded time is due every 6 s of wall time."""
    ts = 1_000_000.0 + np.arange(20) * 60.0
    r = Replayer({3: (ts, np.arange(20.0))}, 10.0, start_wall=500.0)
    released_at: dict[float, float] = {}
    for step in range(0, 2 * 20 * 6 + 1):                       # clock ticks every 0.5 s
        now = 500.0 + step * 0.5
        b = r.due(now)
        assert np.all(b.sensor == 3)
        for t in b.ts.tolist():
            assert t not in released_at                            # each reading once
            released_at[t] = now
    assert r.done and len(released_at) == 20
    np.testing.assert_array_equal(np.array([released_at[t] for t in ts]), 500.0 + np.arange(20) * 6.0)


def test_replay_merges_sensors_keeps_relative_timing_and_stops():
    a = (np.array([0.0, 100.0, 200.0]), np.array([1.0, 2.0, 3.0]))
    b = (np.array([50.0, 150.0]), np.array([10.0, 20.0]))
    r = Replayer({0: a, 1: b}, 2.0, start_wall=0.0)
    assert len(r) == 5 and not r.done and r.next_due_wall() == 0.0
    assert r.due(-5.0).ts.size == 0                                # before the start: nothing
    first = r.due(30.0)                                            # replay time 60
    assert first.sensor.tolist() == [0, 1] and first.ts.tolist() == [0.0, 50.0]
    assert r.next_due_wall() == 50.0 and r.remaining == 3
    assert len(r.due(30.0)) == 0
    rest = r.due(1e9)
    assert rest.ts.tolist() == [100.0, 150.0, 200.0] and rest.value.tolist() == [2.0, 20.0, 3.0]
    assert r.done and r.next_due_wall() is None and len(r.due(2e9)) == 0


def test_replay_retime_and_validation():
    r = Replayer({0: (np.array([100.0, 160.0]), np.array([1.0, 2.0]))}, 60.0, start_wall=7.0, retime=True)
    assert r.due(8.0).ts.tolist() == [7.0, 8.0]                    # stamped with the wall time they fell due
    with pytest.raises(ValueError, match="speed"):
        Replayer({}, 0.0, start_wall=0.0)
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        Replayer({0: (np.array([1.0, 2.0]), np.array([1.0]))}, 1.0, start_wall=0.0)
    empty = Replayer({}, 1.0, start_wall=0.0)
    assert empty.done and len(empty.due(10.0)) == 0
