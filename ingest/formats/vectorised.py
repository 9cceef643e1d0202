"""The one numpy pass of a decode call: every reading the format decoders collected (ids, times,
values, units as sent) is looked up, type-checked, converted, unit-normalised, time-resolved and
range-checked at once; per-reading Python code runs only for readings that fail, each getting its
dead letter with a one-line reason."""
from __future__ import annotations

import math
from bisect import bisect_right
from itertools import repeat
from typing import Any, Sequence

import numpy as np

from ingest.formats.common import (NUMBER_SET, ONLY_STR, Columns, DeadLetter, Decoded, as_bytes, iso_seconds, show,
                                   what)
from ingest.formats.senml import resolve_times
from ingest.units import KIND_NAMES, OFFSET, SCALE, UNIT_INDEX, accepted
from processing.batch import ReadingBatch
from processing.kinds import KINDS
from processing.validate import OK, Limits, faults

__all__ = ["finish"]


def _floats(xs: list) -> tuple[np.ndarray, list[int]]:
    """float64 array of ``xs`` and the rows that are not JSON numbers (NaN there)."""
    if set(map(type, xs)) <= NUMBER_SET:
        try:
            return np.array(xs, dtype=np.float64), []
        except OverflowError:                      # an int beyond float range
            pass
    out = np.full(len(xs), np.nan)
    bad = []
    for r, x in enumerate(xs):
        if type(x) is float or type(x) is int:
            try:
                out[r] = x
            except OverflowError:
                out[r] = math.inf if x > 0 else -math.inf
        else:
            bad.append(r)
    return out, bad


def _times(tss: list, received: float, *, checked: bool = False) -> tuple[np.ndarray, dict[int, str]]:
    """float64 epoch seconds of compact ``ts`` values (None = received) and the reasons for bad ones.

    ``checked``: every time is known to be a number already."""
    if checked or set(map(type, tss)) <= NUMBER_SET:
        try:
            return np.array(tss, dtype=np.float64), {}
        except OverflowError:
            pass
    out = np.empty(len(tss))
    bad: dict[int, str] = {}
    parsed: dict[str, float | str] = {}
    for r, x in enumerate(tss):
        if x is None:
            out[r] = received
        elif type(x) is float or type(x) is int:
            try:
                out[r] = x
            except OverflowError:
                out[r] = math.inf if x > 0 else -math.inf
        elif type(x) is str:
            when = parsed.get(x)
            if when is None:
                when = parsed[x] = iso_seconds(x, naive_utc=False)
            if type(when) is str:
                out[r] = np.nan
                bad[r] = f"'ts' {when}"
            else:
                out[r] = when
        else:
            out[r] = np.nan
            bad[r] = f"'ts' must be epoch seconds or an ISO 8601 string, got {what(x)}"
    return out, bad


def _unit_codes(units: list) -> np.ndarray:
    get = UNIT_INDEX.get
    try:
        return np.fromiter(map(get, units, repeat(-1)), dtype=np.intp, count=len(units))
    except TypeError:                              # an unhashable unit (array/object)
        return np.array([get(u, -1) if type(u) is str or u is None else -1 for u in units], dtype=np.intp)


def _order(entry: tuple[int, int, DeadLetter]) -> tuple[int, int]:
    return entry[0], entry[1]


def finish(acc: Columns, messages: Sequence[tuple[str, Any]], starts: list[int]) -> Decoded:
    """The readings of ``acc`` that pass every check as one batch, with the dead letters of the rest
    (``starts``: the first row of each message), in message and record order."""
    n = len(acc.vals)
    dead = acc.dead
    if n == 0:
        dead.sort(key=_order)
        return Decoded(ReadingBatch.empty(), tuple(d for _, _, d in dead))
    registry, ids, received = acc.registry, acc.ids, acc.received
    problems: dict[int, tuple[str, list[str]]] = {}   # row -> (code of the first problem, reasons)

    def add(r: int, code: str, why: str) -> None:
        if r in problems:
            problems[r][1].append(why)
        else:
            problems[r] = (code, [why])

    runs = acc.runs
    only_runs = bool(runs) and sum(r[1] for r in runs) == n     # every row from a one-sensor pack
    if only_runs:
        lengths = np.array([r[1] for r in runs])
        idx = np.repeat(registry.indices([r[2] for r in runs]), lengths)
    elif not acc.unchecked or set(map(type, ids)) == ONLY_STR:
        idx = registry.indices(ids)
    else:
        idx = np.empty(n, dtype=np.int32)
        for r, sid in enumerate(ids):
            if type(sid) is str:
                idx[r] = registry.index_of(sid)
            else:
                idx[r] = -1
                if sid is None:
                    add(r, "no_id", "no 'id', and the source is not a <prefix>/<district>/<domain>/<sensor_id> topic")
                else:
                    add(r, "wrong_type", f"'id' must be a string, got {what(sid)}")
    known = idx >= 0
    if not known.all():
        for r in np.flatnonzero(~known).tolist():
            if r not in problems:
                add(r, "unknown_sensor", f"unknown sensor {show(ids[r])}")
    values, not_numbers = _floats(acc.vals)
    for r in not_numbers:
        v = acc.vals[r]
        add(r, "wrong_type", "no value 'v'" if v is None else f"value must be a number, got {what(v)}")
    ts, bad_ts = _times(acc.tss, received, checked=not acc.unchecked)
    if acc.shifts:
        resolve_times(ts, acc.shifts, received)
    for r, why in bad_ts.items():
        add(r, "bad_time", why)
    kc = registry.kind_code[np.where(known, idx, 0)] if len(registry) else np.zeros(n, np.int16)
    units = acc.units
    if only_runs:
        ucode = np.repeat(np.array([UNIT_INDEX.get(r[3], -1) for r in runs], dtype=np.intp), lengths)
    elif units.count(None) == n:
        ucode = None
    else:
        ucode = _unit_codes(units)
    if ucode is None:
        scale = None
        canon = values
    else:
        scale = SCALE[kc, ucode]
        scale[ucode < 0] = np.nan
        canon = values * scale + OFFSET[kc, np.maximum(ucode, 0)]
    finite_v = np.isfinite(values)
    finite_t = np.isfinite(ts)
    limits = Limits.of(registry)
    ok = faults(idx, ts, canon, limits) == OK          # the one rule (processing.validate); reasons below
    if not ok.all():
        for r in np.flatnonzero(~ok).tolist():
            if r in problems:
                continue
            sid = ids[r]
            kind = KIND_NAMES[kc[r]]
            unit = KINDS[kind].unit
            if not finite_v[r]:
                add(r, "non_finite", f"value {show(acc.vals[r])} is not a finite number")
            elif not finite_t[r]:
                add(r, "non_finite", f"time {show(acc.tss[r])} is not a finite number")
            elif scale is not None and np.isnan(scale[r]):
                add(r, "bad_unit", f"unit {show(units[r])} does not fit {kind} sensor {sid} "
                                   f"(accepted: {accepted(kind)})")
            else:
                sent = "" if ucode is None or ucode[r] == 0 or units[r] == unit else \
                    f" (sent {values[r]:g} {units[r]})"
                add(r, "out_of_range", f"value {canon[r]:g} {unit}{sent} is outside the possible range "
                                       f"{limits.lo[idx[r]]:g}..{limits.hi[idx[r]]:g} {unit} of {kind} sensor {sid}")
    if problems:
        for r, (code, whys) in problems.items():
            mi = bisect_right(starts, r) - 1
            source, payload = messages[mi]
            label, rec = "", -1
            if mi in acc.where:
                prefix, recs, attrs = acc.where[mi]
                rec = recs[r - starts[mi]]
                if attrs is None:
                    label = f"{prefix} {rec}: "
                else:
                    eid, attr = attrs[r - starts[mi]]
                    label = f"{prefix} {rec} ({eid}) attribute {attr!r}: "
            dead.append((mi, rec, DeadLetter(source, label + "; ".join(whys), as_bytes(payload), received, code)))
        keep = np.ones(n, dtype=bool)
        keep[list(problems)] = False
        batch = ReadingBatch(idx[keep], ts[keep], canon[keep])
    else:
        batch = ReadingBatch(idx, ts, canon if canon.dtype == np.float64 else canon.astype(np.float64))
    dead.sort(key=_order)
    return Decoded(batch, tuple(d for _, _, d in dead))
