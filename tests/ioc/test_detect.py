"""`ioc detect` end to end, as a user runs it: real files, the real command, its output files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def ioc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ioc.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def write_series(path: Path, n: int = 600, seed: int = 0, spike_at: int | None = 450, crlf: bool = False) -> None:
    rng = np.random.default_rng(seed)
    values = 20 + rng.normal(0, 1, n)
    if spike_at is not None:
        values[spike_at] += 25
    stamps = pd.date_range("2026-03-02", periods=n, freq="5min").strftime("%Y-%m-%d %H:%M:%S")
    text = "timestamp,value\n" + "".join(f"{s},{v:.4f}\n" for s, v in zip(stamps, values))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n").encode() if crlf else text.encode())


def test_scores_a_file_row_for_row_and_flags_the_spike(tmp_path: Path) -> None:
    src = tmp_path / "in" / "pm25.csv"
    write_series(src)
    done = ioc("detect", str(src), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "scored 600 rows in 1 file(s)" in done.stdout
    out = pd.read_csv(tmp_path / "out" / "pm25.csv")
    inp = pd.read_csv(src)
    assert list(out.columns) == ["timestamp", "value", "anomaly_score", "alert", "reason"]
    assert out["timestamp"].tolist() == inp["timestamp"].tolist()
    np.testing.assert_allclose(out["value"], inp["value"])
    assert out["anomaly_score"].between(0, 1).all()
    assert out["anomaly_score"].idxmax() == 450 and out["anomaly_score"][450] >= 0.5
    assert out["alert"][450] == 1 and "deviation" in out["reason"][450]


def test_no_look_ahead_a_prefix_scores_the_same(tmp_path: Path) -> None:
    full, prefix = tmp_path / "full" / "s.csv", tmp_path / "prefix" / "s.csv"
    write_series(full, n=800)
    lines = full.read_text().splitlines(keepends=True)
    prefix.parent.mkdir()
    prefix.write_text("".join(lines[:501]))  # header + 500 rows
    for d in ("full", "prefix"):
        assert ioc("detect", str(tmp_path / d), "--out", str(tmp_path / f"out_{d}")).returncode == 0
    a = pd.read_csv(tmp_path / "out_full" / "s.csv").iloc[:500]
    b = pd.read_csv(tmp_path / "out_prefix" / "s.csv")
    pd.testing.assert_frame_equal(a, b)


def test_directory_keeps_relative_paths_and_files_do_not_interfere(tmp_path: Path) -> None:
    write_series(tmp_path / "in" / "a" / "one.csv", seed=1)
    write_series(tmp_path / "in" / "b" / "two.csv", seed=2, crlf=True)
    write_series(tmp_path / "alone" / "two.csv", seed=2)
    assert ioc("detect", str(tmp_path / "in"), "--out", str(tmp_path / "out")).returncode == 0
    assert ioc("detect", str(tmp_path / "alone"), "--out", str(tmp_path / "out_alone")).returncode == 0
    assert (tmp_path / "out" / "a" / "one.csv").is_file()
    together = pd.read_csv(tmp_path / "out" / "b" / "two.csv")
    alone = pd.read_csv(tmp_path / "out_alone" / "two.csv")
    np.testing.assert_allclose(together["anomaly_score"], alone["anomaly_score"])


@pytest.mark.parametrize("body, expect", [
    ("time,value\n2026-03-02 00:00:00,1\n", ":1: missing column 'timestamp'"),
    ("timestamp,value\n2026-03-02 00:00:00,1\n2026-03-02 00:05:00,2\nyesterday,3\n",
     "line 4: unparsable timestamp 'yesterday'"),
    ("timestamp,value\n2026-03-02 00:00:00,abc\n", "line 2: value 'abc' is not a finite number"),
])
def test_bad_file_is_named_with_its_line_and_the_others_are_scored(tmp_path: Path, body: str, expect: str) -> None:
    write_series(tmp_path / "in" / "good.csv")
    bad = tmp_path / "in" / "bad.csv"
    bad.write_text(body)
    done = ioc("detect", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and expect.replace(":1:", "") in errors[0]
    assert "Traceback" not in done.stderr
    assert (tmp_path / "out" / "good.csv").is_file() and not (tmp_path / "out" / "bad.csv").exists()


def test_empty_value_is_scored_as_invalid_not_an_error(tmp_path: Path) -> None:
    src = tmp_path / "gappy.csv"
    write_series(src, n=300, spike_at=None)
    lines = src.read_text().splitlines()
    lines[101] = lines[101].split(",")[0] + ","
    src.write_text("\n".join(lines) + "\n")
    done = ioc("detect", str(src), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "out" / "gappy.csv", keep_default_na=False)
    assert out["reason"][100] == "invalid" and out["anomaly_score"][100] == 0


def test_missing_path_and_bad_config_are_one_line_errors(tmp_path: Path) -> None:
    done = ioc("detect", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "nope.csv: no such file or directory" in done.stderr
    cfg = tmp_path / "core.toml"
    cfg.write_text("[core]\nwarmup = -1\n")
    done = ioc("detect", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(cfg))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {cfg}: core setting 'warmup' must be >= 0, got -1"
