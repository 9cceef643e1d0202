"""The SenML format (RFC 8428), both ways.

Reading: JSON packs.  Base fields ``bn bt bu bv bver`` apply to the
record that carries them and every later one; the resolved name ``bn + n``
must be a registry sensor id; the resolved time ``bt + t`` is relative to
``received`` when below 2**28 (so no time at all means "now"); the value is
``v + bv``.  A record with only base fields is a header and yields nothing.
``vs``/``vb``/``vd`` and sum-only records are not numeric readings: that
record becomes a dead letter, the rest of the pack is kept.  A record without
``u`` or ``bu`` is taken to be in the canonical unit (units: :mod:`ingest.units`).
A field ending in ``_`` (RFC 8428 "must understand") rejects its record; ``bver``
above 10 and a base field of the wrong type reject the rest of the pack (later
records would resolve wrongly).  A single SenML record object is accepted as a
pack of one.  A regular pack (base fields in its first record, the same
``n``/``v``/``t``/``u`` fields in every record) is taken apart column-wise by C
iterators (``itemgetter``, ``zip``, ``map``), never record by record.

Writing: packs of up to ``pack`` readings of one sensor: the first record carries
``bn`` (sensor id), ``bt`` (time of the first reading) and ``bu`` (the sensor kind's
canonical unit), later records only ``t`` (relative) and ``v``.
"""
from __future__ import annotations

import json
from itertools import repeat
from operator import add, itemgetter
from typing import Any, Sequence

import numpy as np

from ingest.formats.common import (NUMBER_SET, ONLY_STR, Columns, Message, is_number, json_number, sensor_packs,
                                   show, what)
from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["FIELDS", "SENML_RELATIVE_BELOW", "SENML_VERSION", "decode_into", "encode", "resolve_times"]

#: RFC 8428: a resolved time below this is relative to the time of reception.
SENML_RELATIVE_BELOW = 2.0 ** 28
#: Highest SenML version (``bver``) understood.
SENML_VERSION = 10

#: Fields only SenML has (with one and no ``id``, a message is sniffed as SenML).
FIELDS = frozenset(("bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "t", "s", "ut", "vs", "vb", "vd"))
_SENML_KNOWN = FIELDS | {"v"}
_SENML_PLAIN = frozenset(("n", "t", "u", "v"))
_SENML_BASE = frozenset(("bn", "bt", "bu", "bv", "bs", "bver"))
_SENML_FIRST = _SENML_PLAIN | _SENML_BASE
_SENML_COLUMNS = ("n", "v", "t", "u")


def decode_into(acc: Columns, pack: list, mi: int, source: str, payload: Any) -> None:
    """Append the readings of SenML pack ``mi`` to ``acc`` (its problems as dead letters)."""
    if not _senml_fast(acc, pack, mi):
        _senml_records(acc, pack, mi, source, payload)


def _senml_fast(acc: Columns, pack: list, mi: int) -> bool:
    """The common pack, column by column in C (``itemgetter``, ``zip``, ``map``): base fields in the
    first record only, and every record an object with the same fields among ``n``/``v``/``t``/``u``.
    Anything else returns False having changed nothing, and the record-by-record decoder takes over
    (it also names every problem).  Times get their base time (and ``received`` when relative) in the
    vectorised pass."""
    first, last = pack[0], pack[-1]
    if type(first) is not dict or type(last) is not dict:
        return False
    extra = 0                                      # base fields in the first record
    bn, bt, bu, start = "", 0.0, None, 0
    if not first.keys() <= _SENML_PLAIN:
        if not first.keys() <= _SENML_FIRST or _senml_base_error(first) is not None or first.get("bv"):
            return False
        bn, bt, bu = first.get("bn", ""), first.get("bt", 0.0), first.get("bu")
        if first.keys() <= _SENML_BASE:
            start = 1                              # a header record
        else:
            extra = len(first.keys() & _SENML_BASE)
    records = pack[start:] if start else pack
    n = len(records)
    cols = tuple(k for k in _SENML_COLUMNS if k in last)
    if not n or "v" not in cols:
        return False
    try:                                           # KeyError: a field missing; TypeError: not an object
        got = list(map(itemgetter(*cols), records))
    except (KeyError, TypeError):
        return False
    if sum(map(len, records)) != len(cols) * n + extra:
        return False                               # some record has another field
    columns = dict(zip(cols, zip(*got))) if len(cols) > 1 else {"v": got}
    values = columns["v"]
    if None in values:
        return False
    names = columns.get("n")
    try:
        if names is not None:
            names = list(map(add, repeat(bn, n), names)) if bn else names
        elif bn:
            names = [bn] * n
        else:
            return False
    except TypeError:                              # a name that is not a string
        return False
    if not bn and set(map(type, names)) != ONLY_STR:
        return False
    times = columns.get("t")
    if times is None:
        when = bt + acc.received if bt < SENML_RELATIVE_BELOW else bt
        times = [float(when)] * n
    elif set(map(type, times)) <= NUMBER_SET:
        row = len(acc.tss)
        acc.shifts.append((row, row + n, bt))
    else:
        return False
    units = columns.get("u")
    if units is None:
        units = [bu] * n
        if "n" not in columns:
            acc.runs.append((len(acc.ids), n, bn, bu))   # one sensor, one unit: looked up once a pack
    elif bu is not None and None in units:
        units = [bu if u is None else u for u in units]
    acc.ids += names
    acc.tss += times
    acc.vals += values
    acc.units += units
    acc.where[mi] = ("senml record", range(start, start + n), None)
    return True


def _senml_records(acc: Columns, pack: list, mi: int, source: str, payload: Any) -> None:
    """Any pack, record by record (RFC 8428 section 4.6 resolution), naming each record's problem."""
    ids, tss, vals, units = acc.ids, acc.tss, acc.vals, acc.units
    received = acc.received
    recs: list[int] = []
    bn, bt, bu, bv = "", 0.0, None, 0.0

    def bad(j: int, code: str, why: str) -> None:
        acc.reject(mi, source, payload, code, f"senml record {j}: {why}", rec=j)

    for j, r in enumerate(pack):
        if type(r) is not dict:
            bad(j, "bad_format", f"not a JSON object, got {what(r)}")
            continue
        keys = r.keys()
        plain = keys <= _SENML_PLAIN
        if not plain:
            fatal = _senml_base_error(r)
            if fatal is not None:
                rest = f"record {j}" if j == len(pack) - 1 else f"records {j}..{len(pack) - 1}"
                bad(j, fatal[0], f"{fatal[1]}; {rest} dropped")
                break
            bn = r.get("bn", bn)
            bt = r.get("bt", bt)
            bu = r.get("bu", bu)
            bv = r.get("bv", bv)
            if keys <= _SENML_BASE:
                continue                                   # a header: base fields only
            if not keys <= _SENML_KNOWN:
                must = sorted(k for k in keys if type(k) is str and k.endswith("_"))
                if must:
                    bad(j, "unsupported", f"unsupported must-understand field {must[0]!r}")
                    continue
        n = r.get("n")
        if n is None:
            name = bn
        elif type(n) is str:
            name = bn + n
        else:
            bad(j, "wrong_type", f"name 'n' must be a string, got {what(n)}")
            continue
        if not name:
            bad(j, "no_name", "no base name and no name")
            continue
        if "v" not in r:
            field = next((k for k in ("vs", "vb", "vd", "s") if k in r), None)
            if field == "s":
                bad(j, "not_numeric", f"{show(name)} carries only a sum ('s'), not a reading")
            elif field is not None:
                bad(j, "not_numeric", f"{show(name)} carries a {_FIELD_KIND[field]} value ({field!r}), not a number")
            else:
                bad(j, "wrong_type", f"{show(name)} has no value 'v'")
            continue
        t = r.get("t")
        v = r["v"]
        try:
            if t is None:
                when = bt
            elif type(t) is float or type(t) is int:
                when = bt + t
            else:
                bad(j, "bad_time", f"time 't' must be a number, got {what(t)}")
                continue
            if when < SENML_RELATIVE_BELOW:
                when += received
            if bv and (type(v) is float or type(v) is int):
                v = v + bv
        except OverflowError:                              # a JSON integer beyond float range
            bad(j, "non_finite", "time or value is not a finite number")
            continue
        ids.append(name)
        tss.append(when)
        vals.append(v)
        units.append(r.get("u", bu))
        recs.append(j)
    if recs:
        acc.where[mi] = ("senml record", recs, None)


_FIELD_KIND = {"vs": "string", "vb": "boolean", "vd": "data"}


def _senml_base_error(r: dict) -> tuple[str, str] | None:
    """A base field that would make later records resolve wrongly: ``(code, reason)``."""
    if "bver" in r:
        ver = r["bver"]
        if type(ver) is not int or not 1 <= ver <= SENML_VERSION:
            return "unsupported", f"SenML version 'bver' {show(ver)} is not supported (up to {SENML_VERSION})"
    for key, label in (("bn", "base name"), ("bu", "base unit")):
        if key in r and type(r[key]) is not str:
            return "wrong_type", f"{label} {key!r} must be a string, got {what(r[key])}"
    for key, label in (("bt", "base time"), ("bv", "base value")):
        if key in r and not is_number(r[key]):
            return "wrong_type", f"{label} {key!r} must be a number, got {what(r[key])}"
    return None


def resolve_times(ts: np.ndarray, shifts: list[tuple[int, int, float]], received: float) -> None:
    """Add each SenML pack's base time to its rows' times, then ``received`` to those still below 2**28."""
    first, end, base = (np.array(c) for c in zip(*shifts))
    lengths = end - first
    rows = np.arange(int(lengths.sum())) + np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
    resolved = ts[rows] + np.repeat(base.astype(np.float64), lengths)
    resolved[resolved < SENML_RELATIVE_BELOW] += received
    ts[rows] = resolved


def encode(batch: ReadingBatch, registry: Registry, pack: int, topic_names: Sequence[str]) -> list[Message]:
    """Packs of up to ``pack`` readings of one sensor, per sensor in time order."""
    ids = registry.ids
    out: list[Message] = []
    for i, ts, vs in sensor_packs(batch, pack):
        sid = ids[i]
        t0 = ts[0]
        unit = json.dumps(registry.sensors[i].unit, ensure_ascii=False)
        head = f'{{"bn":"{sid}","bt":{json_number(t0)},"bu":{unit},"t":0.0,"v":{json_number(vs[0])}}}'
        body = ",".join([head] + [f'{{"t":{json_number(t - t0)},"v":{json_number(v)}}}'
                                  for t, v in zip(ts[1:], vs[1:])])
        out.append(Message(sid, topic_names[i], f"[{body}]".encode()))
    return out
