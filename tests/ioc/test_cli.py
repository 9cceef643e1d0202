"""The `ioc` subcommands other than detect, run as a user runs them."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def ioc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ioc.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_evaluate_reports_every_anomaly_kind_with_recall_and_false_alarms() -> None:
    done = ioc("evaluate", "--days", "4", "--learn-days", "2", "--seeds", "2,3")
    assert done.returncode == 0, done.stderr
    rows = {m[1]: (int(m[2]), int(m[3]), int(m[4]), int(m[5]))
            for m in re.finditer(r"^\| (\w+) \| (\d+) \| (\d+)% \| (\d+)% \| (\d+)% \|", done.stdout, re.M)}
    assert set(rows) == {"spike", "level_shift", "drift", "stuck", "dropout", "variance_burst", "contextual",
                         "pattern_change"}
    assert all(labels >= 40 for labels, *_ in rows.values())        # every kind injected on both seeds
    assert rows["dropout"][1:] == (100, 100, 100)           # a gap always shows when the data resumes
    assert rows["stuck"][3] >= 80 and rows["variance_burst"][3] >= 60
    # a short run (2 days learnt) measured 55 % / 54 % recall, 81 % / 78 % event precision and
    # 6.4 / 7.3 false alerts per 100 sensor-days on seeds 2 / 3 (deterministic); the 21-day
    # evaluation is in docs/detection.md.  A detector change that loses recall or precision fails here.
    total = re.search(r"^\| \*\*all\*\* \| (\d+) \| (\d+)% \| (\d+)% \| (\d+)% \|", done.stdout, re.M)
    assert total and int(total[1]) == sum(labels for labels, *_ in rows.values())
    assert all(r >= 50 for r in map(int, total.groups()[1:]))
    precision = re.search(r"^\| event precision \| \| (\d+)% \| (\d+)% \| (\d+)% \|", done.stdout, re.M)
    assert precision and all(int(p) >= 75 for p in precision.groups())
    false_rates = re.search(r"^\| false alerts / 100 sensor-days \| \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|",
                            done.stdout, re.M)
    assert false_rates and all(float(f) <= 8.0 for f in false_rates.groups())
    teams = {m[1]: (float(m[2]), float(m[3])) for m in re.finditer(
        r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| \d+ \| \d+% \| (acceptable|manageable|overloaded|flood) \|",
        done.stdout, re.M)}
    assert set(teams) == {"giao_thong", "ha_tang", "moi_truong"}
    assert all(0.3 <= r <= 6.0 for pair in teams.values() for r in pair)    # ISA-18.2: about 6/h per operator
    assert "ISA-18.2" in done.stdout


def test_simulate_writes_a_labelled_corpus_that_detect_can_score(tmp_path: Path) -> None:
    done = ioc("simulate", "--out", str(tmp_path / "corpus"), "--days", "1", "--seed", "4")
    assert done.returncode == 0, done.stderr
    labels = pd.read_csv(tmp_path / "corpus" / "labels.csv")
    assert set(labels.columns) == {"file", "sensor_id", "kind", "start", "end"} and len(labels) > 0
    assert len(list((tmp_path / "corpus").rglob("*.csv"))) == 218 + 1
    scored = ioc("detect", str(tmp_path / "corpus" / "environment"), "--out", str(tmp_path / "scored"))
    assert scored.returncode == 0, scored.stderr
    inputs = sorted((tmp_path / "corpus" / "environment").glob("*.csv"))
    outputs = {p.name: p for p in (tmp_path / "scored").rglob("*.csv")}
    assert inputs and {p.name for p in inputs} <= set(outputs)
    for p in inputs[:5]:
        out = pd.read_csv(outputs[p.name])
        assert len(out) == len(pd.read_csv(p)) and {"anomaly_score", "alert"} <= set(out.columns)


def test_bench_reports_figures_beside_pandas() -> None:
    done = ioc("bench", "--sensors", "200", "--ticks", "50", "--single", "2000")
    assert done.returncode == 0, done.stderr
    rates = [float(m[1].replace(",", "")) for m in re.finditer(r"\s([\d,]+)\s+[\d.]+x pandas", done.stdout)]
    assert len(rates) == 6                                   # figures for the docs, not pass/fail on a stopwatch
    assert "pandas rolling(128) mean+std+z" in done.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = ioc("simulate", "--out", str(tmp_path), "--registry", str(tmp_path / "missing.geojson"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing.geojson" in done.stderr and "Traceback" not in done.stderr
