"""What the three wire formats share: the :class:`DeadLetter` and :class:`Decoded` results, the
:class:`Columns` one decode call collects readings into, reason-line and time helpers; on the
writing side the :class:`Message` type and the JSON number, time and per-sensor pack helpers."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from ingest.topics import topic_sensor
from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["Columns", "DeadLetter", "Decoded", "Message"]

NUMBER_SET = frozenset((int, float))
ONLY_STR = frozenset((str,))
_JSON_TYPE = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
              type(None): "null"}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (or one record of it) that could not be used; nothing is lost."""

    source: str      # topic or file it came from
    reason: str      # one line, names the field/record
    payload: bytes   # the original bytes (whole message)
    received: float  # epoch seconds, passed in
    code: str = "bad_format"  # short category for counting (see :mod:`ingest.formats`)


@dataclass(frozen=True, slots=True)
class Decoded:
    batch: ReadingBatch
    dead: tuple[DeadLetter, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish: Kafka key, MQTT topic, payload bytes."""

    key: str
    topic: str
    payload: bytes


# --------------------------------------------------------------------------- reading

def show(x: Any, limit: int = 48) -> str:
    """A value as JSON text, cut to ``limit`` characters, for a reason line."""
    try:
        text = json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(x)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def what(x: Any) -> str:
    """``string "35.2"``, ``boolean true``, ``null``: a value and its JSON type, for a reason line."""
    return "null" if x is None else f"{_JSON_TYPE.get(type(x), type(x).__name__)} {show(x)}"


def is_number(x: Any) -> bool:
    return type(x) is float or type(x) is int


def iso_seconds(text: str, *, naive_utc: bool) -> float | str:
    """Epoch seconds of an ISO 8601 date-time, or the reason it is not one."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return f"{show(text)} is not an ISO 8601 date-time"
    if when.tzinfo is None:
        if not naive_utc:
            return f"{show(text)} has no UTC offset (write e.g. +07:00 or Z)"
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def as_bytes(payload: Any) -> bytes:
    """A payload as the bytes a dead letter keeps."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    try:
        return bytes(payload)
    except TypeError:
        return repr(payload).encode()


class Columns:
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
        self.dead.append((mi, rec, DeadLetter(source, reason, as_bytes(payload), self.received, code)))

    def topic_id(self, source: str) -> str | None:
        try:
            return self.topic_ids[source]
        except KeyError:
            sid = self.topic_ids[source] = topic_sensor(source)
            return sid


# --------------------------------------------------------------------------- writing

def json_number(x: float) -> str:
    """A float as JSON text (``NaN``/``Infinity`` as Python's json writes them)."""
    if math.isfinite(x):
        return repr(x)
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def iso_utc(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds (``…Z``)."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sensor_packs(batch: ReadingBatch, pack: int) -> Iterable[tuple[int, list[float], list[float]]]:
    """(sensor, times, values) of consecutive packs of up to ``pack`` readings of one sensor, in time order."""
    order = np.lexsort((batch.ts, batch.sensor))
    s = batch.sensor[order]
    bounds = np.flatnonzero(np.diff(s)) + 1
    ts_all, v_all = batch.ts, batch.value
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        for k in range(0, rows.size, pack):
            part = rows[k:k + pack]
            yield int(batch.sensor[rows[0]]), ts_all[part].tolist(), v_all[part].tolist()
