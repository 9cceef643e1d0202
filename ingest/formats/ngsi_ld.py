"""The NGSI-LD format, both ways: FIWARE Smart Data Models entities, normalized
(``{"type": "Property", "value": …, "unitCode": …, "observedAt": …}``) or keyValues
(bare values), and the attribute that carries each kind's reading (``NGSI_ATTRIBUTES``).

Reading: one entity or an array.  ``id`` is ``urn:ngsi-ld:<Type>:<local id>`` and the
local id is the registry sensor id; the sensor's kind picks the attribute read
(``NGSI_ATTRIBUTES``; the entity ``type`` is not checked).  A normalized attribute's
UN/CEFACT ``unitCode`` is honoured (``GQ`` µg/m³, ``KMH``, ``MTS``, ``P1`` %, ``C62``
ratio, ``MTR``, ``CMT``, ``MMT``, ``CEL``, ``KEL``, ``2N`` dB, ``BAR``, ``PAL``, ``KPA``,
``A97`` hPa, ``MQH``, ``MQS``, ``MAW``, ``KWT``, ``WTT``, ``AMP``, ``4K`` mA; the table is
:data:`ingest.units.UNIT_CODES`); without one the attribute's default unit applies.  As a
fallback for any kind a Smart Data Models ``DeviceMeasurement`` ``numValue`` is read, in
the unit given by its ``unit`` attribute (a UN/CEFACT code) or else the canonical unit.
Time: the attribute's ``observedAt``, else the entity's ``dateObserved`` (an ISO interval
``a/b`` counts as its end ``b``), else ``dateObservedTo``, else ``received``; a naive
NGSI-LD time is UTC, as the data models specify.

Writing: one entity per reading, normalized (``ngsi-ld``: the value in the kind's
canonical unit, with its ``unitCode`` where it has one) or keyValues (``ngsi-ld-kv``:
the value in the attribute's default unit), the attribute being the first of the kind's.

NGSI-LD attributes per kind (default unit when no ``unitCode``):

=====================  =======================  ==============================  ============
kind                   suggested entity type    attribute(s)                    default unit
=====================  =======================  ==============================  ============
vehicle_count          TrafficFlowObserved      ``intensity``                   veh
avg_speed              TrafficFlowObserved      ``averageVehicleSpeed``         km/h
occupancy              TrafficFlowObserved      ``occupancy``                   ``/`` ratio
pm25, pm10             AirQualityObserved       ``pm25``, ``pm10``              µg/m³
temperature            AirQualityObserved       ``temperature``                 °C
noise_laeq             NoiseLevelObserved       ``LAeq``                        dB(A)
water_level            FloodMonitoring          ``currentLevel`` or ``height``  m
water_flow             WaterObserved            ``flow``                        m³/s
water_pressure         DeviceMeasurement        ``waterPressure``               bar
feeder_load            DeviceMeasurement        ``feederLoad``                  MW
streetlight_current    Streetlight              ``current``                     A
=====================  =======================  ==============================  ============

``occupancy`` is a 0..1 fraction in the data model and becomes % (×100);
``flow`` follows hydrology practice (m³/s, ×3600 to the registry's m³/h) — a
producer sending m³/h without ``unitCode: MQH`` lands in the dead letters as
out of range rather than being silently wrong by 3600×.  The utility kinds
have no Smart Data Models attribute; the names above are this project's.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ingest.formats.common import Columns, Message, iso_seconds, iso_utc, show, what
from ingest.units import CANONICAL_CODES, UNIT_CODES, UNITS
from processing.batch import ReadingBatch
from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec

__all__ = ["NGSI_ATTRIBUTES", "NGSI_CONTEXT", "NgsiAttribute", "PREFIX", "decode_into", "encode"]

#: The JSON-LD context of the Smart Data Models entities written here.
NGSI_CONTEXT: tuple[str, ...] = (
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
)


@dataclass(frozen=True, slots=True)
class NgsiAttribute:
    """Where an entity carries one kind's reading."""

    entity_type: str            # suggested Smart Data Models type (for encoders; not checked on decode)
    names: tuple[str, ...]      # attribute names tried in order
    unit: str                   # unit of a value without unitCode (a spelling of UNITS[kind])


#: kind -> which NGSI-LD attribute carries its reading.
NGSI_ATTRIBUTES: Mapping[str, NgsiAttribute] = MappingProxyType({
    "vehicle_count": NgsiAttribute("TrafficFlowObserved", ("intensity",), "veh"),
    "avg_speed": NgsiAttribute("TrafficFlowObserved", ("averageVehicleSpeed",), "km/h"),
    "occupancy": NgsiAttribute("TrafficFlowObserved", ("occupancy",), "/"),
    "pm25": NgsiAttribute("AirQualityObserved", ("pm25",), "µg/m³"),
    "pm10": NgsiAttribute("AirQualityObserved", ("pm10",), "µg/m³"),
    "temperature": NgsiAttribute("AirQualityObserved", ("temperature",), "°C"),
    "noise_laeq": NgsiAttribute("NoiseLevelObserved", ("LAeq",), "dB(A)"),
    "water_level": NgsiAttribute("FloodMonitoring", ("currentLevel", "height"), "m"),
    "water_flow": NgsiAttribute("WaterObserved", ("flow",), "m³/s"),
    "water_pressure": NgsiAttribute("DeviceMeasurement", ("waterPressure",), "bar"),
    "feeder_load": NgsiAttribute("DeviceMeasurement", ("feederLoad",), "MW"),
    "streetlight_current": NgsiAttribute("Streetlight", ("current",), "A"),
})
assert set(NGSI_ATTRIBUTES) == set(KINDS) and all(a.unit in UNITS[k] for k, a in NGSI_ATTRIBUTES.items())
#: What an NGSI-LD entity id starts with (``urn:ngsi-ld:<Type>:<local id>``).
PREFIX = "urn:ngsi-ld:"
_NO_ID = ("", "", "")


def _ngsi_value(x: Any) -> Any:
    """Unwrap a normalized Property (``{"value": …}``) and JSON-LD ``{"@value": …}``."""
    if type(x) is dict:
        x = x.get("value", x.get("@value"))
        if type(x) is dict and "@value" in x:
            x = x["@value"]
    return x


def _ngsi_time(x: Any, cache: dict[str, float | str]) -> float | str:
    x = _ngsi_value(x)
    if type(x) is not str:
        return f"must be an ISO 8601 date-time, got {what(x)}"
    when = cache.get(x)
    if when is None:
        # an ISO interval "start/end": the observation is complete at its end
        when = cache[x] = iso_seconds(x.rpartition("/")[2], naive_utc=True)
    return when


def decode_into(acc: Columns, obj: Any, mi: int, source: str, payload: Any) -> None:
    """Append the readings of NGSI-LD message ``mi`` (an entity or an array) to ``acc``."""
    entities = obj if type(obj) is list else (obj,)
    index_of, sensors, received = acc.registry.index_of, acc.registry.sensors, acc.received
    ids, tss, vals, units = acc.ids, acc.tss, acc.vals, acc.units
    recs: list[int] = []
    labels: list[tuple[str, str]] = []             # (entity id, attribute) per reading, formatted only on error
    for j, ent in enumerate(entities):
        if type(ent) is not dict:
            acc.reject(mi, source, payload, "bad_format", f"ngsi-ld entity {j}: not a JSON object, got {what(ent)}",
                       rec=j)
            continue
        eid = ent.get("id")
        typ, _, local = eid[12:].partition(":") if type(eid) is str and eid.startswith(PREFIX) else _NO_ID
        if not typ or not local or type(ent.get("type")) is not str:
            code, why = _ngsi_id_error(ent, eid)
            acc.reject(mi, source, payload, code, f"ngsi-ld entity {j}{why}", rec=j)
            continue
        i = index_of(local)
        if i < 0:
            acc.reject(mi, source, payload, "unknown_sensor",
                       f"ngsi-ld entity {j} ({eid}): unknown sensor {show(local)}", rec=j)
            continue
        kind = sensors[i].kind
        spec = NGSI_ATTRIBUTES[kind]
        unit: Any = spec.unit
        for name in spec.names:
            if name in ent:
                break
        else:
            if "numValue" not in ent:
                wanted = " or ".join(repr(a) for a in spec.names)
                acc.reject(mi, source, payload, "no_attribute",
                           f"ngsi-ld entity {j} ({eid}): no attribute {wanted} for {kind} sensor {local}", rec=j)
                continue
            name, unit = "numValue", _ngsi_value(ent.get("unit"))
            if type(unit) is str:
                unit = UNIT_CODES.get(unit, unit)
        prop = ent[name]
        observed: Any = None
        if type(prop) is dict:
            if prop.get("type", "Property") != "Property" or ("value" not in prop and "@value" not in prop):
                acc.reject(mi, source, payload, "bad_format",
                           f"ngsi-ld entity {j} ({eid}): attribute {name!r} must be a Property with a 'value'", rec=j)
                continue
            value = _ngsi_value(prop)
            code = prop.get("unitCode")
            if code is not None:
                unit = UNIT_CODES.get(code, code) if type(code) is str else code
            observed = prop.get("observedAt")
            field = "observedAt"
        elif type(prop) is list:
            acc.reject(mi, source, payload, "unsupported",
                       f"ngsi-ld entity {j} ({eid}): attribute {name!r} has several instances (datasetId); send one",
                       rec=j)
            continue
        else:
            value = prop
        if observed is None:
            observed, field = ent.get("dateObserved"), "dateObserved"
            if observed is None:
                observed, field = ent.get("dateObservedTo"), "dateObservedTo"
        if observed is None:
            when: float | str = received
        else:
            when = _ngsi_time(observed, acc.iso_times)
            if type(when) is str:
                where = f"{name}.{field}" if field == "observedAt" else field
                acc.reject(mi, source, payload, "bad_time", f"ngsi-ld entity {j} ({eid}): {where} {when}", rec=j)
                continue
        ids.append(local)
        tss.append(when)
        vals.append(value)
        units.append(unit)
        recs.append(j)
        labels.append((eid, name))
    if recs:
        acc.where[mi] = ("ngsi-ld entity", recs, labels)


def _ngsi_id_error(ent: dict, eid: Any) -> tuple[str, str]:
    """Why an entity's ``id``/``type`` cannot be used: ``(code, reason after 'ngsi-ld entity N')``."""
    if eid is None:
        return "no_id", ": no id"
    if type(eid) is not str:
        return "wrong_type", f": 'id' must be a string, got {what(eid)}"
    typ, _, local = eid[len(PREFIX):].partition(":") if eid.startswith(PREFIX) else ("", "", "")
    if not typ or not local:
        return "bad_format", f": id {show(eid)} is not urn:ngsi-ld:<Type>:<sensor id>"
    return "bad_format", f" ({eid}): no 'type' string"


def encode(batch: ReadingBatch, registry: Registry, topic_names: Sequence[str], *, keyvalues: bool) -> list[Message]:
    """One entity per reading, in the batch's order (keyValues when ``keyvalues``)."""
    ids = registry.ids
    out: list[Message] = []
    for i, t, v in zip(batch.sensor.tolist(), batch.ts.tolist(), batch.value.tolist()):
        spec = registry.sensors[i]
        entity = _entity(spec, t, v, keyvalues)
        out.append(Message(ids[i], topic_names[i], json.dumps(entity, ensure_ascii=False,
                                                              separators=(",", ":")).encode()))
    return out


def _entity(spec: SensorSpec, ts: float, value: float, keyvalues: bool) -> dict[str, Any]:
    attr = NGSI_ATTRIBUTES[spec.kind]
    name = attr.names[0]
    entity: dict[str, Any] = {"id": f"{PREFIX}{attr.entity_type}:{spec.id}", "type": attr.entity_type}
    if keyvalues:
        scale, offset = UNITS[spec.kind][attr.unit]        # canonical = value * scale + offset
        entity[name] = (value - offset) / scale if math.isfinite(value) else value
        entity["dateObserved"] = iso_utc(ts)
    else:
        prop: dict[str, Any] = {"type": "Property", "value": value, "observedAt": iso_utc(ts)}
        code = CANONICAL_CODES.get(spec.kind)
        if code is not None:
            prop["unitCode"] = code
        entity[name] = prop
    entity["@context"] = list(NGSI_CONTEXT)
    return entity
