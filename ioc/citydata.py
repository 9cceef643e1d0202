"""Load a city's configuration: its profile, the sensor registry, the ward polygons and the sensors' extra facts.

A city lives in one directory (``config/bac_giang`` for Bắc Giang) holding

* ``city.toml`` -- names, UTC offset, alert sender, languages (:func:`load_city`,
  validated by :func:`processing.city.parse_city`);
* ``sensors.geojson`` -- a FeatureCollection of sensor Points, validated by
  :meth:`processing.registry.Registry.from_geojson`;
* ``wards.geojson`` -- a FeatureCollection of Polygons, one per ward, commune
  or industrial zone, whose ``name`` is what a sensor's ``ward`` refers to.

The sensors' file also carries what the KPI tiles need beyond the registry: a river
gauge's three flood alert levels and a feeder's rating (:func:`load_extras`).

This module is the I/O side of that: it reads the files and turns every user
error (missing file, JSON syntax error, invalid content) into a single
:class:`~processing.registry.RegistryError` whose one-line message names the
file -- and, for content errors, the feature index and the field -- so a
command line can print it instead of a traceback.

Ward polygons are plain numpy rings of ``(lon, lat)`` vertices; the point
lookup (:func:`point_in_ward`) is even-odd ray casting, which is all a map of
a few dozen convex-ish shapes needs.
"""
from __future__ import annotations

import json
import tomllib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from dashboard.source import SensorExtras
from processing.city import CityProfile, parse_city
from processing.errors import ConfigError
from processing.registry import Registry, RegistryError, feature_properties

if TYPE_CHECKING:
    from processing.admin_units import AdminUnits
    from processing.layers import Layer

__all__ = [
    "WARD_TYPES",
    "Wards",
    "city_of",
    "default_city_dir",
    "extras_from_registry",
    "load_city",
    "load_admin_units",
    "load_extras",
    "load_layers",
    "load_registry",
    "load_wards",
    "point_in_ward",
    "read_toml",
]

#: The kinds of administrative (or planning) unit a ward polygon may be.
WARD_TYPES: tuple[str, ...] = ("ward", "commune", "industrial_zone")


def default_city_dir() -> Path:
    """The configured city directory: ``$IOC_CITY_DIR`` or the shipped ``config/bac_giang``
    (see :mod:`ioc.paths`)."""
    from ioc.paths import city_dir

    return city_dir()


def _read_json(path: str | Path) -> Any:
    """Parse a JSON file; every failure is one RegistryError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RegistryError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise RegistryError(f"{p}: is a directory, not a file") from None
    except UnicodeDecodeError as e:
        raise RegistryError(f"{p}: not UTF-8 text (bad byte at offset {e.start})") from None
    except OSError as e:
        raise RegistryError(f"{p}: cannot read file ({e.strerror or e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RegistryError(f"{p}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise RegistryError(f"{p}: invalid JSON: nested too deeply") from None


def load_registry(path: str | Path) -> Registry:
    """Read and validate a ``sensors.geojson`` file.

    Raises :class:`RegistryError` (message starts with the file path) for a
    missing or unreadable file, a JSON syntax error (with line and column) or
    any invalid feature.
    """
    obj = _read_json(path)
    return Registry.from_geojson(obj, str(Path(path)))


@dataclass(frozen=True)
class Wards:
    """Named polygons of a city's wards, communes and industrial zones.

    ``rings[i]`` is the closed exterior ring of ward ``names[i]`` as a
    read-only ``(n, 2)`` float64 array of ``(lon, lat)`` (first row = last row).
    """

    names: tuple[str, ...]
    types: tuple[str, ...]
    rings: tuple[np.ndarray, ...]
    bboxes: np.ndarray = field(init=False, repr=False, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.types) == len(self.rings)):
            raise ValueError("Wards: names, types and rings must have the same length")
        index: dict[str, int] = {}
        for i, name in enumerate(self.names):
            if name in index:
                raise ValueError(f"Wards: duplicate name {name!r}")
            index[name] = i
        boxes = np.array([[r[:, 0].min(), r[:, 1].min(), r[:, 0].max(), r[:, 1].max()] for r in self.rings],
                         dtype=np.float64).reshape(len(self.rings), 4)
        boxes.setflags(write=False)
        object.__setattr__(self, "bboxes", boxes)
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self, name: str) -> int:
        """Position of a ward name, or -1."""
        return self._index.get(name, -1)

    def ring(self, name: str) -> np.ndarray:
        """The ``(lon, lat)`` ring of a ward by name (KeyError if unknown)."""
        i = self.index_of(name)
        if i < 0:
            raise KeyError(name)
        return self.rings[i]


def _ring_contains(ring: np.ndarray, lon: float, lat: float) -> bool:
    """Even-odd ray casting (ray towards +lon) against a closed ring."""
    x1, y1 = ring[:-1, 0], ring[:-1, 1]
    x2, y2 = ring[1:, 0], ring[1:, 1]
    crosses = (y1 > lat) != (y2 > lat)
    if not crosses.any():
        return False
    x1, y1, x2, y2 = x1[crosses], y1[crosses], x2[crosses], y2[crosses]
    x_at = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
    return bool(np.count_nonzero(lon < x_at) % 2)


def point_in_ward(wards: Wards, lon: float, lat: float) -> str | None:
    """Name of the first ward whose polygon contains ``(lon, lat)``, or None."""
    b = wards.bboxes
    candidates = np.flatnonzero((b[:, 0] <= lon) & (lon <= b[:, 2]) & (b[:, 1] <= lat) & (lat <= b[:, 3]))
    for i in candidates:
        if _ring_contains(wards.rings[i], lon, lat):
            return wards.names[i]
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_ward(feat: Any, source: str, i: int) -> tuple[str, str, np.ndarray]:
    where = f"{source}: feature {i}"
    props = feature_properties(feat, source, i)
    name = props.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"{where}: field 'name' must be a non-empty string, got {name!r}")
    where = f"{source}: feature {i} ({name})"
    wtype = props.get("type")
    if wtype not in WARD_TYPES:
        raise RegistryError(f"{where}: field 'type' must be one of {', '.join(WARD_TYPES)}, got {wtype!r}")
    geom = feat.get("geometry")
    if not isinstance(geom, Mapping) or geom.get("type") != "Polygon":
        raise RegistryError(f"{where}: field 'geometry' must be a GeoJSON Polygon")
    coords = geom.get("coordinates")
    if not isinstance(coords, list) or not coords or not isinstance(coords[0], list):
        raise RegistryError(f"{where}: field 'geometry.coordinates' must be a list of rings")
    if len(coords) > 1:
        raise RegistryError(f"{where}: field 'geometry.coordinates' has holes, which are not supported")
    ring = coords[0]
    if len(ring) < 4:
        raise RegistryError(f"{where}: field 'geometry.coordinates' ring needs at least 4 positions, got {len(ring)}")
    for j, pos in enumerate(ring):
        if not isinstance(pos, list) or len(pos) < 2 or not all(_is_number(c) for c in pos[:2]):
            raise RegistryError(f"{where}: field 'geometry.coordinates' position {j} must be [lon, lat], got {pos!r}")
        if not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
            raise RegistryError(f"{where}: field 'geometry.coordinates' position {j} out of range: {pos!r}")
    arr = np.array([pos[:2] for pos in ring], dtype=np.float64)
    if not np.array_equal(arr[0], arr[-1]):
        raise RegistryError(f"{where}: field 'geometry.coordinates' ring is not closed (first position != last)")
    arr.setflags(write=False)
    return name, wtype, arr


def load_wards(path: str | Path) -> Wards:
    """Read and validate a ``wards.geojson`` file of named Polygons.

    Raises :class:`RegistryError` naming the file, and for invalid content the
    feature index and field.
    """
    source = str(Path(path))
    obj = _read_json(path)
    if not isinstance(obj, Mapping) or obj.get("type") != "FeatureCollection":
        raise RegistryError(f"{source}: not a GeoJSON FeatureCollection (top-level 'type')")
    features = obj.get("features")
    if not isinstance(features, list) or not features:
        raise RegistryError(f"{source}: 'features' must be a non-empty list")
    names: list[str] = []
    types: list[str] = []
    rings: list[np.ndarray] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(features):
        name, wtype, ring = _parse_ward(feat, source, i)
        if name in seen:
            raise RegistryError(f"{source}: feature {i} ({name}): field 'name' repeats feature {seen[name]}")
        seen[name] = i
        names.append(name)
        types.append(wtype)
        rings.append(ring)
    return Wards(tuple(names), tuple(types), tuple(rings))


def load_city(path: str | Path | None = None) -> CityProfile:
    """Read and validate ``city.toml`` (default: the configured city's); every problem is one
    :class:`~processing.errors.ConfigError` line naming the file and key."""
    p = Path(path) if path is not None else default_city_dir() / "city.toml"
    return parse_city(read_toml(p, missing="a city's folder needs its city.toml"), str(p))


def read_toml(path: str | Path, *, missing: str = "") -> dict[str, Any]:
    """A TOML file parsed; a missing, unreadable or invalid file is one :class:`ConfigError` naming it
    (``missing``: what to add to "file not found")."""
    source = str(Path(path))
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found" + (f" ({missing})" if missing else "")) from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def load_admin_units(city_dir: str | Path | None = None) -> "AdminUnits | None":
    """``config/<city>/admin_units.toml`` validated (None: the city has no such file)."""
    from processing.admin_units import parse_admin_units

    path = Path(city_dir if city_dir is not None else default_city_dir()) / "admin_units.toml"
    if not path.exists():
        return None
    return parse_admin_units(read_toml(path), str(path))


def load_layers(city_dir: str | Path | None = None) -> tuple["Layer", ...]:
    """The map layers of ``config/<city>/layers/`` (default the configured city's): ``layers.toml``
    validated, each GeoJSON file read and checked; no folder is no layers.  Every problem is one
    :class:`ConfigError` naming the file (and the feature or field)."""
    from processing.layers import Layer, check_features, parse_layers

    folder = Path(city_dir if city_dir is not None else default_city_dir()) / "layers"
    index = folder / "layers.toml"
    if not index.exists():
        return ()
    out = []
    for spec in parse_layers(read_toml(index), str(index)):
        path = folder / spec.file
        try:
            obj = _read_json(path)
        except RegistryError as exc:
            raise ConfigError(f"{index}: layer {spec.id!r}: {exc}") from None
        out.append(Layer(spec, tuple(check_features(obj, str(path)))))
    return tuple(out)


def city_of(path: str | Path | None) -> CityProfile:
    """The city a file of a city's folder belongs to (its registry, its alerting.toml): the
    ``city.toml`` beside it, else the configured city's."""
    beside = Path(path).with_name("city.toml") if path is not None else None
    return load_city(beside if beside is not None and beside.is_file() else None)


def load_extras(path: str | Path, registry: Registry) -> SensorExtras:
    """Flood alert levels (``alert_level_1/2/3``) and feeder ratings (``rated_mw``) from the
    registry GeoJSON's properties; registry limits fill in where the file has none."""
    extras = extras_from_registry(registry)
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        features = obj.get("features", []) if isinstance(obj, dict) else []
    except (OSError, ValueError):
        return extras
    levels, rated = extras.alert_levels.copy(), extras.rated.copy()
    for feat in features:
        props = feat.get("properties") if isinstance(feat, dict) else None
        if not isinstance(props, dict):
            continue
        i = registry.index_of(str(props.get("id")))
        if i < 0:
            continue
        for j in range(3):
            v = props.get(f"alert_level_{j + 1}")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                levels[i, j] = float(v)
        v = props.get("rated_mw")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            rated[i] = float(v)
    return SensorExtras(levels, rated)


def extras_from_registry(registry: Registry) -> SensorExtras:
    """Defaults: a water-level sensor's hard limit is its top alert level; a feeder's is its rating."""
    n = len(registry)
    extras = SensorExtras.empty(n)
    kinds = np.array([s.kind for s in registry.sensors], dtype=object)
    water = kinds == "water_level"
    extras.alert_levels[water, 2] = registry.limit_high[water]
    feeder = kinds == "feeder_load"
    extras.rated[feeder] = registry.limit_high[feeder]
    return extras
