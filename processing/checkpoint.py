"""Checkpoints of the anomaly core's state: named numpy arrays to bytes and back.

Pure: bytes in, bytes out (the files live in :mod:`ioc.checkpoints`).  A checkpoint is::

    magic b"IOC-CKPT" | u16 format version | u16 flags (0) | u32 header length | u32 header CRC-32
    header: UTF-8 JSON (sorted keys)
        registry  {"sensors": n, "fingerprint": hash of the sensor ids and kinds, in order}
        config    {"window": .., "short": .., "seasonal_slots": .., "day_types": ..}  (SHAPE_FIELDS)
        layout    hash of the kernel's state field names (columns of ``st``, of each ``season`` slot)
        arrays    [{"name", "dtype", "shape", "offset", "nbytes", "crc32"}, ...]
        position  the caller's opaque JSON object, e.g. {"t": last event time,
                  "offsets": {"ioc.readings:3": 1234}}
        data_bytes
    zero padding to a multiple of 64 bytes, then every array's raw C-order bytes (each
    at a 64-byte aligned offset from the start of the data)

:func:`encode_parts` returns the pieces without joining them (a 10,000-sensor core is
about 170 MB; the adapter writes the pieces one after the other), :func:`encode` the
joined bytes.  :func:`decode` checks, in this order, and raises with one line naming
what is wrong:

* :class:`CheckpointCorrupt` -- not a checkpoint, another format version, truncated,
  a header or an array whose CRC-32 does not match;
* :class:`CheckpointMismatch` -- taken with another registry (ids, kinds or order),
  other shape-changing core settings, or another layout of the kernel's state fields.

Both are :class:`CheckpointError`, a ``ValueError``.  The arrays of a decoded
checkpoint are read-only views of the input; :meth:`AnomalyCore.restore_state`
copies them in (and checks each array's shape and dtype).
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from processing.config import CoreConfig
from processing.registry import Registry
from processing.errors import StateError

__all__ = ["FORMAT_VERSION", "MAGIC", "SHAPE_FIELDS", "Checkpoint", "CheckpointCorrupt", "CheckpointError",
           "CheckpointMismatch", "check", "config_shape", "decode", "encode", "encode_parts", "layout_fingerprint",
           "registry_fingerprint", "state_mismatch"]

MAGIC = b"IOC-CKPT"
FORMAT_VERSION = 1
#: Core settings that change the shapes of the state arrays (a setting the core does not have is left out).
SHAPE_FIELDS: tuple[str, ...] = ("window", "short", "seasonal_slots", "day_types")

_PREFIX = struct.Struct("<8sHHII")     # magic, version, flags, header length, header CRC-32
_ALIGN = 64
_MAX_HEADER = 64 * 1024 * 1024


class CheckpointError(StateError, ValueError):
    """A checkpoint that cannot be used; the message is one line."""


class CheckpointCorrupt(CheckpointError):
    """Not a checkpoint of this format, truncated, or damaged."""


class CheckpointMismatch(CheckpointError):
    """A sound checkpoint of another registry, shape of settings or state layout."""


@dataclass(frozen=True)
class Checkpoint:
    """A decoded checkpoint: the arrays (read-only views of the input) and what was stored beside them."""

    arrays: Mapping[str, np.ndarray]
    position: Mapping[str, Any]
    sensors: int
    registry_fingerprint: str
    config: Mapping[str, int]
    layout: str
    format_version: int
    nbytes: int


# ----------------------------------------------------------------------- fingerprints

def registry_fingerprint(registry: Registry) -> str:
    """Hash of the registry's sensor ids and kinds, in order (position = sensor index)."""
    h = hashlib.sha256()
    for s in registry.sensors:
        h.update(f"{s.id}\t{s.kind}\n".encode("utf-8"))
    return h.hexdigest()[:32]


def config_shape(config: CoreConfig) -> dict[str, int]:
    """The core settings that decide the state arrays' shapes (:data:`SHAPE_FIELDS`)."""
    return {name: int(getattr(config, name)) for name in SHAPE_FIELDS if hasattr(config, name)}


def layout_fingerprint() -> str:
    """Hash of the names of the kernel's state fields (a reordering changes it, not only a new count)."""
    from processing import kernel

    text = "|".join(",".join(getattr(kernel, name, ())) for name in ("FIELDS", "SEASON_FIELDS"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- encoding

def encode_parts(arrays: Mapping[str, np.ndarray], position: Mapping[str, Any], registry: Registry,
                 config: CoreConfig) -> list[bytes | memoryview]:
    """The checkpoint as pieces to write in order (see the module docstring); nothing is copied
    but arrays that are not C-contiguous."""
    if not isinstance(position, Mapping) or not all(isinstance(k, str) for k in position):
        raise TypeError("position must be a mapping with string keys")
    entries: list[dict[str, Any]] = []
    views: list[memoryview] = []
    offset = 0
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.kind not in "biuf" or a.dtype.hasobject:
            raise TypeError(f"state array {name!r}: dtype {a.dtype} cannot be checkpointed")
        view = memoryview(a).cast("B") if a.size else memoryview(b"")
        offset = _aligned(offset)
        entries.append({"name": str(name), "dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                        "nbytes": a.nbytes, "crc32": zlib.crc32(view)})
        views.append(view)
        offset += a.nbytes
    header = {
        "format": FORMAT_VERSION,
        "registry": {"sensors": len(registry), "fingerprint": registry_fingerprint(registry)},
        "config": config_shape(config),
        "layout": layout_fingerprint(),
        "arrays": entries,
        "position": dict(position),
        "data_bytes": offset,
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=True).encode("utf-8")
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(text), zlib.crc32(text))
    head_len = len(prefix) + len(text)
    parts: list[bytes | memoryview] = [prefix + text + bytes(_aligned(head_len) - head_len)]
    at = 0
    for entry, view in zip(entries, views):
        if entry["offset"] > at:
            parts.append(bytes(entry["offset"] - at))
        parts.append(view)
        at = entry["offset"] + entry["nbytes"]
    return parts


def encode(arrays: Mapping[str, np.ndarray], position: Mapping[str, Any], registry: Registry,
           config: CoreConfig) -> bytes:
    """The checkpoint as one bytes object (see :func:`encode_parts`)."""
    return b"".join(encode_parts(arrays, position, registry, config))


# --------------------------------------------------------------------------- decoding

def decode(data: bytes | bytearray | memoryview, registry: Registry | None = None,
           config: CoreConfig | None = None) -> Checkpoint:
    """Check and decode a checkpoint; with ``registry``/``config``, also that it was taken with them
    (:func:`check`).  Raises :class:`CheckpointCorrupt` or :class:`CheckpointMismatch`."""
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    size = buf.nbytes
    if size < _PREFIX.size:
        raise CheckpointCorrupt(f"not a core checkpoint: {size} bytes, shorter than its {_PREFIX.size}-byte prefix")
    magic, version, _flags, header_len, header_crc = _PREFIX.unpack_from(buf, 0)
    if magic != MAGIC:
        raise CheckpointCorrupt(f"not a core checkpoint: starts with {bytes(magic)!r}, not {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise CheckpointCorrupt(f"checkpoint format version {version}, this version reads {FORMAT_VERSION}")
    if header_len > _MAX_HEADER or _PREFIX.size + header_len > size:
        raise CheckpointCorrupt(f"checkpoint truncated: {size} bytes, its header alone needs "
                                f"{_PREFIX.size + header_len}")
    text = buf[_PREFIX.size:_PREFIX.size + header_len]
    if zlib.crc32(text) != header_crc:
        raise CheckpointCorrupt("checkpoint header damaged (CRC-32 mismatch)")
    try:
        header = json.loads(bytes(text).decode("utf-8"))
        entries = header["arrays"]
        data_bytes = int(header["data_bytes"])
        reg = header["registry"]
        sensors, fingerprint = int(reg["sensors"]), str(reg["fingerprint"])
        config_fields = {str(k): int(v) for k, v in header["config"].items()}
        layout = str(header["layout"])
        position = header["position"]
        if not isinstance(position, dict) or not isinstance(entries, list):
            raise TypeError("position or arrays")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointCorrupt(f"checkpoint header unreadable ({type(exc).__name__}: {exc})") from None
    start = _aligned(_PREFIX.size + header_len)
    if start + data_bytes > size:
        raise CheckpointCorrupt(f"checkpoint truncated: {size} bytes, its header promises {start + data_bytes}")
    arrays: dict[str, np.ndarray] = {}
    for entry in entries:
        try:
            name = str(entry["name"])
            dtype = np.dtype(str(entry["dtype"]))
            shape = tuple(int(d) for d in entry["shape"])
            offset, nbytes, crc = int(entry["offset"]), int(entry["nbytes"]), int(entry["crc32"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointCorrupt(f"checkpoint header unreadable (array entry: {exc})") from None
        if (dtype.kind not in "biuf" or any(d < 0 for d in shape) or nbytes != dtype.itemsize * math.prod(shape)
                or offset < 0 or offset + nbytes > data_bytes):
            raise CheckpointCorrupt(f"checkpoint header damaged (array {name!r}: {entry})")
        chunk = buf[start + offset:start + offset + nbytes]
        if zlib.crc32(chunk) != crc:
            raise CheckpointCorrupt(f"checkpoint array {name!r} damaged (CRC-32 mismatch)")
        arr = np.frombuffer(chunk, dtype=dtype, count=math.prod(shape)).reshape(shape)
        arr.setflags(write=False)
        arrays[name] = arr
    ckpt = Checkpoint(arrays=arrays, position=position, sensors=sensors, registry_fingerprint=fingerprint,
                      config=config_fields, layout=layout, format_version=version, nbytes=start + data_bytes)
    if registry is not None or config is not None:
        check(ckpt, registry, config)
    return ckpt


def check(ckpt: Checkpoint, registry: Registry | None, config: CoreConfig | None) -> None:
    """Raise :class:`CheckpointMismatch` unless ``ckpt`` was taken with this registry (ids, kinds,
    order), these shape-changing settings and this kernel's state layout."""
    if registry is not None:
        now = registry_fingerprint(registry)
        if now != ckpt.registry_fingerprint:
            raise CheckpointMismatch(
                f"checkpoint was taken with another sensor registry: {ckpt.sensors} sensors (fingerprint "
                f"{ckpt.registry_fingerprint[:12]}) in the checkpoint, {len(registry)} ({now[:12]}) now")
    if config is not None:
        now_cfg = config_shape(config)
        differ = [f"{k}={ckpt.config.get(k, '-')} in the checkpoint, {now_cfg.get(k, '-')} now"
                  for k in sorted(set(now_cfg) | set(ckpt.config)) if ckpt.config.get(k) != now_cfg.get(k)]
        if differ:
            raise CheckpointMismatch(f"checkpoint was taken with other core settings: {'; '.join(differ)}")
    layout = layout_fingerprint()
    if layout != ckpt.layout:
        raise CheckpointMismatch(f"checkpoint was taken by a core with another state layout "
                                 f"({ckpt.layout} in the checkpoint, {layout} now: another version of the kernel)")


def state_mismatch(expected: Mapping[str, np.ndarray], given: Mapping[str, Any]) -> str | None:
    """Why arrays ``given`` cannot replace ``expected`` (names, shapes, dtypes), or None if they can."""
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        return (f"state arrays differ: missing {', '.join(missing) or '-'}; "
                f"unknown {', '.join(map(str, extra)) or '-'}")
    for name, cur in expected.items():
        arr = given[name]
        if not isinstance(arr, np.ndarray):
            return f"state array {name!r} is a {type(arr).__name__}, not a numpy array"
        if arr.shape != cur.shape:
            return f"state array {name!r} has shape {arr.shape} in the checkpoint, this core needs {cur.shape}"
        if arr.dtype != cur.dtype:
            return f"state array {name!r} has dtype {arr.dtype} in the checkpoint, this core needs {cur.dtype}"
    return None


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN
