"""The labelled corpus on disk: files, labels and NAB windows consistent with the rows."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from simulators.anomalies import ANOMALY_KINDS
from simulators.city import CitySimulator
from simulators.corpus import DEFAULT_START, format_timestamps, format_values, write_corpus
from simulators.replay import read_series_csv

DAYS = 3.0


@pytest.fixture
def small_registry(registry_of):
    return registry_of([("BG-TR-01", "vehicle_count", 300.0), ("BG-AQ-01", "pm25", 600.0),
                        ("BG-WL-01", "water_level", 900.0), ("BG-SL-01", "streetlight_current", 300.0)])


@pytest.fixture
def corpus(tmp_path, small_registry):
    summary = write_corpus(tmp_path / "corpus", small_registry, days=DAYS, seed=21, anomaly_rate=4.0)
    return tmp_path / "corpus", summary


def test_files_and_summary(corpus, small_registry):
    out, summary = corpus
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv") if p.name != "labels.csv")
    assert files == sorted(f"{s.domain}/{s.id}.csv" for s in small_registry.sensors)
    rows = 0
    for rel in files:
        lines = (out / rel).read_text().splitlines()
        assert lines[0] == "timestamp,value"
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,-?\d+(\.\d{1,6})?", ln) for ln in lines[1:])
        rows += len(lines) - 1
    assert summary.rows == rows and summary.sensors == len(small_registry)
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["seed"] == 21 and meta["days"] == DAYS and meta["sensors"] == 4
    assert meta["start"] == "2026-03-01 17:00:00" and meta["start_epoch"] == DEFAULT_START
    assert set(meta["counts"]) == set(ANOMALY_KINDS) and sum(meta["counts"].values()) == summary.labels > 0
    first = (out / "traffic/BG-TR-01.csv").read_text().splitlines()[1]
    assert first.startswith("2026-03-01 17:00:00,")                 # Monday 00:00 in Bắc Giang


def test_rows_match_the_simulator(corpus, small_registry):
    out, _ = corpus
    batch, _ = CitySimulator(small_registry, seed=21, anomaly_rate=4.0).generate(
        DEFAULT_START, DEFAULT_START + DAYS * 86400)
    for i, spec in enumerate(small_registry.sensors):
        ts, v = read_series_csv(out / f"{spec.domain}/{spec.id}.csv")
        m = batch.sensor == i
        np.testing.assert_array_equal(ts, batch.ts[m])
        np.testing.assert_allclose(v, batch.value[m], rtol=5e-6, atol=5e-7)


def test_labels_and_windows_are_consistent_with_rows(corpus):
    out, summary = corpus
    with open(out / "labels.csv", newline="") as fh:
        labels = list(csv.DictReader(fh))
    assert len(labels) == summary.labels
    windows = json.loads((out / "windows.json").read_text())
    assert sum(len(w) for w in windows.values()) == len(labels)
    rows = {rel: format_timestamps(read_series_csv(out / rel)[0]).tolist() for rel in windows}
    per_file: dict[str, list] = {}
    for lab in labels:
        assert set(lab) == {"file", "sensor_id", "kind", "start", "end"}
        assert lab["file"].endswith(f"/{lab['sensor_id']}.csv") and lab["kind"] in ANOMALY_KINDS
        per_file.setdefault(lab["file"], []).append(lab)
    for rel, wins in windows.items():
        times = rows[rel]
        labs = per_file.get(rel, [])
        assert len(wins) == len(labs)
        prev_end = ""
        for (a, b), lab in zip(wins, labs):
            assert a.endswith(".000000") and b.endswith(".000000")
            a, b = a[:-7], b[:-7]
            assert a in times and b in times and prev_end < a <= b        # ordered, non-overlapping
            prev_end = b
            ia, ib = times.index(a), times.index(b)
            if lab["kind"] == "dropout":                                  # rows around the gap
                assert ib == ia + 1 and a < lab["start"] <= lab["end"] < b
                assert lab["start"] not in times and lab["end"] not in times
            else:
                assert (a, b) == (lab["start"], lab["end"])


def test_reproducible(tmp_path, small_registry):
    write_corpus(tmp_path / "a", small_registry, days=1.0, seed=4, start=DEFAULT_START + 3600)
    write_corpus(tmp_path / "b", small_registry, days=1.0, seed=4, start=DEFAULT_START + 3600)
    for p in sorted((tmp_path / "a").rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes(), p


def test_formatting():
    assert format_timestamps(np.array([0.0, 1772384400.4, 951782400.0])).tolist() == [
        "1970-01-01 00:00:00", "2026-03-01 17:00:00", "2000-02-29 00:00:00"]
    assert format_values(np.array([345.0, 2.4567891, -0.5, 0.0, 12345.678, 0.1234567, 1e-7, 9.9999999,
                                   -0.0000001, 2.5])).tolist() == [
        "345", "2.45679", "-0.5", "0", "12345.7", "0.123457", "0", "10", "0", "2.5"]
    with pytest.raises(ValueError, match="days"):
        write_corpus(None, None, days=0, seed=1)  # type: ignore[arg-type]
