"""Encode readings for the wire: compact JSON, SenML packs, NGSI-LD entities; MQTT topics.

The inverse of :mod:`ingest.payloads` (whose decoder reads everything written
here back to the same readings), used by the publishers: ``ioc simulate --to``,
``ioc replay``, ``ioc bridge`` and the benchmarks.

* **compact** -- ``{"id":"BG-ENV-014","ts":1772412000.0,"v":35.2}``, one reading a
  message (``pack=1``) or an array of up to ``pack`` readings of one sensor;
* **senml** -- RFC 8428 packs of up to ``pack`` readings of one sensor: the first
  record carries ``bn`` (sensor id), ``bt`` (time of the first reading) and ``bu``
  (the sensor kind's canonical unit), later records only ``t`` (relative) and ``v``;
* **ngsi-ld** -- one FIWARE Smart Data Models entity per reading, normalized
  (``{"type": "Property", "value": …, "unitCode": …, "observedAt": …}``) or
  keyValues, with the attribute of the sensor's kind from
  :data:`ingest.payloads.NGSI_ATTRIBUTES`, its value in the attribute's unit.

Every message is ``(sensor_id, topic, payload)``: the sensor id is the Kafka key
(one sensor stays in one partition), the topic is the MQTT topic
``<prefix>/<district>/<domain>/<sensor_id>`` (:func:`topic_for`).

>>> from processing.registry import Registry
>>> from processing.batch import ReadingBatch
>>> reg = Registry.synthetic(1)
>>> b = ReadingBatch.from_arrays([0, 0], [1772412000.0, 1772412060.0], [35.2, 36.0])
>>> [m.payload for m in encode(b, reg, "compact")]
[b'{"id":"S000000","ts":1772412000.0,"v":35.2}', b'{"id":"S000000","ts":1772412060.0,"v":36.0}']
>>> encode(b, reg, "senml", pack=100)[0].payload
b'[{"bn":"S000000","bt":1772412000.0,"bu":"\\xc2\\xb5g/m\\xc2\\xb3","t":0.0,"v":35.2},{"t":60.0,"v":36.0}]'
>>> encode(b, reg, "compact")[0].topic
'city/-/environment/S000000'
"""
from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from processing.alerts import Alert
from processing.batch import ReadingBatch
from processing.kinds import KINDS
from processing.reasons import describe
from processing.registry import Registry, SensorSpec

__all__ = ["ENCODINGS", "Message", "NGSI_CONTEXT", "encode", "encode_alert", "slug", "topic_for", "topics"]

#: Payload formats the publishers can write (``ngsi-ld`` normalized; ``ngsi-ld-kv`` keyValues).
ENCODINGS: tuple[str, ...] = ("compact", "senml", "ngsi-ld", "ngsi-ld-kv")

#: The JSON-LD context of the Smart Data Models entities written here.
NGSI_CONTEXT: tuple[str, ...] = (
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
)

# canonical unit of a kind -> UN/CEFACT code (NGSI-LD ``unitCode``); kinds without one send none
_UNIT_CODE = {"µg/m³": "GQ", "km/h": "KMH", "%": "P1", "dB(A)": "2N", "m": "MTR", "°C": "CEL", "bar": "BAR",
              "m³/h": "MQH", "MW": "MAW", "A": "AMP"}


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish: Kafka key, MQTT topic, payload bytes."""

    key: str
    topic: str
    payload: bytes


def slug(text: str) -> str:
    """An MQTT-topic-safe, ASCII form of a ward name.

    >>> slug("KCN Song Khê – Nội Hoàng"), slug("Đình Trám")
    ('kcn-song-khe-noi-hoang', 'dinh-tram')
    """
    text = text.replace("Đ", "D").replace("đ", "d")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    out = "".join(c if c.isalnum() else "-" for c in ascii_text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "-"


def topic_for(spec: SensorSpec, prefix: str = "city") -> str:
    """``<prefix>/<district>/<domain>/<sensor_id>`` (DESIGN.md's wire convention)."""
    return f"{prefix}/{slug(spec.ward)}/{spec.domain}/{spec.id}"


def topics(registry: Registry, prefix: str = "city") -> list[str]:
    """:func:`topic_for` of every sensor, by sensor index."""
    return [topic_for(s, prefix) for s in registry.sensors]


def _num(x: float) -> str:
    """A float as JSON text (``NaN``/``Infinity`` as Python's json writes them)."""
    if math.isfinite(x):
        return repr(x)
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _runs(batch: ReadingBatch, pack: int) -> Iterable[tuple[int, np.ndarray]]:
    """(sensor, row indices) of consecutive packs of up to ``pack`` readings of one sensor, in time order."""
    order = np.lexsort((batch.ts, batch.sensor))
    s = batch.sensor[order]
    bounds = np.flatnonzero(np.diff(s)) + 1
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        for k in range(0, rows.size, pack):
            yield int(batch.sensor[rows[0]]), rows[k:k + pack]


def encode(batch: ReadingBatch, registry: Registry, fmt: str = "compact", *, pack: int = 1,
           prefix: str = "city", topic_names: Sequence[str] | None = None) -> list[Message]:
    """Messages for every reading of ``batch``.

    ``pack`` > 1 groups up to that many readings of one sensor into one message
    (compact arrays, SenML packs; NGSI-LD is always one entity per message).
    With ``pack`` = 1 messages keep the batch's order; packs are per sensor, in time order.
    ``topic_names`` (from :func:`topics`) saves recomputing topics per call.
    """
    if fmt not in ENCODINGS:
        raise ValueError(f"payload format must be one of {', '.join(ENCODINGS)}, got {fmt!r}")
    if pack < 1:
        raise ValueError(f"pack must be >= 1, got {pack}")
    if topic_names is None:
        topic_names = topics(registry, prefix)
    ids = registry.ids
    out: list[Message] = []
    if len(batch) == 0:
        return out
    if fmt.startswith("ngsi-ld"):
        keyvalues = fmt == "ngsi-ld-kv"
        for i, t, v in zip(batch.sensor.tolist(), batch.ts.tolist(), batch.value.tolist()):
            spec = registry.sensors[i]
            entity = _ngsi_entity(spec, t, v, keyvalues)
            out.append(Message(ids[i], topic_names[i], json.dumps(entity, ensure_ascii=False,
                                                                  separators=(",", ":")).encode()))
        return out
    if pack == 1 and fmt == "compact":
        for i, t, v in zip(batch.sensor.tolist(), batch.ts.tolist(), batch.value.tolist()):
            sid = ids[i]
            out.append(Message(sid, topic_names[i], f'{{"id":"{sid}","ts":{_num(t)},"v":{_num(v)}}}'.encode()))
        return out
    ts_all, v_all = batch.ts, batch.value
    for i, rows in _runs(batch, pack):
        sid = ids[i]
        ts, vs = ts_all[rows].tolist(), v_all[rows].tolist()
        if fmt == "compact":
            body = ",".join(f'{{"id":"{sid}","ts":{_num(t)},"v":{_num(v)}}}' for t, v in zip(ts, vs))
        else:
            t0 = ts[0]
            unit = json.dumps(registry.sensors[i].unit, ensure_ascii=False)
            head = f'{{"bn":"{sid}","bt":{_num(t0)},"bu":{unit},"t":0.0,"v":{_num(vs[0])}}}'
            body = ",".join([head] + [f'{{"t":{_num(t - t0)},"v":{_num(v)}}}' for t, v in zip(ts[1:], vs[1:])])
        out.append(Message(sid, topic_names[i], f"[{body}]".encode()))
    return out


def _ngsi_entity(spec: SensorSpec, ts: float, value: float, keyvalues: bool) -> dict[str, Any]:
    from ingest.payloads import NGSI_ATTRIBUTES, UNITS

    attr = NGSI_ATTRIBUTES[spec.kind]
    name = attr.names[0]
    entity: dict[str, Any] = {"id": f"urn:ngsi-ld:{attr.entity_type}:{spec.id}", "type": attr.entity_type}
    if keyvalues:
        scale, offset = UNITS[spec.kind][attr.unit]        # canonical = value * scale + offset
        entity[name] = (value - offset) / scale if math.isfinite(value) else value
        entity["dateObserved"] = _iso(ts)
    else:
        prop: dict[str, Any] = {"type": "Property", "value": value, "observedAt": _iso(ts)}
        code = _UNIT_CODE.get(KINDS[spec.kind].unit)
        if code is not None:
            prop["unitCode"] = code
        entity[name] = prop
    entity["@context"] = list(NGSI_CONTEXT)
    return entity


def encode_alert(alert: Alert) -> bytes:
    """An alert as a JSON object (times in ISO 8601 UTC, reasons as names) for the alert topics."""
    def when(t: float | None) -> str | None:
        return None if t is None or not math.isfinite(t) else _iso(t)

    obj = {
        "id": alert.id, "sensor": alert.sensor_id, "kind": alert.kind, "severity": alert.severity,
        "state": alert.state, "opened_at": when(alert.opened_at), "last_at": when(alert.last_at),
        "cleared_at": when(alert.cleared_at), "peak_score": round(float(alert.peak_score), 4),
        "last_value": float(alert.last_value) if math.isfinite(alert.last_value) else None,
        "reasons": describe(int(alert.reasons)), "readings": alert.readings, "occurrences": alert.occurrences,
        "acknowledged_by": alert.acknowledged_by, "resolved_by": alert.resolved_by, "rev": alert.rev,
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
