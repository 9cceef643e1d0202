"""Recorded series files: ``timestamp,value`` CSV (NAB files, the simulator's corpus,
exports from real sensors), read with errors that name the file and the line.

Timestamps are ``YYYY-MM-DD HH:MM:SS`` (naive means UTC, as in the Numenta Anomaly
Benchmark) or ISO 8601 with an offset; they become float64 epoch seconds.  Parsing
is vectorised through pandas' C parser.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from processing.errors import InputError

__all__ = ["Series", "SeriesFileError", "read_series", "read_series_csv"]


class SeriesFileError(InputError):
    """A series file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Series:
    ts: np.ndarray        # float64 epoch seconds UTC, file order
    values: np.ndarray    # float64 (NaN for an empty value where allowed)
    stamps: np.ndarray    # the timestamp text as written (object array)


_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_FIELDS_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_series(path: str | Path, *, allow_missing: bool = False) -> Series:
    """``(ts, values)`` from a CSV with columns ``timestamp`` and ``value``.

    Timestamps are ``YYYY-MM-DD HH:MM:SS`` (naive means UTC) or ISO 8601 with
    an offset; they come back as float64 epoch seconds UTC, in file order.
    Blank lines are skipped.  A missing column, an unparsable timestamp or a
    value that is not a finite number (an empty one is NaN with ``allow_missing``)
    raises one :class:`SeriesFileError` naming the file and line.
    """
    path = Path(path)
    try:
        # header=None: the header row fixes the field count, so a longer row is an
        # error with its line number instead of silently becoming an index column.
        df = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise SeriesFileError(f"{path}: line 1: empty file, expected a header 'timestamp,value'") from None
    except pd.errors.ParserError as exc:
        m = _FIELDS_RE.search(str(exc))
        detail = f"line {m[2]}: expected {m[1]} fields, saw {m[3]}" if m else str(exc).strip()
        raise SeriesFileError(f"{path}: {detail}") from None
    except UnicodeDecodeError as exc:
        raise SeriesFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    cols = [str(c).strip() for c in df.iloc[0]]
    df = df.iloc[1:]
    df.columns = cols
    for name in ("timestamp", "value"):
        if name not in cols:
            raise SeriesFileError(f"{path}: line 1: missing column {name!r} (header has {', '.join(cols)})")
        if cols.count(name) > 1:
            raise SeriesFileError(f"{path}: line 1: column {name!r} appears twice")
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
        raise SeriesFileError(f"{path}: line {line[i]}: unparsable timestamp {raw_ts.iloc[i]!r} "
                         "(expected 'YYYY-MM-DD HH:MM:SS' or ISO 8601)")
    values = pd.to_numeric(raw_v, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if allow_missing:
        bad &= (raw_v != "").to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise SeriesFileError(f"{path}: line {line[i]}: value {raw_v.iloc[i]!r} is not a finite number")
    ts = ((when - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    return Series(ts, values, raw_ts.to_numpy(dtype=object))


def read_series_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, values)`` of a series file with every value a finite number."""
    series = read_series(path)
    return series.ts, series.values