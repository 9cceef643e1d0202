"""Decode sensor message payloads into one :class:`ReadingBatch` plus dead letters.

Three wire formats, chosen per call, per topic or sniffed per message:

* **compact** JSON ``{"id": "BG-ENV-014", "ts": 1772412000.0, "v": 35.2}`` or an
  array of such objects.  ``id`` may be left out when the source is an MQTT topic
  ``<prefix>/<district>/<domain>/<sensor_id>`` (``<domain>`` one of traffic,
  environment, utility); an ``id`` in the message wins over the topic.  ``ts`` is
  epoch seconds or an ISO 8601 string *with* a UTC offset (a naive time is
  ambiguous in a UTC+7 city and is rejected); without ``ts`` the reading is
  stamped with ``received``.  Values are in the sensor kind's canonical unit.
* **SenML** JSON packs (RFC 8428).  Base fields ``bn bt bu bv bver`` apply to the
  record that carries them and every later one; the resolved name ``bn + n``
  must be a registry sensor id; the resolved time ``bt + t`` is relative to
  ``received`` when below 2**28 (so no time at all means "now"); the value is
  ``v + bv``.  A record with only base fields is a header and yields nothing.
  ``vs``/``vb``/``vd`` and sum-only records are not numeric readings: that
  record becomes a dead letter, the rest of the pack is kept.  A record without
  ``u`` or ``bu`` is taken to be in the canonical unit.  A field ending in ``_``
  (RFC 8428 "must understand") rejects its record; ``bver`` above 10 and a base
  field of the wrong type reject the rest of the pack (later records would
  resolve wrongly).  A single SenML record object is accepted as a pack of one.
* **NGSI-LD** entities following the FIWARE Smart Data Models, normalized
  (``{"type": "Property", "value": …, "unitCode": …, "observedAt": …}``) or
  keyValues (bare values), one entity or an array.  ``id`` is
  ``urn:ngsi-ld:<Type>:<local id>`` and the local id is the registry sensor id;
  the sensor's kind picks the attribute read (``NGSI_ATTRIBUTES``; the entity
  ``type`` is not checked).  A normalized attribute's UN/CEFACT ``unitCode``
  is honoured (``GQ`` µg/m³, ``KMH``, ``MTS``, ``P1`` %, ``C62`` ratio, ``MTR``,
  ``CMT``, ``MMT``, ``CEL``, ``KEL``, ``2N`` dB, ``BAR``, ``PAL``, ``KPA``,
  ``A97`` hPa, ``MQH``, ``MQS``, ``MAW``, ``KWT``, ``WTT``, ``AMP``, ``4K`` mA);
  without one the attribute's default unit applies.  As a fallback for any kind
  a Smart Data Models ``DeviceMeasurement`` ``numValue`` is read, in the unit
  given by its ``unit`` attribute (a UN/CEFACT code) or else the canonical unit.
  Time: the attribute's ``observedAt``, else the entity's ``dateObserved`` (an
  ISO interval ``a/b`` counts as its end ``b``), else ``dateObservedTo``, else
  ``received``; a naive NGSI-LD time is UTC, as the data models specify.

Sniffing (no format given): look at the object, or an array's first object.
With a SenML field (``bn bt bu bv bs bver n u t s ut vs vb vd``) and no ``id``
it is SenML; with ``type``, ``@context`` or an ``id`` starting ``urn:ngsi-ld:``
it is NGSI-LD; with ``v``, ``id`` or ``ts`` it is compact.  Anything else, and a
message that yields no reading and no other complaint, is a dead letter.

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

Units (SenML ``u``/``bu``, NGSI-LD after ``unitCode``) accepted per kind and
normalised to the registry's canonical unit (``UNITS`` is the table):

===================  ===========  ===================================================================
kind                 canonical    accepted (factor to canonical)
===================  ===========  ===================================================================
pm25, pm10           µg/m³        µg/m³ µg/m3 ug/m3 ug/m³ ug/m^3 μg/m3 (Greek mu) (1); mg/m3 (1e3);
                                  kg/m3 — SenML's primary unit (1e9)
noise_laeq           dB(A)        dB(A) dBA dB (1)
water_level          m            m (1), cm (0.01), mm (0.001)
temperature          °C           °C Cel degC ℃ (1); K (−273.15)
water_pressure       bar          bar (1), Pa (1e-5), hPa (1e-3), kPa (0.01), MPa (10)
water_flow           m³/h         m³/h m3/h (1), m3/s m³/s (3600), l/s L/s (3.6)
feeder_load          MW           MW (1), kW (1e-3), W (1e-6)
streetlight_current  A            A (1), mA (1e-3)
occupancy            %            % (1), ``/`` — SenML's ratio unit, 0..1 (100)
vehicle_count        veh/5min     veh/5min veh count (1) — a count over the sensor's interval; veh/h (1/12)
avg_speed            km/h         km/h kmh (1), m/s (3.6)
===================  ===========  ===================================================================

Anything else is a dead letter naming the record, the unit and the sensor.

**Errors are data.**  Nothing here raises on bad input: a payload over
``max_bytes`` (not even parsed), invalid UTF-8, invalid or truncated JSON (with
its position), an empty array/object, a shape no format fits, wrong types, NaN
or Infinity (JSON's ``NaN`` literal is read, then rejected as non-finite), an
unknown sensor, a value outside the kind's physically possible range
(:data:`processing.kinds.KINDS` ``valid_min..valid_max``, after unit
conversion), a SenML record without a name, an NGSI-LD entity without ``id``:
each becomes a :class:`DeadLetter` with a one-line reason and the original
bytes, and the good readings beside it (same message or not) are kept.
``DeadLetter.code`` is a short category for counting (``too_large``,
``invalid_utf8``, ``invalid_json``, ``bad_format``, ``wrong_type``, ``no_id``,
``no_name``, ``unknown_sensor``, ``non_finite``, ``out_of_range``, ``bad_unit``,
``bad_time``, ``not_numeric``, ``no_attribute``, ``unsupported``).

**Speed.**  :func:`decode_many` is the ingest hot path.  Per message only
``orjson.loads`` (2-3x the standard library's parser; anything it refuses, such
as NaN literals or bad UTF-8, goes to a careful path on ``json`` that names the
problem) and a few dict lookups run, so a one-reading compact message decodes
faster than ``json.loads`` alone takes; a regular SenML pack (base fields in its first
record, the same ``n``/``v``/``t``/``u`` fields in every record) is taken apart
column-wise by C iterators (``itemgetter``, ``zip``, ``map``), never record by
record.  Ids, times, values and units of all messages go into plain lists and
are type-checked, converted, unit-normalised, time-resolved and range-checked
in one numpy pass.  Per-reading Python code runs only for readings that fail
and for irregular packs.  ``python3 -m bench.decode`` measures it.

>>> from processing.registry import Registry
>>> reg = Registry.synthetic(2)
>>> out = decode_many([("city/x/environment/S000001", b'{"ts": 1772412000, "v": 35.2}'),
...                    ("city/x/environment/S000001", b'{"ts": 17724'),
...                    ("ioc.readings", b'[{"bn": "S00000", "bu": "ug/m3"}, {"n": "0", "v": 12}]')],
...                   registry=reg, received=1772412060.0)
>>> out.batch.sensor.tolist(), out.batch.value.tolist()
([1, 0], [35.2, 12.0])
>>> for d in out.dead: print(d.code, "|", d.reason)
invalid_json | invalid JSON (truncated?): Expecting ',' delimiter at line 1 column 13 (char 12)
"""
from __future__ import annotations

import json

import orjson
import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from types import MappingProxyType
from operator import add, itemgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from processing.batch import ReadingBatch
from processing.kinds import DOMAINS, KINDS
from processing.registry import Registry

__all__ = ["DeadLetter", "Decoded", "FORMATS", "MAX_BYTES", "NGSI_ATTRIBUTES", "NgsiAttribute", "UNITS",
           "UNIT_CODES", "decode", "decode_many"]

#: Payload formats understood; ``None`` (sniff per message) is also accepted wherever one is asked for.
FORMATS: tuple[str, ...] = ("compact", "senml", "ngsi-ld")
#: Default size limit of one message; a larger one is a dead letter without being parsed.
MAX_BYTES = 262_144
#: RFC 8428: a resolved time below this is relative to the time of reception.
SENML_RELATIVE_BELOW = 2.0 ** 28
#: Highest SenML version (``bver``) understood.
SENML_VERSION = 10


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (or one record of it) that could not be used; nothing is lost."""

    source: str      # topic or file it came from
    reason: str      # one line, names the field/record
    payload: bytes   # the original bytes (whole message)
    received: float  # epoch seconds, passed in
    code: str = "bad_format"  # short category for counting (see the module docstring)


@dataclass(frozen=True, slots=True)
class Decoded:
    batch: ReadingBatch
    dead: tuple[DeadLetter, ...]


# --------------------------------------------------------------------------- units

def _table(*groups: tuple[float, float, Iterable[str]]) -> Mapping[str, tuple[float, float]]:
    return MappingProxyType({name: (scale, offset) for scale, offset, names in groups for name in names})


_CONC = ["µg/m³", "ug/m3"] + [f"{mu}g/{m3}" for mu in ("µ", "μ", "u") for m3 in ("m³", "m3", "m^3")
                                if f"{mu}g/{m3}" not in ("µg/m³", "ug/m3")]

#: kind -> {unit spelling: (scale, offset)}; canonical = value * scale + offset.
UNITS: Mapping[str, Mapping[str, tuple[float, float]]] = MappingProxyType({
    "pm25": _table((1.0, 0.0, _CONC[:2]), (1e9, 0.0, ("kg/m3", "kg/m³")), (1e3, 0.0, ("mg/m3", "mg/m³")),
                   (1.0, 0.0, _CONC[2:])),
    "pm10": _table((1.0, 0.0, _CONC[:2]), (1e9, 0.0, ("kg/m3", "kg/m³")), (1e3, 0.0, ("mg/m3", "mg/m³")),
                   (1.0, 0.0, _CONC[2:])),
    "noise_laeq": _table((1.0, 0.0, ("dB(A)", "dBA", "dB"))),
    "water_level": _table((1.0, 0.0, ("m",)), (0.01, 0.0, ("cm",)), (0.001, 0.0, ("mm",))),
    "temperature": _table((1.0, 0.0, ("°C", "Cel", "degC", "℃")), (1.0, -273.15, ("K",))),
    "water_pressure": _table((1.0, 0.0, ("bar",)), (1e-5, 0.0, ("Pa",)), (1e-3, 0.0, ("hPa",)),
                             (0.01, 0.0, ("kPa",)), (10.0, 0.0, ("MPa",))),
    "water_flow": _table((1.0, 0.0, ("m³/h", "m3/h")), (3600.0, 0.0, ("m3/s", "m³/s")), (3.6, 0.0, ("l/s", "L/s"))),
    "feeder_load": _table((1.0, 0.0, ("MW",)), (1e-3, 0.0, ("kW",)), (1e-6, 0.0, ("W",))),
    "streetlight_current": _table((1.0, 0.0, ("A",)), (1e-3, 0.0, ("mA",))),
    "occupancy": _table((1.0, 0.0, ("%",)), (100.0, 0.0, ("/",))),
    "vehicle_count": _table((1.0, 0.0, ("veh/5min", "veh", "count")), (1.0 / 12.0, 0.0, ("veh/h",))),
    "avg_speed": _table((1.0, 0.0, ("km/h", "kmh")), (3.6, 0.0, ("m/s",))),
})
assert set(UNITS) == set(KINDS) and all(KINDS[k].unit in UNITS[k] for k in KINDS), "UNITS must cover KINDS"

#: UN/CEFACT common codes (NGSI-LD ``unitCode``) -> unit spelling of :data:`UNITS`.
UNIT_CODES: Mapping[str, str] = MappingProxyType({
    "GQ": "µg/m³", "GP": "mg/m³", "KMH": "km/h", "MTS": "m/s", "P1": "%", "C62": "/", "2N": "dB",
    "MTR": "m", "CMT": "cm", "MMT": "mm", "CEL": "°C", "KEL": "K", "BAR": "bar", "PAL": "Pa", "KPA": "kPa",
    "A97": "hPa", "MQH": "m³/h", "MQS": "m³/s", "MAW": "MW", "KWT": "kW", "WTT": "W", "AMP": "A", "4K": "mA",
})

_KIND_NAMES: tuple[str, ...] = tuple(KINDS)          # position = Registry.kind_code
# unit code 0 = "no unit given" (canonical); 1.. = every spelling in UNITS
_UNIT_NAMES: tuple[str, ...] = tuple(sorted({u for table in UNITS.values() for u in table}))
_UNIT_INDEX: dict[Any, int] = {None: 0, **{u: i + 1 for i, u in enumerate(_UNIT_NAMES)}}


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _unit_arrays() -> tuple[np.ndarray, np.ndarray]:
    scale = np.full((len(_KIND_NAMES), len(_UNIT_NAMES) + 1), np.nan)
    offset = np.zeros_like(scale)
    scale[:, 0] = 1.0
    for k, kind in enumerate(_KIND_NAMES):
        for unit, (s, o) in UNITS[kind].items():
            scale[k, _UNIT_INDEX[unit]] = s
            offset[k, _UNIT_INDEX[unit]] = o
    return _frozen(scale), _frozen(offset)


_SCALE, _OFFSET = _unit_arrays()
_VMIN = _frozen(np.array([KINDS[k].valid_min for k in _KIND_NAMES], dtype=np.float64))
_VMAX = _frozen(np.array([KINDS[k].valid_max for k in _KIND_NAMES], dtype=np.float64))


# --------------------------------------------------------------------------- NGSI-LD attributes

@dataclass(frozen=True, slots=True)
class NgsiAttribute:
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
_NGSI_PREFIX = "urn:ngsi-ld:"
_NO_ID = ("", "", "")


# --------------------------------------------------------------------------- small helpers

_NUMBER_SET = frozenset((int, float))
_SENML_ONLY = frozenset(("bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "t", "s", "ut", "vs", "vb", "vd"))
_SENML_KNOWN = _SENML_ONLY | {"v"}
_SENML_PLAIN = frozenset(("n", "t", "u", "v"))
_SENML_BASE = frozenset(("bn", "bt", "bu", "bv", "bs", "bver"))
_SENML_FIRST = _SENML_PLAIN | _SENML_BASE
_ONLY_STR = frozenset((str,))
_SENML_COLUMNS = ("n", "v", "t", "u")
_JSON_TYPE = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
              type(None): "null"}


def _show(x: Any, limit: int = 48) -> str:
    """A value as JSON text, cut to ``limit`` characters, for a reason line."""
    try:
        text = json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(x)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _what(x: Any) -> str:
    """``string "35.2"``, ``boolean true``, ``null``: a value and its JSON type, for a reason line."""
    return "null" if x is None else f"{_JSON_TYPE.get(type(x), type(x).__name__)} {_show(x)}"


def _is_number(x: Any) -> bool:
    return type(x) is float or type(x) is int


def _topic_sensor(source: str) -> str | None:
    """The sensor id of an MQTT topic ``<prefix>/<district>/<domain>/<sensor_id>``, else None."""
    parts = source.split("/")
    if len(parts) >= 4 and parts[-2] in DOMAINS and parts[-1] and not {"+", "#"} & set(parts[-1]):
        return parts[-1]
    return None


def _topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest)."""
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(p) == len(t)


def _check_fmt(fmt: Any, where: str) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"{where}: payload format must be one of {', '.join(FORMATS)} or None, got {fmt!r}")


def _format_table(formats: str | Mapping[str, str | None] | None
                  ) -> tuple[str | None, Callable[[str], str | None] | None]:
    """``(fixed format, per-topic lookup)``; exactly one of them is used."""
    if formats is None or isinstance(formats, str):
        _check_fmt(formats, "formats")
        return formats, None
    for key, value in formats.items():
        _check_fmt(value, f"formats[{key!r}]")
    exact = {k: v for k, v in formats.items() if "+" not in k and "#" not in k}
    filters = [(k, v) for k, v in formats.items() if k not in exact]
    cache: dict[str, str | None] = {}

    def lookup(topic: str) -> str | None:
        try:
            return cache[topic]
        except KeyError:
            pass
        fmt = exact.get(topic)
        if fmt is None and topic not in exact:
            fmt = next((v for k, v in filters if _topic_matches(k, topic)), None)
        cache[topic] = fmt
        return fmt

    return None, lookup


def _iso_seconds(text: str, *, naive_utc: bool) -> float | str:
    """Epoch seconds of an ISO 8601 date-time, or the reason it is not one."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return f"{_show(text)} is not an ISO 8601 date-time"
    if when.tzinfo is None:
        if not naive_utc:
            return f"{_show(text)} has no UTC offset (write e.g. +07:00 or Z)"
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    try:
        return bytes(payload)
    except TypeError:
        return repr(payload).encode()


def _parse_slow(payload: Any) -> tuple[Any, tuple[str, str] | None]:
    """Parse a payload the fast path refused: ``(object, None)`` or ``(None, (code, reason))``."""
    if isinstance(payload, str):
        text = payload
    else:
        raw = _as_bytes(payload)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, ("invalid_utf8", f"not UTF-8 text: {exc.reason} at byte {exc.start} "
                                          f"(0x{raw[exc.start:exc.start + 1].hex()})")
    if not text.strip():
        return None, ("invalid_json", "empty payload")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        truncated = " (truncated?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        return None, ("invalid_json", f"invalid JSON{truncated}: {exc.msg} at line {exc.lineno} column {exc.colno} "
                                      f"(char {exc.pos})")
    except RecursionError:
        return None, ("invalid_json", "invalid JSON: nested too deeply")


def _sniff(obj: Any) -> str | None:
    """The format of a parsed message, or None when no format fits."""
    first = obj
    if type(obj) is list:
        first = next((r for r in obj if type(r) is dict), None)
        if first is None:
            return None
    elif type(obj) is not dict:
        return None
    if "id" not in first and not first.keys().isdisjoint(_SENML_ONLY):
        return "senml"
    eid = first.get("id")
    if "type" in first or "@context" in first or (type(eid) is str and eid.startswith(_NGSI_PREFIX)):
        return "ngsi-ld"
    if "v" in first or "id" in first or "ts" in first:
        return "compact"
    return None


# --------------------------------------------------------------------------- per-message decoders

class _Acc:
    """Columns collected over one decode_many call (local to the call)."""

    __slots__ = ("registry", "received", "ids", "tss", "vals", "units", "shifts", "runs", "where", "dead",
                 "topic_ids", "unchecked", "iso_times")

    def __init__(self, registry: Registry, received: float) -> None:
        self.registry = registry
        self.received = received
        self.ids: list[Any] = []
        self.tss: list[Any] = []
        self.vals: list[Any] = []
        self.units: list[Any] = []
        self.shifts: list[tuple[int, int, float]] = []    # (first row, end row, seconds to add to their times)
        # (first row, rows, sensor id, unit) of SenML packs of one sensor in one unit
        self.runs: list[tuple[int, int, str, str | None]] = []
        # message index -> (label prefix, record index per reading, NGSI-LD (entity id, attribute) or None)
        self.where: dict[int, tuple[str, Sequence[int], list[tuple[str, str]] | None]] = {}
        self.dead: list[tuple[int, int, DeadLetter]] = []    # (message, record, letter)
        self.topic_ids: dict[str, str | None] = {}
        # compact readings add ids and times as sent; SenML and NGSI-LD ones are strings and numbers already
        self.unchecked = False
        self.iso_times: dict[str, float | str] = {}     # NGSI-LD date-time text -> seconds (or why not)

    def reject(self, mi: int, source: str, payload: Any, code: str, reason: str, rec: int = -1) -> None:
        """A dead letter of message ``mi`` (record ``rec`` of it, -1 for the whole message)."""
        self.dead.append((mi, rec, DeadLetter(source, reason, _as_bytes(payload), self.received, code)))

    def topic_id(self, source: str) -> str | None:
        try:
            return self.topic_ids[source]
        except KeyError:
            sid = self.topic_ids[source] = _topic_sensor(source)
            return sid


def _decode_obj(acc: _Acc, obj: Any, fmt: str | None, mi: int, source: str, payload: Any) -> None:
    kind = type(obj)
    if kind is not dict and kind is not list:
        acc.reject(mi, source, payload, "bad_format",
                   f"not a JSON object or array: got {_what(obj)}")
        return
    if not obj:
        acc.reject(mi, source, payload, "bad_format", f"empty {'array' if kind is list else 'object'}")
        return
    if fmt is None:
        fmt = _sniff(obj)
        if fmt is None:
            if kind is list:
                reason = "array holds no JSON objects" if not any(type(r) is dict for r in obj) else \
                    "unrecognised payload: records have no 'v' (compact), SenML fields or NGSI-LD 'id'/'type'"
            else:
                reason = "unrecognised payload: an object with no 'v' (compact), SenML fields or NGSI-LD 'id'/'type'"
            acc.reject(mi, source, payload, "bad_format", reason)
            return
    before_rows, before_dead = len(acc.vals), len(acc.dead)
    if fmt == "compact":
        _compact(acc, obj, mi, source, payload)
    elif fmt == "senml":
        _senml(acc, obj if kind is list else [obj], mi, source, payload)
    else:
        _ngsi(acc, obj, mi, source, payload)
    if len(acc.vals) == before_rows and len(acc.dead) == before_dead:
        acc.reject(mi, source, payload, "bad_format", f"{fmt} payload carries no reading")


def _compact(acc: _Acc, obj: Any, mi: int, source: str, payload: Any) -> None:
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
                acc.reject(mi, source, payload, "bad_format", f"record {j}: not a JSON object, got {_what(r)}", rec=j)
                continue
            sid = r.get("id")
            acc.ids.append(tid if sid is None else sid)
            acc.tss.append(r.get("ts"))
            acc.vals.append(r.get("v"))
            recs.append(j)
    acc.units += repeat(None, len(recs))
    if recs:
        acc.where[mi] = ("record", recs, None)


def _senml(acc: _Acc, pack: list, mi: int, source: str, payload: Any) -> None:
    if not _senml_fast(acc, pack, mi):
        _senml_records(acc, pack, mi, source, payload)


def _senml_fast(acc: _Acc, pack: list, mi: int) -> bool:
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
    if not bn and set(map(type, names)) != _ONLY_STR:
        return False
    times = columns.get("t")
    if times is None:
        when = bt + acc.received if bt < SENML_RELATIVE_BELOW else bt
        times = [float(when)] * n
    elif set(map(type, times)) <= _NUMBER_SET:
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


def _senml_records(acc: _Acc, pack: list, mi: int, source: str, payload: Any) -> None:
    """Any pack, record by record (RFC 8428 section 4.6 resolution), naming each record's problem."""
    ids, tss, vals, units = acc.ids, acc.tss, acc.vals, acc.units
    received = acc.received
    recs: list[int] = []
    bn, bt, bu, bv = "", 0.0, None, 0.0

    def bad(j: int, code: str, why: str) -> None:
        acc.reject(mi, source, payload, code, f"senml record {j}: {why}", rec=j)

    for j, r in enumerate(pack):
        if type(r) is not dict:
            bad(j, "bad_format", f"not a JSON object, got {_what(r)}")
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
            bad(j, "wrong_type", f"name 'n' must be a string, got {_what(n)}")
            continue
        if not name:
            bad(j, "no_name", "no base name and no name")
            continue
        if "v" not in r:
            field = next((k for k in ("vs", "vb", "vd", "s") if k in r), None)
            if field == "s":
                bad(j, "not_numeric", f"{_show(name)} carries only a sum ('s'), not a reading")
            elif field is not None:
                bad(j, "not_numeric", f"{_show(name)} carries a {_FIELD_KIND[field]} value ({field!r}), not a number")
            else:
                bad(j, "wrong_type", f"{_show(name)} has no value 'v'")
            continue
        t = r.get("t")
        v = r["v"]
        try:
            if t is None:
                when = bt
            elif type(t) is float or type(t) is int:
                when = bt + t
            else:
                bad(j, "bad_time", f"time 't' must be a number, got {_what(t)}")
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
            return "unsupported", f"SenML version 'bver' {_show(ver)} is not supported (up to {SENML_VERSION})"
    for key, what in (("bn", "base name"), ("bu", "base unit")):
        if key in r and type(r[key]) is not str:
            return "wrong_type", f"{what} {key!r} must be a string, got {_what(r[key])}"
    for key, what in (("bt", "base time"), ("bv", "base value")):
        if key in r and not _is_number(r[key]):
            return "wrong_type", f"{what} {key!r} must be a number, got {_what(r[key])}"
    return None


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
        return f"must be an ISO 8601 date-time, got {_what(x)}"
    when = cache.get(x)
    if when is None:
        # an ISO interval "start/end": the observation is complete at its end
        when = cache[x] = _iso_seconds(x.rpartition("/")[2], naive_utc=True)
    return when


def _ngsi(acc: _Acc, obj: Any, mi: int, source: str, payload: Any) -> None:
    entities = obj if type(obj) is list else (obj,)
    index_of, sensors, received = acc.registry.index_of, acc.registry.sensors, acc.received
    ids, tss, vals, units = acc.ids, acc.tss, acc.vals, acc.units
    recs: list[int] = []
    labels: list[tuple[str, str]] = []             # (entity id, attribute) per reading, formatted only on error
    for j, ent in enumerate(entities):
        if type(ent) is not dict:
            acc.reject(mi, source, payload, "bad_format", f"ngsi-ld entity {j}: not a JSON object, got {_what(ent)}",
                       rec=j)
            continue
        eid = ent.get("id")
        typ, _, local = eid[12:].partition(":") if type(eid) is str and eid.startswith(_NGSI_PREFIX) else _NO_ID
        if not typ or not local or type(ent.get("type")) is not str:
            code, why = _ngsi_id_error(ent, eid)
            acc.reject(mi, source, payload, code, f"ngsi-ld entity {j}{why}", rec=j)
            continue
        i = index_of(local)
        if i < 0:
            acc.reject(mi, source, payload, "unknown_sensor",
                       f"ngsi-ld entity {j} ({eid}): unknown sensor {_show(local)}", rec=j)
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
        return "wrong_type", f": 'id' must be a string, got {_what(eid)}"
    typ, _, local = eid[len(_NGSI_PREFIX):].partition(":") if eid.startswith(_NGSI_PREFIX) else ("", "", "")
    if not typ or not local:
        return "bad_format", f": id {_show(eid)} is not urn:ngsi-ld:<Type>:<sensor id>"
    return "bad_format", f" ({eid}): no 'type' string"


# --------------------------------------------------------------------------- the vectorised pass

def _floats(xs: list) -> tuple[np.ndarray, list[int]]:
    """float64 array of ``xs`` and the rows that are not JSON numbers (NaN there)."""
    if set(map(type, xs)) <= _NUMBER_SET:
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
    if checked or set(map(type, tss)) <= _NUMBER_SET:
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
                when = parsed[x] = _iso_seconds(x, naive_utc=False)
            if type(when) is str:
                out[r] = np.nan
                bad[r] = f"'ts' {when}"
            else:
                out[r] = when
        else:
            out[r] = np.nan
            bad[r] = f"'ts' must be epoch seconds or an ISO 8601 string, got {_what(x)}"
    return out, bad


def _resolve_senml_times(ts: np.ndarray, shifts: list[tuple[int, int, float]], received: float) -> None:
    """Add each SenML pack's base time to its rows' times, then ``received`` to those still below 2**28."""
    first, end, base = (np.array(c) for c in zip(*shifts))
    lengths = end - first
    rows = np.arange(int(lengths.sum())) + np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
    resolved = ts[rows] + np.repeat(base.astype(np.float64), lengths)
    resolved[resolved < SENML_RELATIVE_BELOW] += received
    ts[rows] = resolved


def _unit_codes(units: list) -> np.ndarray:
    get = _UNIT_INDEX.get
    try:
        return np.fromiter(map(get, units, repeat(-1)), dtype=np.intp, count=len(units))
    except TypeError:                              # an unhashable unit (array/object)
        return np.array([get(u, -1) if type(u) is str or u is None else -1 for u in units], dtype=np.intp)


def _order(entry: tuple[int, int, DeadLetter]) -> tuple[int, int]:
    return entry[0], entry[1]


def _accepted(kind: str, limit: int = 8) -> str:
    names = list(UNITS[kind])
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def _finish(acc: _Acc, messages: Sequence[tuple[str, Any]], starts: list[int]) -> Decoded:
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
    elif not acc.unchecked or set(map(type, ids)) == _ONLY_STR:
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
                    add(r, "wrong_type", f"'id' must be a string, got {_what(sid)}")
    known = idx >= 0
    if not known.all():
        for r in np.flatnonzero(~known).tolist():
            if r not in problems:
                add(r, "unknown_sensor", f"unknown sensor {_show(ids[r])}")
    values, not_numbers = _floats(acc.vals)
    for r in not_numbers:
        v = acc.vals[r]
        add(r, "wrong_type", "no value 'v'" if v is None else f"value must be a number, got {_what(v)}")
    ts, bad_ts = _times(acc.tss, received, checked=not acc.unchecked)
    if acc.shifts:
        _resolve_senml_times(ts, acc.shifts, received)
    for r, why in bad_ts.items():
        add(r, "bad_time", why)
    kc = registry.kind_code[np.where(known, idx, 0)] if len(registry) else np.zeros(n, np.int16)
    units = acc.units
    if only_runs:
        ucode = np.repeat(np.array([_UNIT_INDEX.get(r[3], -1) for r in runs], dtype=np.intp), lengths)
    elif units.count(None) == n:
        ucode = None
    else:
        ucode = _unit_codes(units)
    if ucode is None:
        scale = None
        canon = values
    else:
        scale = _SCALE[kc, ucode]
        scale[ucode < 0] = np.nan
        canon = values * scale + _OFFSET[kc, np.maximum(ucode, 0)]
    finite_v = np.isfinite(values)
    finite_t = np.isfinite(ts)
    ok = known & finite_v & finite_t & (canon >= _VMIN[kc]) & (canon <= _VMAX[kc])
    if not ok.all():
        for r in np.flatnonzero(~ok).tolist():
            if r in problems:
                continue
            sid = ids[r]
            kind = _KIND_NAMES[kc[r]]
            unit = KINDS[kind].unit
            if not finite_v[r]:
                add(r, "non_finite", f"value {_show(acc.vals[r])} is not a finite number")
            elif not finite_t[r]:
                add(r, "non_finite", f"time {_show(acc.tss[r])} is not a finite number")
            elif scale is not None and np.isnan(scale[r]):
                add(r, "bad_unit", f"unit {_show(units[r])} does not fit {kind} sensor {sid} "
                                   f"(accepted: {_accepted(kind)})")
            else:
                sent = "" if ucode is None or ucode[r] == 0 or units[r] == unit else \
                    f" (sent {values[r]:g} {units[r]})"
                add(r, "out_of_range", f"value {canon[r]:g} {unit}{sent} is outside the possible range "
                                       f"{_VMIN[kc[r]]:g}..{_VMAX[kc[r]]:g} {unit} of {kind} sensor {sid}")
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
            dead.append((mi, rec, DeadLetter(source, label + "; ".join(whys), _as_bytes(payload), received, code)))
        keep = np.ones(n, dtype=bool)
        keep[list(problems)] = False
        batch = ReadingBatch(idx[keep], ts[keep], canon[keep])
    else:
        batch = ReadingBatch(idx, ts, canon if canon.dtype == np.float64 else canon.astype(np.float64))
    dead.sort(key=_order)
    return Decoded(batch, tuple(d for _, _, d in dead))


# --------------------------------------------------------------------------- public API

def decode_many(messages: Sequence[tuple[str, bytes]], *, registry: Registry, received: float,
                formats: str | Mapping[str, str | None] | None = None, max_bytes: int = MAX_BYTES) -> Decoded:
    """Decode many ``(topic or source, payload)`` messages into ONE batch plus dead letters.

    ``formats`` is one format for every message (``"compact"``, ``"senml"``,
    ``"ngsi-ld"``), a mapping from topic (or MQTT topic filter with ``+``/``#``)
    to format, or None to sniff each message.  Readings keep message order.
    Bad input never raises; an unknown ``formats`` value (a programming error)
    raises ValueError.
    """
    fixed, lookup = _format_table(formats)
    if not isinstance(messages, Sequence):
        messages = list(messages)
    received = float(received)
    acc = _Acc(registry, received)
    ids, tss, vals, units = acc.ids, acc.tss, acc.vals, acc.units
    starts: list[int] = []
    loads = orjson.loads
    compact = False
    for mi, (source, payload) in enumerate(messages):
        starts.append(len(vals))
        if payload is None:                        # e.g. a Kafka tombstone
            payload = b""
        if len(payload) > max_bytes:
            acc.reject(mi, source, payload, "too_large",
                       f"payload of {len(payload):,} bytes exceeds the {max_bytes:,}-byte limit (not parsed)")
            continue
        try:
            obj = loads(payload)
        except Exception:                          # anything unusual: the careful path names the problem
            obj, err = _parse_slow(payload)
            if err is not None:
                acc.reject(mi, source, payload, *err)
                continue
        fmt = fixed if lookup is None else lookup(source)
        if type(obj) is dict and (fmt is None or fmt == "compact") and "v" in obj and "id" in obj \
                and "type" not in obj:
            sid = obj["id"]                        # the hot path: one compact reading
            ids.append(sid if sid is not None else acc.topic_id(source))
            compact = True
            tss.append(obj.get("ts"))
            vals.append(obj["v"])
            units.append(None)
            continue
        try:
            _decode_obj(acc, obj, fmt, mi, source, payload)
        except Exception as exc:                   # a decoder bug must not stop the pipeline either
            del ids[starts[-1]:], tss[starts[-1]:], vals[starts[-1]:], units[starts[-1]:]
            acc.shifts[:] = [shift for shift in acc.shifts if shift[0] < starts[-1]]
            acc.runs[:] = [run for run in acc.runs if run[0] < starts[-1]]
            acc.where.pop(mi, None)
            acc.reject(mi, source, payload, "bad_format", f"could not decode: {type(exc).__name__}: {exc}")
    acc.unchecked |= compact
    return _finish(acc, messages, starts)


def decode(payload: bytes, *, source: str, registry: Registry, received: float,
           fmt: str | None = None, max_bytes: int = MAX_BYTES) -> Decoded:
    """Decode one message; ``fmt`` None sniffs it.  See :func:`decode_many`."""
    _check_fmt(fmt, "fmt")
    return decode_many(((source, payload),), registry=registry, received=received, formats=fmt,
                       max_bytes=max_bytes)
