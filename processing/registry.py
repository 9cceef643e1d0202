"""The city's sensor registry: who each sensor index is, and its columnar arrays.

The registry is parsed from GeoJSON (``config/<city>/sensors.geojson``) by
:meth:`Registry.from_geojson`, which takes the already-parsed JSON object and
the name of its source, so this module stays free of I/O.  Every problem is
reported as one :class:`RegistryError` line naming the source, the feature
(index and id) and the field.

The anomaly core reads the registry only through its arrays (interval, limits,
kind codes), indexed by the int32 sensor index that flows in every
:class:`~processing.batch.ReadingBatch`.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from processing.kinds import DOMAINS, KINDS
from processing.errors import InputError

__all__ = ["Registry", "RegistryError", "SensorSpec"]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class RegistryError(InputError):
    """A registry file that cannot be used; the message is one line naming the place."""


@dataclass(frozen=True, slots=True)
class SensorSpec:
    id: str
    name: str
    domain: str
    kind: str
    unit: str
    ward: str
    lon: float
    lat: float
    interval_s: float
    limit_low: float | None = None
    limit_high: float | None = None


@dataclass(frozen=True)
class Registry:
    """An ordered, immutable set of sensors; position = sensor index."""

    sensors: tuple[SensorSpec, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    interval_s: np.ndarray = field(init=False, repr=False, compare=False)
    limit_low: np.ndarray = field(init=False, repr=False, compare=False)
    limit_high: np.ndarray = field(init=False, repr=False, compare=False)
    kind_code: np.ndarray = field(init=False, repr=False, compare=False)
    valid_min: np.ndarray = field(init=False, repr=False, compare=False)    # the kind's possible range
    valid_max: np.ndarray = field(init=False, repr=False, compare=False)
    domain_code: np.ndarray = field(init=False, repr=False, compare=False)
    ward_code: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, s in enumerate(self.sensors):
            if s.id in index:
                raise RegistryError(f"duplicate sensor id {s.id!r} at positions {index[s.id]} and {i}")
            index[s.id] = i
        kinds = list(KINDS)
        wards = sorted({s.ward for s in self.sensors})
        nan = float("nan")

        def frozen(values: Sequence[float], dtype: type) -> np.ndarray:
            arr = np.array(values, dtype=dtype)
            arr.setflags(write=False)
            return arr

        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "interval_s", frozen([s.interval_s for s in self.sensors], np.float64))
        object.__setattr__(self, "limit_low", frozen(
            [nan if s.limit_low is None else s.limit_low for s in self.sensors], np.float64))
        object.__setattr__(self, "limit_high", frozen(
            [nan if s.limit_high is None else s.limit_high for s in self.sensors], np.float64))
        object.__setattr__(self, "kind_code", frozen([kinds.index(s.kind) for s in self.sensors], np.int16))
        object.__setattr__(self, "valid_min", frozen([KINDS[s.kind].valid_min for s in self.sensors], np.float64))
        object.__setattr__(self, "valid_max", frozen([KINDS[s.kind].valid_max for s in self.sensors], np.float64))
        object.__setattr__(self, "domain_code", frozen([DOMAINS.index(s.domain) for s in self.sensors], np.int16))
        object.__setattr__(self, "ward_code", frozen([wards.index(s.ward) for s in self.sensors], np.int16))

    def __len__(self) -> int:
        return len(self.sensors)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.sensors]

    @property
    def wards(self) -> list[str]:
        return sorted({s.ward for s in self.sensors})

    def index_of(self, sensor_id: str) -> int:
        """Index of a sensor id, or -1 when the registry does not know it."""
        return self._index.get(sensor_id, -1)

    def indices(self, sensor_ids: Sequence[str]) -> np.ndarray:
        """int32 indices for many ids at once (-1 for unknown ids)."""
        get = self._index.get
        return np.fromiter(map(get, sensor_ids, itertools.repeat(-1)), dtype=np.int32, count=len(sensor_ids))

    def __getitem__(self, key: int | str) -> SensorSpec:
        if isinstance(key, str):
            i = self.index_of(key)
            if i < 0:
                raise KeyError(key)
            return self.sensors[i]
        return self.sensors[key]

    @classmethod
    def synthetic(cls, n: int, kind: str = "pm25", interval_s: float = 60.0) -> "Registry":
        """A registry of ``n`` anonymous sensors (benchmarks, NAB scoring, tests).

        ``interval_s`` may be NaN: the core then learns each sensor's spacing.
        """
        spec = KINDS[kind]
        return cls(tuple(
            SensorSpec(id=f"S{i:06d}", name=f"S{i:06d}", domain=spec.domain, kind=kind, unit=spec.unit,
                       ward="-", lon=0.0, lat=0.0, interval_s=interval_s)
            for i in range(n)))

    @classmethod
    def from_geojson(cls, obj: Any, source: str) -> "Registry":
        """Validate a parsed GeoJSON FeatureCollection of sensor Points."""
        if not isinstance(obj, Mapping) or obj.get("type") != "FeatureCollection":
            raise RegistryError(f"{source}: not a GeoJSON FeatureCollection (top-level 'type')")
        features = obj.get("features")
        if not isinstance(features, list) or not features:
            raise RegistryError(f"{source}: 'features' must be a non-empty list")
        specs = []
        seen: dict[str, int] = {}
        for i, feat in enumerate(features):
            spec = _parse_feature(feat, source, i)
            if spec.id in seen:
                raise RegistryError(
                    f"{source}: feature {i} ({spec.id}): field 'id' repeats feature {seen[spec.id]}")
            seen[spec.id] = i
            specs.append(spec)
        return cls(tuple(specs))


def feature_properties(feat: Any, source: str, i: int) -> Mapping[str, Any]:
    """The ``properties`` of GeoJSON feature ``i``, or a RegistryError naming it."""
    where = f"{source}: feature {i}"
    if not isinstance(feat, Mapping) or feat.get("type") != "Feature":
        raise RegistryError(f"{where}: not a GeoJSON Feature (field 'type')")
    props = feat.get("properties")
    if not isinstance(props, Mapping):
        raise RegistryError(f"{where}: field 'properties' must be an object")
    return props


def _parse_feature(feat: Any, source: str, i: int) -> SensorSpec:
    where = f"{source}: feature {i}"
    props = feature_properties(feat, source, i)
    sid = props.get("id")
    if not isinstance(sid, str) or not _ID_RE.match(sid):
        raise RegistryError(f"{where}: field 'id' must be 1-64 characters of letters, digits, '_.:-', got {sid!r}")
    where = f"{source}: feature {i} ({sid})"

    def text(name: str, required: bool = True) -> str:
        v = props.get(name)
        if v is None and not required:
            return ""
        if not isinstance(v, str) or not v.strip():
            raise RegistryError(f"{where}: field '{name}' must be a non-empty string, got {v!r}")
        return v

    def number(name: str, required: bool) -> float | None:
        v = props.get(name)
        if v is None and not required:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise RegistryError(f"{where}: field '{name}' must be a finite number, got {v!r}")
        return float(v)

    geom = feat.get("geometry")
    if not isinstance(geom, Mapping) or geom.get("type") != "Point":
        raise RegistryError(f"{where}: field 'geometry' must be a GeoJSON Point")
    coords = geom.get("coordinates")
    if (not isinstance(coords, (list, tuple)) or len(coords) < 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords[:2])):
        raise RegistryError(f"{where}: field 'geometry.coordinates' must be [lon, lat]")
    lon, lat = float(coords[0]), float(coords[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise RegistryError(f"{where}: field 'geometry.coordinates' out of range: [{lon}, {lat}]")

    domain = text("domain")
    if domain not in DOMAINS:
        raise RegistryError(f"{where}: field 'domain' must be one of {', '.join(DOMAINS)}, got {domain!r}")
    kind = text("kind")
    if kind not in KINDS:
        raise RegistryError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if KINDS[kind].domain != domain:
        raise RegistryError(f"{where}: field 'kind' {kind!r} belongs to domain {KINDS[kind].domain!r}, not {domain!r}")
    unit = text("unit")
    if unit != KINDS[kind].unit:
        raise RegistryError(f"{where}: field 'unit' for kind {kind!r} must be {KINDS[kind].unit!r}, got {unit!r}")
    interval = number("interval_s", True)
    assert interval is not None
    if interval <= 0:
        raise RegistryError(f"{where}: field 'interval_s' must be > 0, got {interval}")
    lo = number("limit_low", False)
    hi = number("limit_high", False)
    if lo is not None and hi is not None and lo >= hi:
        raise RegistryError(f"{where}: field 'limit_low' ({lo}) must be below 'limit_high' ({hi})")
    return SensorSpec(id=sid, name=text("name", required=False) or sid, domain=domain, kind=kind, unit=unit,
                      ward=text("ward"), lon=lon, lat=lat, interval_s=interval, limit_low=lo, limit_high=hi)
