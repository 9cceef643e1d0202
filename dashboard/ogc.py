"""OGC API -- Features (Part 1: Core, GeoJSON), read-only, at ``/ogc/``: the city for GIS clients.

QGIS, GDAL (``ogrinfo OAPIF:http://HOST:8050/ogc/``) and the provincial portal read the IOC's
live sensors, its alerts, the wards and every configured layer (:mod:`dashboard.ogc_features`)::

    GET /ogc/                                  landing page (links)
    GET /ogc/conformance                       the conformance classes met
    GET /ogc/collections                       every collection, with its extent
    GET /ogc/collections/{id}                  one
    GET /ogc/collections/{id}/items            GeoJSON FeatureCollection; bbox, datetime, limit, offset
    GET /ogc/collections/{id}/items/{fid}      one Feature

Like ``/api/``, it needs a signed-in user or an API token (``Authorization: Bearer ioc_…``; for
GDAL: ``GDAL_HTTP_HEADER_FILE`` naming a file with that header line); a missing one is 401 JSON.
Items are ``application/geo+json``, in CRS84; paging follows the ``next`` links; a bad
parameter is a 400 naming it.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

from flask import Blueprint, Flask, Response, jsonify, request

from dashboard.ogc_features import CRS84, Collection, QueryError, collections, extent, parse_query, select
from dashboard.source import Snapshot
from processing.admin_units import AdminUnits
from processing.layers import Layer

__all__ = ["CONFORMANCE", "register_ogc"]

CONFORMANCE = ("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson")
GEOJSON = "application/geo+json"
_KNOWN = {"limit", "offset", "bbox", "bbox-crs", "datetime", "f"}


def _json(obj: Any, status: int = 200, mime: str = "application/json") -> Response:
    r = jsonify(obj)
    r.status_code = status
    r.mimetype = mime
    return r


def _error(status: int, code: str, text: str) -> Response:
    return _json({"code": code, "description": text}, status)


def register_ogc(server: Flask, snapshot: Callable[[], Snapshot], wards: Mapping[str, Any] | None,
                 layers: Sequence[Layer], *, title: str, lang: str = "vi", admin: AdminUnits | None = None) -> None:
    """Add the ``/ogc/`` routes to the Dash app's Flask server."""
    bp = Blueprint("ioc_ogc", __name__)
    colls = collections(snapshot, wards, layers, lang=lang, admin=admin)

    def base() -> str:
        return request.host_url.rstrip("/") + "/ogc"

    def describe(c: Collection, feats: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        href = f"{base()}/collections/{c.id}"
        return {"id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
                "crs": [CRS84], "storageCrs": CRS84,
                "extent": extent(c.features() if feats is None else feats, c.temporal),
                "links": [{"href": href, "rel": "self", "type": "application/json", "title": "this collection"},
                          {"href": f"{href}/items", "rel": "items", "type": GEOJSON, "title": "its features"}]}

    def lookup(cid: str) -> Collection | Response:
        c = colls.get(cid)
        return c if c is not None else _error(404, "NotFound", f"no collection {cid!r}; see {base()}/collections")

    @bp.get("/ogc")
    @bp.get("/ogc/")
    def landing() -> Response:
        b = base()
        return _json({"title": title, "description": "City IOC: live sensors, alerts, wards and map layers "
                                                      "(OGC API - Features, read-only)",
                      "links": [{"href": f"{b}/", "rel": "self", "type": "application/json", "title": "this document"},
                                {"href": f"{b}/conformance", "rel": "conformance", "type": "application/json",
                                 "title": "conformance classes"},
                                {"href": f"{b}/collections", "rel": "data", "type": "application/json",
                                 "title": "the collections"}]})

    @bp.get("/ogc/conformance")
    def conformance() -> Response:
        return _json({"conformsTo": list(CONFORMANCE)})

    @bp.get("/ogc/collections")
    def all_collections() -> Response:
        b = base()
        return _json({"links": [{"href": f"{b}/collections", "rel": "self", "type": "application/json"}],
                      "collections": [describe(c) for c in colls.values()]})

    @bp.get("/ogc/collections/<cid>")
    def one_collection(cid: str) -> Response:
        c = lookup(cid)
        return c if isinstance(c, Response) else _json(describe(c))

    @bp.get("/ogc/collections/<cid>/items")
    def items(cid: str) -> Response:
        c = lookup(cid)
        if isinstance(c, Response):
            return c
        unknown = sorted(set(request.args) - _KNOWN)
        if unknown:
            return _error(400, "InvalidParameterValue", f"unknown parameter(s) {', '.join(unknown)}; "
                                                        f"this server takes {', '.join(sorted(_KNOWN))}")
        try:
            q = parse_query(request.args)
            page, matched = select(c.features(), q, c.temporal)
        except QueryError as exc:
            return _error(400, "InvalidParameterValue", str(exc))
        href = f"{base()}/collections/{c.id}/items"
        keep = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}

        def link(offset: int, rel: str) -> dict[str, Any]:
            from urllib.parse import urlencode
            return {"href": f"{href}?{urlencode({**keep, 'limit': q.limit, 'offset': offset})}", "rel": rel,
                    "type": GEOJSON}
        links = [link(q.offset, "self"), {"href": f"{base()}/collections/{c.id}", "rel": "collection",
                                          "type": "application/json"}]
        if q.offset + len(page) < matched:
            links.append(link(q.offset + q.limit, "next"))
        if q.offset > 0:
            links.append(link(max(0, q.offset - q.limit), "prev"))
        return _json({"type": "FeatureCollection", "features": page, "numberMatched": matched,
                      "numberReturned": len(page), "timeStamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "links": links}, mime=GEOJSON)

    @bp.get("/ogc/collections/<cid>/items/<fid>")
    def item(cid: str, fid: str) -> Response:
        c = lookup(cid)
        if isinstance(c, Response):
            return c
        for f in c.features():
            if str(f["id"]) == fid:
                href = f"{base()}/collections/{c.id}/items/{fid}"
                return _json({**f, "links": [{"href": href, "rel": "self", "type": GEOJSON},
                                             {"href": f"{base()}/collections/{c.id}", "rel": "collection",
                                              "type": "application/json"}]}, mime=GEOJSON)
        return _error(404, "NotFound", f"no feature {fid!r} in {c.id!r}")

    server.register_blueprint(bp)
