"""The city's map layers: what ``config/<city>/layers/layers.toml`` says of each, validated.

A layer is a GeoJSON file (RFC 7946) with names in Vietnamese and English, a style, whether it
is shown at start, and where its data comes from (``source``, ``licence``, ``date``): the map
draws it, the layer switcher lists it, and the OGC API publishes it as a collection.
:func:`parse_layers` checks the TOML's table (every problem one :class:`ConfigError` line
naming the file and the field); :func:`check_features` checks a layer's GeoJSON.

Pure: the I/O half is :func:`ioc.citydata.load_layers`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from processing.errors import ConfigError

__all__ = ["Layer", "LayerSpec", "LayerStyle", "bbox_of", "check_features", "parse_layers"]

_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GEOMETRIES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
RESERVED = ("sensors", "alerts", "wards")          # the OGC collections the IOC itself publishes


@dataclass(frozen=True, slots=True)
class LayerStyle:
    color: str = "#888888"
    width: float = 1.0           # line width, px
    opacity: float = 0.5         # of fills (lines are drawn opaque where opacity >= 0.5)


@dataclass(frozen=True, slots=True)
class LayerSpec:
    id: str
    file: str
    name_vi: str
    name_en: str
    style: LayerStyle
    visible: bool
    source: str
    licence: str
    date: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True, eq=False)
class Layer:
    """A layer and its features (plain GeoJSON Feature dicts: do not modify)."""
    spec: LayerSpec
    features: tuple[dict[str, Any], ...]

    def collection(self) -> dict[str, Any]:
        """The layer as a GeoJSON FeatureCollection (for the map)."""
        return {"type": "FeatureCollection", "features": list(self.features)}


def parse_layers(obj: Mapping[str, Any], where: str) -> tuple[LayerSpec, ...]:
    """The ``[[layers]]`` of a parsed layers.toml, in order."""
    items = obj.get("layers", [])
    if not isinstance(items, list):
        raise ConfigError(f"{where}: 'layers' must be an array of tables ([[layers]])")
    out: list[LayerSpec] = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        at = f"{where}: layers[{k}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at}: must be a table")
        unknown = set(item) - {"id", "file", "name", "style", "visible", "source", "licence", "date"}
        if unknown:
            raise ConfigError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        lid = item.get("id")
        if not isinstance(lid, str) or not _ID.match(lid):
            raise ConfigError(f"{at}.id: a lower-case identifier (a-z, 0-9, _), got {lid!r}")
        if lid in seen or lid in RESERVED:
            raise ConfigError(f"{at}.id: {lid!r} is " + ("used twice" if lid in seen else
                                                         "reserved for the IOC's own collections"))
        seen.add(lid)
        file = item.get("file")
        if not isinstance(file, str) or "/" in file or "\\" in file or not file.endswith((".geojson", ".json")):
            raise ConfigError(f"{at}.file: a .geojson file name in the layers folder, got {file!r}")
        name = item.get("name")
        if not (isinstance(name, Mapping) and all(isinstance(name.get(x), str) and name[x].strip()
                                                  for x in ("vi", "en"))):
            raise ConfigError(f"{at}.name: a table with 'vi' and 'en' names")
        for field in ("source", "licence"):
            if not isinstance(item.get(field), str) or not item[field].strip():
                raise ConfigError(f"{at}.{field}: say where the data comes from and under which licence")
        date = item.get("date")
        if not isinstance(date, str) or not _DATE.match(date):
            raise ConfigError(f"{at}.date: the data's date as YYYY-MM-DD, got {date!r}")
        visible = item.get("visible", True)
        if not isinstance(visible, bool):
            raise ConfigError(f"{at}.visible: true or false, got {visible!r}")
        out.append(LayerSpec(lid, file, name["vi"].strip(), name["en"].strip(), _style(item.get("style", {}), at),
                             visible, item["source"].strip(), item["licence"].strip(), date))
    return tuple(out)


def _style(obj: Any, at: str) -> LayerStyle:
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{at}.style: a table (color, width, opacity)")
    unknown = set(obj) - {"color", "width", "opacity"}
    if unknown:
        raise ConfigError(f"{at}.style: unknown field(s) {', '.join(sorted(unknown))}")
    color = obj.get("color", "#888888")
    if not isinstance(color, str) or not _COLOR.match(color):
        raise ConfigError(f"{at}.style.color: a colour as #rrggbb, got {color!r}")
    width, opacity = obj.get("width", 1.0), obj.get("opacity", 0.5)
    if not isinstance(width, (int, float)) or not 0 < width <= 20:
        raise ConfigError(f"{at}.style.width: a line width in px, above 0 and at most 20, got {width!r}")
    if not isinstance(opacity, (int, float)) or not 0 <= opacity <= 1:
        raise ConfigError(f"{at}.style.opacity: between 0 and 1, got {opacity!r}")
    return LayerStyle(color, float(width), float(opacity))


def _positions(geom_type: str, coords: Any) -> list[Sequence[Any]]:
    depth = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}[geom_type]
    level = [coords]
    for _ in range(depth):
        level = [c for part in level if isinstance(part, list) for c in part]
    return level


def check_features(obj: Any, where: str) -> list[dict[str, Any]]:
    """The features of a layer's GeoJSON FeatureCollection, checked as RFC 7946 asks (geometry types,
    longitude/latitude positions, closed polygon rings); :class:`ConfigError` names the feature."""
    if not isinstance(obj, Mapping) or obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        raise ConfigError(f"{where}: not a GeoJSON FeatureCollection")
    out = []
    for k, f in enumerate(obj["features"]):
        at = f"{where}: feature {k}"
        if not isinstance(f, Mapping) or f.get("type") != "Feature" or not isinstance(f.get("geometry"), Mapping):
            raise ConfigError(f"{at}: not a GeoJSON Feature with a geometry")
        g = f["geometry"]
        if g.get("type") not in GEOMETRIES:
            raise ConfigError(f"{at}: geometry type {g.get('type')!r} is not one of {', '.join(GEOMETRIES)}")
        pts = _positions(g["type"], g.get("coordinates"))
        for p in pts:
            if not (isinstance(p, list) and len(p) in (2, 3) and all(isinstance(v, (int, float)) and math.isfinite(v)
                                                                      for v in p)
                    and -180 <= p[0] <= 180 and -90 <= p[1] <= 90):
                raise ConfigError(f"{at}: position {p!r} is not [longitude, latitude] in degrees (RFC 7946)")
        if not pts:
            raise ConfigError(f"{at}: the geometry has no coordinates")
        if g["type"] in ("Polygon", "MultiPolygon"):
            rings = g["coordinates"] if g["type"] == "Polygon" else [r for poly in g["coordinates"] for r in poly]
            for r in rings:
                if len(r) < 4 or r[0] != r[-1]:
                    raise ConfigError(f"{at}: a polygon ring must have 4 or more positions, the last equal to the first")
        props = f.get("properties")
        if props is not None and not isinstance(props, Mapping):
            raise ConfigError(f"{at}: properties must be an object or null")
        out.append({"type": "Feature", "properties": dict(props or {}), "geometry": dict(g)})
    return out


def bbox_of(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a GeoJSON geometry.

    >>> bbox_of({"type": "LineString", "coordinates": [[106.1, 21.2], [106.3, 21.1]]})
    (106.1, 21.1, 106.3, 21.2)
    """
    pts = _positions(geometry["type"], geometry["coordinates"])
    xs = [float(p[0]) for p in pts]
    ys = [float(p[1]) for p in pts]
    return min(xs), min(ys), max(xs), max(ys)
