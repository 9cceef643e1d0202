"""A labelled benchmark corpus from the city simulator, laid out like NAB.

:func:`write_corpus` writes, under ``out_dir``::

    <domain>/<sensor_id>.csv   timestamp,value   (UTC "YYYY-MM-DD HH:MM:SS")
    labels.csv                 file,sensor_id,kind,start,end
    windows.json               NAB labels/combined_windows.json format
    corpus.json                seed, days, start, registry size, counts per kind

Each window in ``windows.json`` is bounded by timestamps that occur in the
file: the first and last anomalous row, or for a dropout the last row before
and the first row after the gap.  CSV text is built with numpy (digits as byte
arrays), not per row, so a month of a few hundred sensors writes in seconds.

>>> format_timestamps(np.array([1772384400.0])).tolist()
['2026-03-01 17:00:00']
>>> format_values(np.array([345.0, 2.4567891, -0.5, 0.0, 12345.678])).tolist()
['345', '2.45679', '-0.5', '0', '12345.7']
"""
from __future__ import annotations

import csv
import functools
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from processing.registry import Registry
from simulators.anomalies import ANOMALY_KINDS, AnomalyLabel
from simulators.city import CitySimulator

__all__ = ["DEFAULT_START", "CorpusSummary", "format_timestamps", "format_values", "write_corpus"]

#: Monday 2026-03-02 00:00 in Bắc Giang (UTC+7), as epoch seconds.
DEFAULT_START: float = datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=7))).timestamp()

_POW10 = 10 ** np.arange(19, dtype=np.int64)


@dataclass(frozen=True)
class CorpusSummary:
    out_dir: Path
    seed: int
    days: float
    start: float
    sensors: int
    rows: int
    labels: int
    counts: dict[str, int] = field(default_factory=dict)


def write_corpus(out_dir: Path, registry: Registry, *, days: float, seed: int, anomaly_rate: float = 0.5,
                 start: float | None = None) -> CorpusSummary:
    """Simulate ``days`` of every sensor in ``registry`` from ``start``
    (default :data:`DEFAULT_START`) and write the corpus under ``out_dir``.
    Files of the same names are overwritten; other files are left alone."""
    if not (days > 0 and math.isfinite(days)):
        raise ValueError(f"days must be a finite number > 0, got {days!r}")
    t0 = DEFAULT_START if start is None else float(start)
    out_dir = Path(out_dir)
    sim = CitySimulator(registry, seed=seed, anomaly_rate=anomaly_rate)
    batch, labels = sim.generate(t0, t0 + days * 86400.0)

    order = np.argsort(batch.sensor, kind="stable")       # per sensor, still time-sorted
    ts_all, v_all = batch.ts[order], batch.value[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(batch.sensor, minlength=len(registry)))])
    rel_paths = [f"{s.domain}/{s.id}.csv" for s in registry.sensors]
    rows_of: dict[str, np.ndarray] = {}
    for i, spec in enumerate(registry.sensors):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        path = out_dir / rel_paths[i]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(b"timestamp,value\n")
            fh.write(_csv_body(ts_all[lo:hi], v_all[lo:hi]))
        rows_of[spec.id] = np.round(ts_all[lo:hi])         # the times the file shows

    file_of = {s.id: rel_paths[i] for i, s in enumerate(registry.sensors)}
    with open(out_dir / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "sensor_id", "kind", "start", "end"])
        if labels:
            starts = format_timestamps(np.array([lab.start for lab in labels]))
            ends = format_timestamps(np.array([lab.end for lab in labels]))
            for lab, s, e in zip(labels, starts, ends):
                w.writerow([file_of[lab.sensor_id], lab.sensor_id, lab.kind, s, e])

    windows: dict[str, list[list[str]]] = {p: [] for p in rel_paths}
    for lab in labels:
        bound = _window(lab, rows_of[lab.sensor_id])
        if bound is not None:
            a, b = format_timestamps(np.array(bound))
            windows[file_of[lab.sensor_id]].append([a + ".000000", b + ".000000"])
    with open(out_dir / "windows.json", "w", encoding="utf-8") as fh:
        json.dump(windows, fh, indent=4)
        fh.write("\n")

    counts = Counter(lab.kind for lab in labels)
    summary = CorpusSummary(out_dir=out_dir, seed=int(seed), days=float(days), start=t0, sensors=len(registry),
                            rows=len(batch), labels=len(labels),
                            counts={k: counts.get(k, 0) for k in ANOMALY_KINDS})
    meta = {
        "seed": summary.seed, "days": summary.days, "start": str(format_timestamps(np.array([t0]))[0]),
        "start_epoch": t0, "utc_offset_s": sim.utc_offset_s, "anomaly_rate": float(anomaly_rate),
        "sensors": summary.sensors, "rows": summary.rows, "labels": summary.labels, "counts": summary.counts,
    }
    with open(out_dir / "corpus.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    return summary


def _window(lab: AnomalyLabel, rows: np.ndarray) -> tuple[float, float] | None:
    """Row timestamps bounding a label: first/last anomalous row, or for a
    dropout the last row before and the first row after the gap."""
    if rows.size == 0:
        return None
    first = int(np.searchsorted(rows, np.round(lab.start), side="left"))
    last = int(np.searchsorted(rows, np.round(lab.end), side="right")) - 1
    if lab.kind == "dropout":
        first, last = first - 1, last + 1
    first = min(max(first, 0), rows.size - 1)
    last = min(max(last, first), rows.size - 1)
    return float(rows[first]), float(rows[last])


# ------------------------------------------------------------------- formatting

def _csv_body(ts: np.ndarray, values: np.ndarray) -> bytes:
    if ts.size == 0:
        return b""
    n = ts.size
    parts = [_timestamp_bytes(ts), np.full((n, 1), ord(","), np.uint8), _value_bytes(values),
             np.full((n, 1), ord("\n"), np.uint8)]
    flat = np.concatenate(parts, axis=1).ravel()
    return flat[flat != 0].tobytes()


def _timestamp_bytes(ts: np.ndarray) -> np.ndarray:
    """(n, 19) ASCII matrix of "YYYY-MM-DD HH:MM:SS" (UTC, rounded to the second)."""
    sec = np.round(np.asarray(ts, dtype=np.float64)).astype(np.int64)
    day = np.floor_divide(sec, 86400)
    out = np.empty((sec.size, 19), np.uint8)
    if sec.size == 0:
        return out
    days, inverse = np.unique(day, return_inverse=True)   # few distinct days: format each once
    d = days.astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    if year.min() < 0 or year.max() > 9999:
        raise ValueError("timestamps must fall in years 0000-9999")
    month = (d.astype("datetime64[M]") - d.astype("datetime64[Y]")).astype(np.int64) + 1
    mday = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    dates = np.empty((days.size, 11), np.uint8)
    _put_digits(dates, year, 0, 4)
    _put_digits(dates, month, 5, 2)
    _put_digits(dates, mday, 8, 2)
    dates[:, 4] = dates[:, 7] = ord("-")
    dates[:, 10] = ord(" ")
    out[:, :11] = dates[inverse.reshape(-1)]
    out[:, 11:] = _clock_table()[sec - day * 86400]
    return out


def _mod10(x: np.ndarray) -> np.ndarray:
    """``x % 10`` for non-negative ints (numpy's ``%`` is several times slower)."""
    return x - (x // 10) * 10


def _put_digits(out: np.ndarray, value: np.ndarray, pos: int, width: int) -> None:
    for j in range(width):
        out[:, pos + j] = 48 + _mod10(value // _POW10[width - 1 - j])


@functools.lru_cache(maxsize=1)
def _clock_table() -> np.ndarray:
    """(86400, 8) ASCII "HH:MM:SS" for every second of a day (built once)."""
    sod = np.arange(86400, dtype=np.int64)
    t = np.empty((86400, 8), np.uint8)
    _put_digits(t, sod // 3600, 0, 2)
    _put_digits(t, sod // 60 % 60, 3, 2)
    _put_digits(t, sod % 60, 6, 2)
    t[:, 2] = t[:, 5] = ord(":")
    t.setflags(write=False)
    return t


def _value_bytes(values: np.ndarray) -> np.ndarray:
    """(n, W) ASCII matrix with NUL padding, aligned on the decimal point: each
    value with at most 6 significant digits and at most 6 decimals, positional
    notation, trailing zeros stripped."""
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    a = np.abs(v)
    if a.size and a.max() >= 1e15:
        raise ValueError("values must be below 1e15 in magnitude")
    dec0 = np.full(a.shape, 6, np.int64)                      # 6 significant digits, <= 6 decimals
    for k in range(6):
        dec0 -= a >= float(_POW10[k])
    q = np.rint(a * _POW10[dec0].astype(np.float64)).astype(np.int64)
    scale = _POW10[dec0]
    ip = q // scale                                           # integer part
    frac6 = (q - ip * scale) * _POW10[6 - dec0]               # fraction as 6 digits
    right = int(dec0.max()) if v.size else 0
    frac_digits = [_mod10(frac6 // _POW10[6 - j]) for j in range(1, right + 1)]
    dec = np.zeros(q.shape, np.int64)                         # decimals left after stripping zeros
    for j, fd in enumerate(frac_digits, start=1):
        dec = np.where(fd != 0, j, dec)
    right = int(dec.max()) if v.size else 0
    top = int(ip.max()) if v.size else 0
    nint = np.ones(q.shape, np.int64)
    k = 1
    while k < 19 and _POW10[k] <= top:
        nint += ip >= _POW10[k]
        k += 1
    neg = (v < 0) & (q > 0)
    left = int((nint + neg).max()) if v.size else 1           # columns left of the point
    out = np.zeros((v.size, left + 1 + right), np.uint8)
    for j in range(left):                                     # j-th column left of the point
        digit = 48 + _mod10(ip // _POW10[j])
        out[:, left - 1 - j] = np.where(j < nint, digit, np.where(neg & (j == nint), 45, 0))
    if right:
        out[:, left] = np.where(dec > 0, 46, 0)
        for j in range(1, right + 1):
            out[:, left + j] = np.where(j <= dec, 48 + frac_digits[j - 1], 0)
    return out


def format_timestamps(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds -> "YYYY-MM-DD HH:MM:SS" strings (UTC, to the second)."""
    ts = np.asarray(ts, dtype=np.float64).reshape(-1)
    return np.ascontiguousarray(_timestamp_bytes(ts)).view("S19").reshape(-1).astype(str)


def format_values(values: np.ndarray) -> np.ndarray:
    """Values -> strings as written in corpus CSVs (<= 6 significant digits, <= 6 decimals)."""
    m = _value_bytes(np.asarray(values, dtype=np.float64).reshape(-1))
    return np.array([bytes(row[row != 0]).decode("ascii") for row in m], dtype=str)
