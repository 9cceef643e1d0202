"""Wire formats of readings, both ways: :func:`decode_many` turns sensor messages into one
:class:`~processing.batch.ReadingBatch` plus dead letters, :func:`encode` writes readings as
messages for the publishers (``ioc simulate --to``, ``ioc replay``, ``ioc bridge``, the
benchmarks); every message :func:`encode` writes decodes back to the same readings.

Three formats, each in its module with its reader and its writer: :mod:`~ingest.formats.compact`
(``{"id": "BG-ENV-014", "ts": 1772412000.0, "v": 35.2}``), :mod:`~ingest.formats.senml` (RFC 8428
packs) and :mod:`~ingest.formats.ngsi_ld` (FIWARE Smart Data Models entities, normalized or
keyValues).  Units: :mod:`ingest.units`; MQTT topics: :mod:`ingest.topics`.  What the readers
share is in :mod:`~ingest.formats.common`, the numpy pass that checks every reading at once in
:mod:`~ingest.formats.vectorised`.

For decoding the format is chosen per call, per topic or sniffed per message.  Sniffing
(no format given): look at the object, or an array's first object.  With a SenML field
(``bn bt bu bv bs bver n u t s ut vs vb vd``) and no ``id`` it is SenML; with ``type``,
``@context`` or an ``id`` starting ``urn:ngsi-ld:`` it is NGSI-LD; with ``v``, ``id`` or
``ts`` it is compact.  Anything else, and a message that yields no reading and no other
complaint, is a dead letter.

Every message written is a :class:`Message` ``(key, topic, payload)``: the sensor id is the
Kafka key (one sensor stays in one partition), the topic is the MQTT topic
``<prefix>/<district>/<domain>/<sensor_id>`` (:func:`ingest.topics.topic_for`).

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
from typing import Any, Callable, Mapping, Sequence

import orjson

from ingest.formats import compact, ngsi_ld, senml
from ingest.formats.common import Columns, DeadLetter, Decoded, Message, as_bytes, what
from ingest.formats.vectorised import finish
from ingest.topics import topic_matches, topics
from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["DeadLetter", "Decoded", "ENCODINGS", "FORMATS", "MAX_BYTES", "Message", "decode", "decode_many",
           "encode"]

#: Payload formats understood; ``None`` (sniff per message) is also accepted wherever one is asked for.
FORMATS: tuple[str, ...] = ("compact", "senml", "ngsi-ld")
#: Payload formats the publishers can write (``ngsi-ld`` normalized; ``ngsi-ld-kv`` keyValues).
ENCODINGS: tuple[str, ...] = ("compact", "senml", "ngsi-ld", "ngsi-ld-kv")
#: Default size limit of one message; a larger one is a dead letter without being parsed.
MAX_BYTES = 262_144


# --------------------------------------------------------------------------- choosing a format

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
            fmt = next((v for k, v in filters if topic_matches(k, topic)), None)
        cache[topic] = fmt
        return fmt

    return None, lookup


def _parse_slow(payload: Any) -> tuple[Any, tuple[str, str] | None]:
    """Parse a payload the fast path refused: ``(object, None)`` or ``(None, (code, reason))``."""
    if isinstance(payload, str):
        text = payload
    else:
        raw = as_bytes(payload)
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
    if "id" not in first and not first.keys().isdisjoint(senml.FIELDS):
        return "senml"
    eid = first.get("id")
    if "type" in first or "@context" in first or (type(eid) is str and eid.startswith(ngsi_ld.PREFIX)):
        return "ngsi-ld"
    if "v" in first or "id" in first or "ts" in first:
        return "compact"
    return None


# --------------------------------------------------------------------------- reading

def _decode_obj(acc: Columns, obj: Any, fmt: str | None, mi: int, source: str, payload: Any) -> None:
    kind = type(obj)
    if kind is not dict and kind is not list:
        acc.reject(mi, source, payload, "bad_format",
                   f"not a JSON object or array: got {what(obj)}")
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
        compact.decode_into(acc, obj, mi, source, payload)
    elif fmt == "senml":
        senml.decode_into(acc, obj if kind is list else [obj], mi, source, payload)
    else:
        ngsi_ld.decode_into(acc, obj, mi, source, payload)
    if len(acc.vals) == before_rows and len(acc.dead) == before_dead:
        acc.reject(mi, source, payload, "bad_format", f"{fmt} payload carries no reading")


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
    acc = Columns(registry, received)
    ids, tss, vals, units = acc.ids, acc.tss, acc.vals, acc.units
    starts: list[int] = []
    loads = orjson.loads
    any_compact = False
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
            any_compact = True
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
    acc.unchecked |= any_compact
    return finish(acc, messages, starts)


def decode(payload: bytes, *, source: str, registry: Registry, received: float,
           fmt: str | None = None, max_bytes: int = MAX_BYTES) -> Decoded:
    """Decode one message; ``fmt`` None sniffs it.  See :func:`decode_many`."""
    _check_fmt(fmt, "fmt")
    return decode_many(((source, payload),), registry=registry, received=received, formats=fmt,
                       max_bytes=max_bytes)


# --------------------------------------------------------------------------- writing

def encode(batch: ReadingBatch, registry: Registry, fmt: str = "compact", *, pack: int = 1,
           prefix: str = "city", topic_names: Sequence[str] | None = None) -> list[Message]:
    """Messages for every reading of ``batch``.

    ``pack`` > 1 groups up to that many readings of one sensor into one message
    (compact arrays, SenML packs; NGSI-LD is always one entity per message).
    With ``pack`` = 1 messages keep the batch's order; packs are per sensor, in time order.
    ``topic_names`` (from :func:`ingest.topics.topics`) saves recomputing topics per call.
    """
    if fmt not in ENCODINGS:
        raise ValueError(f"payload format must be one of {', '.join(ENCODINGS)}, got {fmt!r}")
    if pack < 1:
        raise ValueError(f"pack must be >= 1, got {pack}")
    if topic_names is None:
        topic_names = topics(registry, prefix)
    if len(batch) == 0:
        return []
    if fmt.startswith("ngsi-ld"):
        return ngsi_ld.encode(batch, registry, topic_names, keyvalues=fmt == "ngsi-ld-kv")
    if fmt == "compact":
        return compact.encode(batch, registry, pack, topic_names)
    return senml.encode(batch, registry, pack, topic_names)
