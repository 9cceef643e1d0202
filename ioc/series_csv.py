"""Read and write ``timestamp,value`` series files, with errors that name file and line.

Timestamps may be naive (``YYYY-MM-DD HH:MM:SS``, taken as UTC, as in the
Numenta Anomaly Benchmark) or ISO 8601 with an offset; they become float64
epoch seconds.  Reading is vectorised through pandas' C parser.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SeriesFileError", "read_series", "parse_timestamps", "format_timestamps"]


class SeriesFileError(ValueError):
    """A series file that cannot be read; the message names the file and line."""


def parse_timestamps(text: pd.Series, where: str) -> np.ndarray:
    """Parse timestamp strings to epoch seconds; raise naming the first bad line."""
    text = text.astype("string").str.strip()
    parsed = pd.to_datetime(text, format="%Y-%m-%d %H:%M:%S", errors="coerce", utc=True)
    if parsed.isna().any():
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise SeriesFileError(f"{where}:{row + 2}: unparsable timestamp {text.iloc[row]!r}")
    ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return ns.astype(np.float64) / 1e9


def format_timestamps(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds back to ``YYYY-MM-DD HH:MM:SS`` (UTC) strings."""
    stamps = pd.to_datetime(np.round(ts * 1e3).astype(np.int64), unit="ms")
    return stamps.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)


def read_series(path: str | Path) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Return (timestamp text as written, epoch seconds, values) of a series CSV."""
    where = str(path)
    try:
        df = pd.read_csv(path, dtype={"timestamp": "string"}, skipinitialspace=True)
    except FileNotFoundError:
        raise SeriesFileError(f"{where}: no such file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SeriesFileError(f"{where}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise SeriesFileError(f"{where}:1: missing column(s) {', '.join(missing)} "
                              f"(header has {', '.join(map(str, df.columns))})")
    ts = parse_timestamps(df["timestamp"], where)
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & df["value"].notna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise SeriesFileError(f"{where}:{row + 2}: value {df['value'].iloc[row]!r} is not a number")
    return df["timestamp"], ts, values.to_numpy(dtype=np.float64)
