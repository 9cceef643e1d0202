"""Map and drill-down figure builders, and the incremental map Patch."""
from __future__ import annotations

import json

import numpy as np
import plotly.io as pio

from dashboard.figures import (MAP_STYLE, STATUS_COLORS, STATUS_SHAPES, detail_extension, detail_figure, local_iso,
                               map_figure, map_patch, map_view)


def _ops(patch) -> list[dict]:
    return patch.to_plotly_json()["operations"]


def test_map_is_offline_with_ward_layers_and_status_coded_markers(make_snapshot, wards) -> None:
    snap = make_snapshot(status=[0, 1, 2, 3, 0])
    fig = map_figure(snap, wards, "vi")
    assert fig.layout.map.style == MAP_STYLE == "white-bg"
    layers = fig.layout.map.layers
    assert [la.type for la in layers] == ["fill", "fill", "line"]     # backdrop, ward fill, ward outline
    assert layers[1].source["features"][0]["properties"]["name"] == "Ngô Quyền"
    assert all(la.below == "traces" for la in layers)
    b = fig.layout.map.bounds
    assert b.west < 106.14 and b.east > 106.21 and b.south < 21.26 and b.north > 21.31
    outer, inner, alert_outer, alert_inner, ward_points = fig.data
    assert all(tr.type == "scattermap" for tr in fig.data)
    assert list(outer.marker.color) == [0, 1, 2, 3, 0]               # status codes on a fixed scale
    assert outer.marker.cmin == 0 and outer.marker.cmax == 3
    assert [c for _, c in outer.marker.colorscale] == list(STATUS_COLORS)
    assert list(outer.marker.size) == [STATUS_SHAPES[c][0] for c in (0, 1, 2, 3, 0)]
    assert list(inner.marker.size) == [STATUS_SHAPES[c][1] for c in (0, 1, 2, 3, 0)]
    # alerts drawn again on top; ward names for hovering
    assert list(alert_outer.customdata) == [2] and list(alert_inner.lon) == [snap.registry.sensors[2].lon]
    assert "Ngô Quyền" in ward_points.hovertext[0]
    assert "Bụi PM2.5" in outer.hovertext[2]
    assert fig.layout.uirevision == "map"
    # colour and shape differ for every status (not colour alone)
    assert len({s[:2] for s in STATUS_SHAPES}) == 4 and len(set(STATUS_COLORS)) == 4
    assert len(pio.to_json(fig)) < 50_000


def test_map_view_fits_the_wards(make_snapshot, wards) -> None:
    center, zoom = map_view(wards, np.array([]), np.array([]))
    assert center == {"lon": 106.175, "lat": 21.285}
    assert 10 < zoom < 14
    center, _ = map_view(None, np.array([106.0, 106.2]), np.array([21.0, 21.2]))
    assert center == {"lon": 106.1, "lat": 21.1}


def test_map_patch_sends_only_changed_markers(make_snapshot) -> None:
    snap = make_snapshot(seq=9, status=[0, 1, 2, 3, 0], status_rev=[1, 9, 1, 1, 1])
    patch, overlay = map_patch(snap, since_seq=8, overlay=[2], max_changed=10)
    ops = _ops(patch)
    assert overlay == [2]
    # sensor 1 only: colour and size of the outer and inner markers
    assert sorted(tuple(op["location"]) for op in ops) == sorted([
        ("data", 0, "marker", "color", 1), ("data", 0, "marker", "size", 1),
        ("data", 1, "marker", "color", 1), ("data", 1, "marker", "size", 1)])
    assert {op["params"]["value"] for op in ops if op["location"][3] == "color"} == {1}


def test_map_patch_is_none_when_nothing_changed(make_snapshot) -> None:
    snap = make_snapshot(seq=9, status=[0, 0, 2, 3, 0])
    assert map_patch(snap, since_seq=9, overlay=[2]) == (None, [2])


def test_map_patch_moves_the_alert_overlay(make_snapshot) -> None:
    snap = make_snapshot(seq=9, status=[2, 0, 2, 3, 0], status_rev=[9, 1, 1, 1, 1])
    patch, overlay = map_patch(snap, since_seq=8, overlay=[2])
    assert overlay == [0, 2]
    ops = {tuple(op["location"]): op["params"]["value"] for op in _ops(patch)}
    assert ops[("data", 2, "customdata")] == [0, 2] and ops[("data", 3, "customdata")] == [0, 2]
    assert len(ops[("data", 2, "lat")]) == 2


def test_map_patch_replaces_whole_arrays_when_most_markers_changed(make_snapshot) -> None:
    snap = make_snapshot(seq=9, status=[1, 1, 2, 1, 1], status_rev=[9, 9, 1, 9, 9])
    ops = _ops(map_patch(snap, since_seq=8, overlay=[2], max_changed=2)[0])
    whole = {tuple(op["location"]): op["params"]["value"] for op in ops if len(op["location"]) == 4}
    assert whole[("data", 0, "marker", "color")] == [1, 1, 2, 1, 1]
    assert len(json.dumps(ops)) < 1000


def _recent(n: int = 6) -> dict[str, np.ndarray]:
    ts = 1_772_420_400.0 + 300.0 * np.arange(n)
    return {"ts": ts, "value": np.array([10, 11, 10, 30, 10, 11.0])[:n], "baseline": np.full(n, 10.0),
            "scale": np.full(n, 1.0), "score": np.array([0, 0, 0, 0.95, 0.1, 0])[:n]}


def test_detail_figure_has_band_baseline_value_flags_and_limits(make_snapshot) -> None:
    snap = make_snapshot()
    fig = detail_figure(snap, 2, _recent(), "vi")                  # pm25 sensor, limit_high 150
    low, high, base, value, flagged = fig.data
    assert list(low.y) == [6.0] * 6 and list(high.y) == [14.0] * 6 and high.fill == "tonexty"   # 10 +- 4 x 1
    assert list(base.y) == [10.0] * 6
    assert list(value.y) == [10, 11, 10, 30, 10, 11]
    assert list(flagged.y) == [None, None, None, 30.0, None, None] and flagged.x[3] == "2026-03-02T10:15:00"
    assert value.name == "Giá trị đo" and "±4σ" in high.name
    assert any(s.y0 == 150.0 for s in fig.layout.shapes)
    assert detail_figure(snap, 2, _recent(), "en").data[3].name == "Reading"


def test_detail_extension_sends_only_newer_points(make_snapshot) -> None:
    snap = make_snapshot()
    rec = _recent()
    data, traces, window = detail_extension(snap, rec, since=rec["ts"][3], window=128)
    assert traces == [0, 1, 2, 3, 4] and window == 128
    assert data["y"][3] == [10.0, 11.0] and data["y"][4] == [None, None] and len(data["x"][4]) == 2
    assert detail_extension(snap, rec, since=rec["ts"][-1], window=128) is None


def test_local_iso() -> None:
    assert local_iso(np.array([1_772_420_400.0]), 7 * 3600) == ["2026-03-02T10:00:00"]
    assert local_iso(np.array([1_772_420_400.0]), 0) == ["2026-03-02T03:00:00"]
    assert local_iso(np.array([]), 7 * 3600) == []


def test_the_city_layers_go_under_the_sensors_with_their_style_and_visibility(make_snapshot, wards):
    from dashboard.figures import layer_entries, map_figure
    from processing.layers import Layer, LayerSpec, LayerStyle

    def spec(lid, visible):
        return LayerSpec(lid, f"{lid}.geojson", lid, lid, LayerStyle("#112233", 2.5, 0.3), visible, "s", "l", "2026-01-01")
    river = Layer(spec("water", True), ({"type": "Feature", "properties": {}, "geometry": {
        "type": "LineString", "coordinates": [[106.1, 21.2], [106.2, 21.3]]}},))
    zone = Layer(spec("zones", False), ({"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[106.1, 21.2], [106.2, 21.2], [106.2, 21.3], [106.1, 21.2]]]}},))
    entries, slots = layer_entries([river, zone])
    assert slots == {"water": [0], "zones": [1, 2]}
    assert [(e["type"], e["visible"]) for e in entries] == [("line", True), ("fill", False), ("line", False)]
    assert entries[0]["line"]["width"] == 2.5 and entries[1]["opacity"] == 0.3 and entries[0]["below"] == "traces"
    fig = map_figure(make_snapshot(), wards, "vi", layers=[river, zone], visible=["zones"])
    names = [(ly.name, ly.visible) for ly in fig.layout.map.layers if ly.name]
    assert names == [("layer:water", False), ("layer:zones", True), ("layer:zones", True)]
    ward_trace = next(tr for tr in fig.data if tr.name == "wards")
    assert list(ward_trace.text) == ["Ngô Quyền", "Song Mai"]        # the labels' text


def test_configured_tiles_go_under_the_wards_and_a_bad_url_is_refused(make_snapshot, wards):
    import pytest

    from dashboard.figures import TileSource, map_figure

    fig = map_figure(make_snapshot(), wards, "vi", style=TileSource("https://t.example.vn/{z}/{x}/{y}.png", "© Sở TN&MT"))
    raster = [ly for ly in fig.layout.map.layers if ly.sourcetype == "raster"]
    assert len(raster) == 1 and list(raster[0].source) == ["https://t.example.vn/{z}/{x}/{y}.png"]
    assert raster[0].sourceattribution == "© Sở TN&MT" and fig.layout.map.style == "white-bg"
    ward_fill = next(ly for ly in fig.layout.map.layers if ly.type == "fill" and ly.source is not None
                     and len(ly.source.get("features", [])) == 2)
    assert ward_fill.opacity < 0.5                     # the tiles show through the wards
    offline = map_figure(make_snapshot(), wards, "vi")
    assert not [ly for ly in offline.layout.map.layers if ly.sourcetype == "raster"]
    for bad in ("ftp://t/{z}/{x}/{y}", "https://t.example.vn/tiles.png"):
        with pytest.raises(ValueError, match="--tiles"):
            TileSource(bad)
