"""The compact JSON format, both ways: ``{"id": "BG-ENV-014", "ts": 1772412000.0, "v": 35.2}``
or an array of such objects.

Reading: ``id`` may be left out when the source is an MQTT topic
``<prefix>/<district>/<domain>/<sensor_id>`` (``<domain>`` one of traffic,
environment, utility); an ``id`` in the message wins over the topic.  ``ts`` is
epoch seconds or an ISO 8601 string *with* a UTC offset (a naive time is
ambiguous in a UTC+7 city and is rejected); without ``ts`` the reading is
stamped with ``received``.  Values are in the sensor kind's canonical unit.  (The
one-reading object is also read inline by :func:`ingest.formats.decode_many`, its
hot path; this module takes every other compact message.)

Writing: one reading a message (``pack=1``) or an array of up to ``pack`` readings
of one sensor.
"""
from __future__ import annotations

from itertools import repeat
from typing import Any, Sequence

from ingest.formats.common import Columns, Message, json_number, sensor_packs, what
from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["decode_into", "encode"]


def decode_into(acc: Columns, obj: Any, mi: int, source: str, payload: Any) -> None:
    """Append the readings of compact message ``mi`` (an object or an array) to ``acc``."""
    acc.unchecked = True
    if type(obj) is dict:
        sid = obj.get("id")
        acc.ids.append(acc.topic_id(source) if sid is None else sid)
        acc.tss.append(obj.get("ts"))
        acc.vals.append(obj.get("v"))
        acc.units.append(None)
        return
    tid = acc.topic_id(source) if any(type(r) is dict and r.get("id") is None for r in obj) else None
    if all(type(r) is dict for r in obj):
        recs = list(range(len(obj)))
        ids = [r.get("id") for r in obj]
        if tid is not None:
            ids = [tid if s is None else s for s in ids]
        acc.ids += ids
        acc.tss += [r.get("ts") for r in obj]
        acc.vals += [r.get("v") for r in obj]
    else:
        recs = []
        for j, r in enumerate(obj):
            if type(r) is not dict:
                acc.reject(mi, source, payload, "bad_format", f"record {j}: not a JSON object, got {what(r)}", rec=j)
                continue
            sid = r.get("id")
            acc.ids.append(tid if sid is None else sid)
            acc.tss.append(r.get("ts"))
            acc.vals.append(r.get("v"))
            recs.append(j)
    acc.units += repeat(None, len(recs))
    if recs:
        acc.where[mi] = ("record", recs, None)


def encode(batch: ReadingBatch, registry: Registry, pack: int, topic_names: Sequence[str]) -> list[Message]:
    """One message a reading in the batch's order (``pack`` 1), else arrays of up to ``pack``
    readings of one sensor, per sensor in time order."""
    ids = registry.ids
    out: list[Message] = []
    if pack == 1:
        for i, t, v in zip(batch.sensor.tolist(), batch.ts.tolist(), batch.value.tolist()):
            sid = ids[i]
            out.append(Message(sid, topic_names[i], f'{{"id":"{sid}","ts":{json_number(t)},"v":{json_number(v)}}}'
                               .encode()))
        return out
    for i, ts, vs in sensor_packs(batch, pack):
        sid = ids[i]
        body = ",".join(f'{{"id":"{sid}","ts":{json_number(t)},"v":{json_number(v)}}}' for t, v in zip(ts, vs))
        out.append(Message(sid, topic_names[i], f"[{body}]".encode()))
    return out
