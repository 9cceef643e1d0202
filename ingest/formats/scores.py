"""The scored-stream wire format: what a scoring worker publishes to ``ioc.scores`` and ``ioc.alert-events``.

One record per (partition, delivery), little-endian, columns back to back::

    b"IOCS" | u16 version (1) | u16 partition | u32 rows | i64 first offset | i64 next offset
            | u8 worker name length | worker name (UTF-8)
    int32 sensor[rows]   registry index (every node loads the same registry)
    f64   ts[rows]       epoch seconds
    f64   value[rows]
    f32   score[rows]    0..1 (float32: the display's and the comparison's precision)
    u8    alert[rows]    the sensor is in alert after this reading
    u16   reasons[rows]  processing.reasons bits

27 bytes a reading plus a header of 29 bytes and the name: a delivery of 1,000 readings is 27 kB, against
about 60 kB as compact JSON.  ``first``/``next`` offset: the records of ``ioc.readings`` the
scores cover, so a consumer can tell a re-scored range (after a hand-over) from new readings.

>>> import numpy as np
>>> rec = Scored(2, 10, 12, "w1", np.array([3, 4], np.int32), np.array([1.0, 2.0]), np.array([5.0, 6.0]),
...              np.array([0.1, 0.9], np.float32), np.array([False, True]), np.array([0, 4], np.uint16))
>>> back = decode(encode(rec))
>>> back.partition, back.worker, back.sensor.tolist(), back.alert.tolist(), len(encode(rec))
(2, 'w1', [3, 4], [False, True], 85)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from processing.errors import InputError

__all__ = ["MAGIC", "Scored", "ScoresFormatError", "decode", "encode"]

MAGIC = b"IOCS"
VERSION = 1
_HEAD = struct.Struct("<4sHHIqqB")
_COLUMNS: tuple[tuple[str, str], ...] = (("sensor", "<i4"), ("ts", "<f8"), ("value", "<f8"), ("score", "<f4"),
                                         ("alert", "u1"), ("reasons", "<u2"))


class ScoresFormatError(InputError, ValueError):
    """A record of the scored stream that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class Scored:
    """The scores of one delivery of one partition."""

    partition: int
    first_offset: int
    next_offset: int
    worker: str
    sensor: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    score: np.ndarray
    alert: np.ndarray
    reasons: np.ndarray

    def __len__(self) -> int:
        return int(self.sensor.size)

    def take(self, rows: np.ndarray) -> "Scored":
        """The record with only ``rows`` (same partition, offsets and worker)."""
        return Scored(self.partition, self.first_offset, self.next_offset, self.worker,
                      *(getattr(self, f)[rows] for f, _ in _COLUMNS))

    def chunks(self, rows: int) -> list["Scored"]:
        """The record cut into records of at most ``rows`` rows (itself when it is small enough)."""
        n = len(self)
        if n <= rows:
            return [self]
        return [self.take(np.arange(i, min(i + rows, n))) for i in range(0, n, rows)]


def encode(rec: Scored) -> bytes:
    """The record as bytes (see the module docstring)."""
    name = rec.worker.encode("utf-8")[:255]
    head = _HEAD.pack(MAGIC, VERSION, rec.partition, len(rec), rec.first_offset, rec.next_offset, len(name))
    cols = [np.ascontiguousarray(getattr(rec, field), dtype=dtype).tobytes() for field, dtype in _COLUMNS]
    return b"".join([head, name, *cols])


def decode(data: bytes | bytearray | memoryview, *, sensors: int | None = None) -> Scored:
    """A record from its bytes; :class:`ScoresFormatError` names what is wrong (``sensors``: the
    reader's registry size, so a record of a worker with another registry is refused too)."""
    buf = memoryview(data)
    if len(buf) < _HEAD.size:
        raise ScoresFormatError(f"scores record of {len(buf)} bytes is shorter than its {_HEAD.size}-byte header")
    magic, version, partition, rows, first, nxt, name_len = _HEAD.unpack_from(buf)
    if magic != MAGIC:
        raise ScoresFormatError(f"not a scores record (starts with {bytes(magic)!r}, want {MAGIC!r})")
    if version != VERSION:
        raise ScoresFormatError(f"scores record version {version}, this build reads {VERSION}")
    at = _HEAD.size + name_len
    want = at + rows * sum(np.dtype(d).itemsize for _, d in _COLUMNS)
    if len(buf) != want:
        raise ScoresFormatError(f"scores record of {rows} rows should be {want} bytes, got {len(buf)}")
    worker = bytes(buf[_HEAD.size:at]).decode("utf-8", "replace")
    cols = {}
    for field, dtype in _COLUMNS:
        dt = np.dtype(dtype)
        cols[field] = np.frombuffer(buf, dtype=dt, count=rows, offset=at)
        at += rows * dt.itemsize
    cols["alert"] = cols["alert"].astype(bool)
    s = cols["sensor"]
    if sensors is not None and s.size and (s.min() < 0 or s.max() >= sensors):
        raise ScoresFormatError(f"a sensor index lies outside 0..{sensors - 1}: the worker has another sensor registry")
    return Scored(partition, first, nxt, worker, **cols)
