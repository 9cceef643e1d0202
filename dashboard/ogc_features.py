"""What the OGC API -- Features endpoint serves, without the web framework: the collections of the
IOC as GeoJSON features, and the query parameters of OGC API -- Features Part 1 (``bbox``,
``datetime``, ``limit``) checked and applied.

Collections (all in CRS84: longitude, latitude in WGS 84, as RFC 7946 GeoJSON):

* ``sensors`` -- every sensor of the registry, a point, with its live status, last value and
  time, unit, score and open alert (the temporal property: the last reading's time);
* ``alerts`` -- the alerts the control room shows (open, acknowledged, recently resolved), each
  at its sensor's position (temporal: the time it opened);
* ``wards`` -- the ward, commune and zone polygons of the city's map;
* one per configured layer (:mod:`processing.layers`): rivers, roads, zones.

A :class:`Query` error is :class:`QueryError` with the message a 400 answer carries.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from dashboard.source import STATUSES, Snapshot
from processing.admin_units import AdminUnits
from processing.city import NoOffset, instant_of
from processing.errors import InputError
from processing.layers import Layer, bbox_of

__all__ = ["CRS84", "Collection", "Query", "QueryError", "collections", "extent", "parse_query", "select", "slug"]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


class QueryError(InputError):
    """A query parameter the standard does not allow (answered 400 with this text)."""


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    features: Callable[[], list[dict[str, Any]]]     # built on each request (live collections)
    temporal: str | None = None                      # the property datetime filters on (ISO 8601 text)


@dataclass(frozen=True, slots=True)
class Query:
    bbox: tuple[float, float, float, float] | None = None
    start: float | None = None        # epoch seconds, inclusive; None: open
    end: float | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _utc(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _instant(text: str, what: str) -> float:
    try:
        return instant_of(text)
    except NoOffset:
        raise QueryError(f"datetime: {what} {text!r} needs a time zone (Z or +07:00)") from None
    except InputError:
        raise QueryError(f"datetime: {what} {text!r} is not an RFC 3339 date-time (e.g. 2026-03-02T07:00:00Z)") from None


def parse_query(args: Mapping[str, str]) -> Query:
    """The Part 1 query of an items request: ``limit`` (1..10000, default 100), ``offset`` (the
    paging the ``next`` links use), ``bbox`` (4 numbers, CRS84) and ``datetime`` (an instant or an
    interval ``a/b`` with ``..`` for an open end)."""
    limit, offset = DEFAULT_LIMIT, 0
    if "limit" in args:
        try:
            limit = int(args["limit"])
        except ValueError:
            raise QueryError(f"limit: a whole number, got {args['limit']!r}") from None
        if not 1 <= limit:
            raise QueryError(f"limit: at least 1, got {limit}")
        limit = min(limit, MAX_LIMIT)
    if "offset" in args:
        try:
            offset = int(args["offset"])
        except ValueError:
            raise QueryError(f"offset: a whole number, got {args['offset']!r}") from None
        if offset < 0:
            raise QueryError(f"offset: 0 or more, got {offset}")
    bbox = None
    if args.get("bbox"):
        crs = args.get("bbox-crs", CRS84)
        if crs != CRS84:
            raise QueryError(f"bbox-crs: only {CRS84} is supported")
        try:
            parts = [float(v) for v in args["bbox"].split(",")]
        except ValueError:
            raise QueryError(f"bbox: four numbers west,south,east,north, got {args['bbox']!r}") from None
        if len(parts) == 6:
            parts = [parts[0], parts[1], parts[3], parts[4]]
        if len(parts) != 4 or not all(math.isfinite(v) for v in parts) or parts[1] > parts[3]:
            raise QueryError(f"bbox: four numbers west,south,east,north with south <= north, got {args['bbox']!r}")
        bbox = (parts[0], parts[1], parts[2], parts[3])
    start = end = None
    if args.get("datetime"):
        text = args["datetime"]
        if "/" in text:
            a, _, b = text.partition("/")
            start = None if a in ("", "..") else _instant(a, "start")
            end = None if b in ("", "..") else _instant(b, "end")
            if start is not None and end is not None and start > end:
                raise QueryError(f"datetime: the interval {text!r} ends before it starts")
        else:
            start = end = _instant(text, "instant")
    return Query(bbox, start, end, limit, offset)


def _intersects(box: tuple[float, float, float, float], geometry: Mapping[str, Any]) -> bool:
    w, s, e, n = bbox_of(geometry)
    bw, bs, be, bn = box
    if bw <= be:
        return not (e < bw or w > be or n < bs or s > bn)
    return not (n < bs or s > bn) and (e >= bw or w <= be)          # a box across the antimeridian


def select(features: Sequence[dict[str, Any]], q: Query, temporal: str | None) -> tuple[list[dict[str, Any]], int]:
    """The page of ``features`` the query asks for, and how many matched in all."""
    chosen = list(features)
    if q.bbox is not None:
        chosen = [f for f in chosen if _intersects(q.bbox, f["geometry"])]
    if temporal is not None and (q.start is not None or q.end is not None):
        def within(f: dict[str, Any]) -> bool:
            text = f["properties"].get(temporal)
            if text is None:
                return False
            t = _instant(text, temporal)
            return (q.start is None or t >= q.start) and (q.end is None or t <= q.end)
        chosen = [f for f in chosen if within(f)]
    return chosen[q.offset:q.offset + q.limit], len(chosen)


def slug(name: str) -> str:
    """A URL-safe identifier from a Vietnamese name.

    >>> slug("KCN Song Khê – Nội Hoàng"), slug("Đa Mai")
    ('kcn_song_khe_noi_hoang', 'da_mai')
    """
    text = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d"))
    ascii_ = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return "_".join("".join(c if c.isalnum() else " " for c in ascii_).split())


def _sensor_features(snap: Snapshot, lang: str) -> list[dict[str, Any]]:
    open_by_sensor: dict[int, Any] = {}
    for a in snap.alerts:
        if a.state != "resolved" and (a.sensor not in open_by_sensor or a.id > open_by_sensor[a.sensor].id):
            open_by_sensor[a.sensor] = a
    out = []
    for i, s in enumerate(snap.registry.sensors):
        a = open_by_sensor.get(i)
        value, score = float(snap.last_value[i]), float(snap.score[i])
        out.append({"type": "Feature", "id": s.id, "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                    "properties": {
                        "name": s.name, "domain": s.domain, "kind": s.kind, "unit": s.unit, "ward": s.ward,
                        "status": STATUSES[int(snap.status[i])],
                        "last_value": value if math.isfinite(value) else None,
                        "last_time": _utc(float(snap.last_ts[i])),
                        "score": round(score, 4) if math.isfinite(score) else None,
                        "open_alert": a.id if a is not None else None,
                        "alert_severity": a.severity if a is not None else None}})
    return out


def _alert_features(snap: Snapshot) -> list[dict[str, Any]]:
    out = []
    for a in sorted(snap.alerts, key=lambda a: a.id):
        s = snap.registry.sensors[a.sensor]
        info = snap.alert_info.get(a.id)
        out.append({"type": "Feature", "id": a.id, "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                    "properties": {
                        "sensor_id": a.sensor_id, "sensor_name": s.name, "ward": s.ward, "kind": a.kind,
                        "severity": a.severity, "state": a.state, "opened_at": _utc(a.opened_at),
                        "last_at": _utc(a.last_at), "cleared_at": _utc(a.cleared_at),
                        "acknowledged_by": a.acknowledged_by, "resolved_at": _utc(a.resolved_at),
                        "readings": a.readings, "peak_score": round(a.peak_score, 4),
                        "team": info.team if info is not None else None}})
    return out


def _plain(features: Sequence[Mapping[str, Any]], ids: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"type": "Feature", "id": fid, "geometry": f["geometry"], "properties": dict(f.get("properties") or {})}
            for fid, f in zip(ids, features)]


def _with_units(features: Sequence[Mapping[str, Any]], admin: AdminUnits | None) -> list[dict[str, Any]]:
    """The ward polygons with their administrative unit: code, level, parent, validity."""
    out = []
    for f in features:
        props = dict(f.get("properties") or {})
        unit = admin.named(str(props.get("name", ""))) if admin is not None else None
        if unit is not None:
            parents = admin.chain(unit.code)[1:] if admin is not None else ()
            props.update({"unit_code": unit.code, "unit_name": unit.name, "level": unit.level,
                          "gso_code": unit.gso_code or None, "parent": parents[0].name if parents else None,
                          "province": parents[-1].name if parents else None, "valid_from": unit.valid_from or None,
                          "valid_to": unit.valid_to or None})
        out.append({**f, "properties": props})
    return out


def collections(snapshot: Callable[[], Snapshot], wards: Mapping[str, Any] | None, layers: Sequence[Layer], *,
                lang: str = "vi", admin: AdminUnits | None = None) -> dict[str, Collection]:
    """The collections the IOC publishes, by id (``admin``: the administrative units the wards are)."""
    ward_feats = _with_units((wards or {}).get("features", []), admin)
    ward_ids = [str(f["properties"].get("unit_code") or slug(str(f["properties"].get("name", k))) or f"w{k}")
                for k, f in enumerate(ward_feats)]
    out = {
        "sensors": Collection("sensors", "Cảm biến / Sensors",
                              "Every sensor of the city: live status, last value and time, unit, score, open alert",
                              lambda: _sensor_features(snapshot(), lang), "last_time"),
        "alerts": Collection("alerts", "Cảnh báo / Alerts",
                             "The alerts the control room shows (open, acknowledged, recently resolved), at their "
                             "sensors", lambda: _alert_features(snapshot()), "opened_at"),
        "wards": Collection("wards", "Phường, xã / Wards and communes",
                            "The ward, commune and zone polygons of the control room's map",
                            lambda: _plain(ward_feats, ward_ids)),
    }
    for layer in layers:
        spec = layer.spec
        feats = list(layer.features)
        out[spec.id] = Collection(spec.id, f"{spec.name_vi} / {spec.name_en}",
                                  f"{spec.source}. Licence: {spec.licence}. Date: {spec.date}.",
                                  lambda feats=feats: _plain(feats, list(range(1, len(feats) + 1))))
    return out


def extent(features: Sequence[dict[str, Any]], temporal: str | None) -> dict[str, Any]:
    """The collection's spatial (and temporal) extent, as its metadata states it."""
    boxes = [bbox_of(f["geometry"]) for f in features]
    spatial = ([min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
               if boxes else [-180.0, -90.0, 180.0, 90.0])
    out: dict[str, Any] = {"spatial": {"bbox": [spatial], "crs": CRS84}}
    if temporal is not None:
        times = sorted(t for f in features if (t := f["properties"].get(temporal)) is not None)
        out["temporal"] = {"interval": [[times[0], times[-1]] if times else [None, None]],
                           "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return out
