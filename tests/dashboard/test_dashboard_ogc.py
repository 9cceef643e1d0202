"""The OGC API - Features endpoint through Flask's test client: landing, conformance, collections,
items with bbox, datetime, limit and paging, every item valid RFC 7946 GeoJSON."""
from __future__ import annotations

import math

import pytest

from dashboard.app import create_app
from dashboard.ogc_features import CRS84, QueryError, parse_query
from processing.layers import Layer, LayerSpec, LayerStyle
from tests.dashboard.conftest import T0
from tests.dashboard.fakes import FakeSource

RIVER = Layer(LayerSpec("water", "water.geojson", "Sông", "Rivers", LayerStyle(), True, "schematic", "CC0-1.0",
                        "2026-12-07"),
              ({"type": "Feature", "properties": {"name": "Sông Thương"},
                "geometry": {"type": "LineString", "coordinates": [[106.12, 21.26], [106.28, 21.24]]}},))


@pytest.fixture
def client(make_snapshot, make_alert, wards, auth, sign_in):
    snap = make_snapshot(alerts=(make_alert(1, 2), make_alert(2, 1, opened=T0 - 7200, state="acknowledged",
                                                              acknowledged_by="An")))
    app = create_app(FakeSource(snap), auth=auth, wards=wards, layers=(RIVER,))
    return sign_in(app.server.test_client(), "wall")       # a viewer reads the GIS collections


def _ring_area(ring: list) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0, *_), (x1, y1, *_) in zip(ring, ring[1:])) / 2


def _check_geojson(obj: dict) -> None:
    """The RFC 7946 rules a GIS client relies on, checked here and by an independent validator
    (the ``geojson`` package)."""
    import json

    import geojson

    parsed = geojson.loads(json.dumps(obj))
    assert parsed.is_valid, parsed.errors()
    assert "crs" not in obj                                  # RFC 7946 removed it: CRS84 only
    assert obj["type"] == "FeatureCollection" and isinstance(obj["features"], list)
    for f in obj["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict) and isinstance(f["id"], (str, int))
        g = f["geometry"]
        assert g["type"] in ("Point", "LineString", "Polygon", "MultiPolygon", "MultiLineString", "MultiPoint")
        pts = [g["coordinates"]] if g["type"] == "Point" else (
            g["coordinates"] if g["type"] == "LineString" else [p for r in g["coordinates"] for p in r])
        for lon, lat, *_ in pts:
            assert -180 <= lon <= 180 and -90 <= lat <= 90
        if g["type"] == "Polygon":
            for k, ring in enumerate(g["coordinates"]):
                assert ring[0] == ring[-1] and len(ring) >= 4
                assert (_ring_area(ring) > 0) == (k == 0)    # the right-hand rule: exterior anticlockwise


def test_landing_conformance_and_collections_link_each_other(client):
    land = client.get("/ogc/").get_json()
    rels = {x["rel"]: x["href"] for x in land["links"]}
    assert set(rels) >= {"self", "conformance", "data"}
    conf = client.get(rels["conformance"].replace("http://localhost", "")).get_json()
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf["conformsTo"]
    colls = client.get("/ogc/collections").get_json()["collections"]
    assert [c["id"] for c in colls] == ["sensors", "alerts", "wards", "water"]
    water = next(c for c in colls if c["id"] == "water")
    assert water["crs"] == [CRS84] and water["extent"]["spatial"]["bbox"] == [[106.12, 21.24, 106.28, 21.26]]
    assert "CC0-1.0" in water["description"] and "2026-12-07" in water["description"]
    sensors = client.get("/ogc/collections/sensors").get_json()
    assert "temporal" in sensors["extent"] and any(x["rel"] == "items" for x in sensors["links"])
    assert client.get("/ogc/collections/nope").status_code == 404


def test_items_are_geojson_with_live_status_and_page_by_next_links(client):
    r = client.get("/ogc/collections/sensors/items?limit=2")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    page = r.get_json()
    _check_geojson(page)
    assert page["numberMatched"] == 5 and page["numberReturned"] == 2
    seen = [f["id"] for f in page["features"]]
    while (nxt := next((x["href"] for x in page["links"] if x["rel"] == "next"), None)) is not None:
        page = client.get(nxt.replace("http://localhost", "")).get_json()
        _check_geojson(page)
        seen += [f["id"] for f in page["features"]]
    assert seen == ["BG-TRF-001", "BG-ENV-001", "BG-ENV-010", "BG-UTL-001", "BG-UTL-030"]
    one = client.get("/ogc/collections/sensors/items/BG-ENV-010").get_json()
    p = one["properties"]
    assert (p["status"], p["last_value"], p["open_alert"], p["alert_severity"]) == ("alert", 30.0, 1, "warning")
    assert p["unit"] and p["last_time"].endswith("Z") and math.isclose(p["score"], 0.9)
    assert client.get("/ogc/collections/sensors/items/NOPE").status_code == 404


def test_bbox_and_datetime_select_features(client):
    song_mai = client.get("/ogc/collections/sensors/items?bbox=106.14,21.29,106.17,21.31").get_json()
    assert [f["id"] for f in song_mai["features"]] == ["BG-ENV-001"]
    wards = client.get("/ogc/collections/wards/items?bbox=106.13,21.295,106.145,21.30").get_json()
    assert [f["id"] for f in wards["features"]] == ["song_mai"]           # polygons by their extent
    # alerts opened in the last hour (UTC): alert 2 opened two hours before T0
    from datetime import datetime, timezone
    since = datetime.fromtimestamp(T0 - 3600, timezone.utc).isoformat().replace("+00:00", "Z")
    recent = client.get(f"/ogc/collections/alerts/items?datetime={since}/..").get_json()
    assert [f["id"] for f in recent["features"]] == [1]
    assert recent["features"][0]["properties"]["state"] == "open"
    everything = client.get("/ogc/collections/water/items?datetime=2026-01-01T00:00:00Z").get_json()
    assert everything["numberMatched"] == 1                    # a layer with no time is not filtered by it


@pytest.mark.parametrize("query, says", [
    ("limit=0", "limit: at least 1"), ("limit=x", "limit: a whole number"), ("offset=-1", "offset: 0 or more"),
    ("bbox=1,2,3", "bbox: four numbers"), ("bbox=1,5,3,2", "south <= north"),
    ("datetime=yesterday", "not an RFC 3339"), ("datetime=2026-03-02T10:00:00", "needs a time zone"),
    ("datetime=2026-03-03T00:00:00Z/2026-03-02T00:00:00Z", "ends before it starts"),
    ("bbox=1,2,3,4&bbox-crs=EPSG:3405", "bbox-crs"), ("colour=red", "unknown parameter"),
])
def test_bad_parameters_are_400_naming_them(client, query, says):
    r = client.get(f"/ogc/collections/sensors/items?{query}")
    assert r.status_code == 400 and says in r.get_json()["description"]


def test_the_api_needs_a_user_or_a_token(make_snapshot, wards, auth):
    app = create_app(FakeSource(make_snapshot()), auth=auth, wards=wards)
    r = app.server.test_client().get("/ogc/collections")
    assert r.status_code == 401 and r.is_json


def test_limits_are_capped_and_parsed_exactly():
    assert parse_query({"limit": "50000"}).limit == 10_000
    q = parse_query({"datetime": "../2026-03-02T03:00:00Z", "bbox": "106,21,0,107,22,100"})
    assert q.start is None and q.end is not None and q.bbox == (106.0, 21.0, 107.0, 22.0)
    with pytest.raises(QueryError):
        parse_query({"datetime": "2026-03-02T00:00:00Z/nope"})


def test_every_collection_of_the_shipped_city_is_valid_geojson(make_snapshot, auth, sign_in):
    """The real wards and layers, not only the test's: every page of every collection."""
    from dashboard.app import load_wards_geojson
    from ioc.citydata import default_city_dir, load_admin_units, load_layers

    city = default_city_dir()
    app = create_app(FakeSource(make_snapshot()), auth=auth, wards=load_wards_geojson(city / "wards.geojson"),
                     layers=load_layers(city), admin_units=load_admin_units(city))
    c = sign_in(app.server.test_client(), "wall")
    ids = [x["id"] for x in c.get("/ogc/collections").get_json()["collections"]]
    assert ids == ["sensors", "alerts", "wards", "water", "roads", "flood_zones", "planning_zones"]
    for cid in ids:
        page = c.get(f"/ogc/collections/{cid}/items?limit=10000").get_json()
        _check_geojson(page)
        assert page["numberReturned"] == page["numberMatched"]


def test_wards_carry_their_administrative_unit(make_snapshot, wards, auth, sign_in):
    from ioc.citydata import default_city_dir, load_admin_units

    app = create_app(FakeSource(make_snapshot()), auth=auth, wards=wards, admin_units=load_admin_units(default_city_dir()))
    c = sign_in(app.server.test_client(), "wall")
    feats = {f["id"]: f["properties"] for f in c.get("/ogc/collections/wards/items").get_json()["features"]}
    assert feats["ngo_quyen"]["unit_name"] == "Phường Ngô Quyền" and feats["ngo_quyen"]["level"] == "ward"
    assert feats["ngo_quyen"]["parent"] == "Thành phố Bắc Giang" and feats["ngo_quyen"]["province"] == "Tỉnh Bắc Giang"
    assert feats["song_mai"]["valid_to"] == "2025-06-30"
