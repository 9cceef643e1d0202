"""The committed Bắc Giang configuration loads and is consistent; loader errors name the file."""
from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ioc.citydata import Wards, default_city_dir, load_registry, load_wards, point_in_ward
from processing.kinds import KINDS
from processing.errors import ConfigError
from processing.registry import Registry, RegistryError

CITY_DIR = Path(__file__).resolve().parents[2] / "config" / "bac_giang"
SENSORS = CITY_DIR / "sensors.geojson"
WARDS = CITY_DIR / "wards.geojson"

EXPECTED_WARDS = {
    # phường
    "Trần Phú", "Ngô Quyền", "Hoàng Văn Thụ", "Lê Lợi", "Thọ Xương", "Trần Nguyên Hãn", "Mỹ Độ",
    "Xương Giang", "Đa Mai", "Dĩnh Kế",
    # xã
    "Song Mai", "Dĩnh Trì", "Tân Mỹ", "Đồng Sơn", "Tân Tiến", "Song Khê",
    # khu công nghiệp
    "KCN Song Khê – Nội Hoàng", "KCN Đình Trám",
}
EXPECTED_INTERVALS = {
    "vehicle_count": {300}, "avg_speed": {300}, "occupancy": {300}, "noise_laeq": {300},
    "water_level": {600}, "streetlight_current": {300},
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(SENSORS)


@pytest.fixture(scope="module")
def wards() -> Wards:
    return load_wards(WARDS)


@pytest.fixture(scope="module")
def raw_sensors() -> dict:
    return json.loads(SENSORS.read_text(encoding="utf-8"))


def test_default_city_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IOC_CITY_DIR", raising=False)
    assert default_city_dir() == CITY_DIR
    monkeypatch.setenv("IOC_CITY_DIR", str(tmp_path))
    assert default_city_dir() == tmp_path


def test_committed_files_load(registry: Registry, wards: Wards) -> None:
    assert len(registry) >= 150
    assert set(wards.names) == EXPECTED_WARDS
    assert len(wards) == len(EXPECTED_WARDS)


def test_every_kind_present_several_times(registry: Registry) -> None:
    counts = Counter(s.kind for s in registry.sensors)
    for kind in KINDS:
        assert counts[kind] >= 3, f"{kind}: {counts[kind]}"
    assert {s.domain for s in registry.sensors} == {"traffic", "environment", "utility"}


def test_ids_follow_domain_prefix(registry: Registry) -> None:
    prefix = {"traffic": "BG-TRF-", "environment": "BG-ENV-", "utility": "BG-UTL-"}
    for s in registry.sensors:
        assert s.id.startswith(prefix[s.domain]) and s.id[-3:].isdigit(), s.id


def test_units_and_intervals(registry: Registry) -> None:
    for s in registry.sensors:
        assert s.unit == KINDS[s.kind].unit
        if s.kind in EXPECTED_INTERVALS:
            assert s.interval_s in EXPECTED_INTERVALS[s.kind], (s.id, s.interval_s)
        if s.kind in ("pm25", "pm10"):
            assert 300 <= s.interval_s <= 600
        if s.domain == "utility":
            assert 60 <= s.interval_s <= 300


def test_regulatory_limits(registry: Registry, raw_sensors: dict) -> None:
    for s in registry.sensors:
        if s.kind == "pm25":
            assert s.limit_high == 150.0
        elif s.kind == "pm10":
            assert s.limit_high == 350.0
        elif s.kind == "noise_laeq":
            assert s.limit_high in (55.0, 70.0)
        elif s.kind == "water_pressure":
            assert s.limit_low == 1.0
        elif s.kind == "feeder_load":
            assert s.limit_high is not None and 0 < s.limit_high <= KINDS["feeder_load"].valid_max
    for f in raw_sensors["features"]:
        p = f["properties"]
        if p["kind"] == "water_level":
            assert (p["alert_level_1"], p["alert_level_2"], p["alert_level_3"]) == (4.3, 5.3, 6.3)
            assert p["limit_high"] == p["alert_level_3"]
        if p["kind"] == "feeder_load":
            assert p["limit_high"] == p["rated_mw"]


def test_every_sensor_inside_its_ward(registry: Registry, wards: Wards) -> None:
    assert set(registry.wards) <= set(wards.names)
    for s in registry.sensors:
        assert wards.index_of(s.ward) >= 0, (s.id, s.ward)
        assert point_in_ward(wards, s.lon, s.lat) == s.ward, (s.id, s.name, s.ward)


def test_coordinates_in_bac_giang(registry: Registry, wards: Wards) -> None:
    for s in registry.sensors:
        assert 21.20 <= s.lat <= 21.36 and 106.10 <= s.lon <= 106.32, (s.id, s.lon, s.lat)
    for name, ring in zip(wards.names, wards.rings):
        assert ((ring[:, 1] >= 21.20) & (ring[:, 1] <= 21.36)).all(), name
        assert ((ring[:, 0] >= 106.10) & (ring[:, 0] <= 106.32)).all(), name


def test_ward_polygons_are_closed_and_do_not_overlap(wards: Wards) -> None:
    for ring in wards.rings:
        assert np.array_equal(ring[0], ring[-1])
        assert len(ring) >= 4
    # sample a grid over the map: no point may be inside two polygons
    from ioc.citydata import _ring_contains
    for lon in np.linspace(106.10, 106.30, 41):
        for lat in np.linspace(21.21, 21.33, 25):
            inside = [n for n, r in zip(wards.names, wards.rings) if _ring_contains(r, float(lon), float(lat))]
            assert len(inside) <= 1, (lon, lat, inside)


def test_ward_properties(raw_sensors: dict) -> None:
    fc = json.loads(WARDS.read_text(encoding="utf-8"))
    types = {f["properties"]["name"]: f["properties"]["type"] for f in fc["features"]}
    assert types["Trần Phú"] == "ward" and types["Song Mai"] == "commune"
    assert types["KCN Đình Trám"] == "industrial_zone"
    for f in fc["features"]:
        assert f["properties"]["approximate"] is True
        assert "approximate" in f["properties"]["note"]
    for obj in (fc, raw_sensors):
        meta = obj["metadata"]
        assert meta["city"] == "Bắc Giang"
        assert meta["source"] == "generated by scripts/make_bac_giang_registry.py"
        assert "WGS84" in meta["crs"]
        assert meta["approximate"] is True


def test_names_are_vietnamese_nfc(registry: Registry) -> None:
    for s in registry.sensors:
        assert unicodedata.normalize("NFC", s.name) == s.name
        assert unicodedata.normalize("NFC", s.ward) == s.ward
    names = " ".join(s.name for s in registry.sensors)
    for word in ("Nút giao", "Hùng Vương", "Trạm quan trắc không khí", "sông Thương", "Xương Giang"):
        assert word in names
    assert any(not s.name.isascii() for s in registry.sensors)


def test_point_in_ward_outside_is_none(wards: Wards) -> None:
    assert point_in_ward(wards, 105.80, 21.03) is None  # Hà Nội
    assert point_in_ward(wards, 106.1925, 21.2748) == "Ngô Quyền"


# -------------------------------------------------------------------------- loader errors

def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "sensors.geojson"
    for loader in (load_registry, load_wards):
        with pytest.raises(RegistryError) as e:
            loader(path)
        assert str(path) in str(e.value) and "not found" in str(e.value)


def test_json_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "sensors.geojson"
    path.write_text('{\n  "type": "FeatureCollection",\n  "features": [,]\n}\n', encoding="utf-8")
    for loader in (load_registry, load_wards):
        with pytest.raises(RegistryError) as e:
            loader(path)
        msg = str(e.value)
        assert str(path) in msg and "line 3" in msg and "column 16" in msg, msg
        assert e.value.__cause__ is None and e.value.__suppress_context__


def test_registry_content_error_names_file(tmp_path: Path, raw_sensors: dict) -> None:
    fc = json.loads(json.dumps(raw_sensors))
    fc["features"][5]["properties"]["unit"] = "ug/m3"
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RegistryError) as e:
        load_registry(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: feature 5 (") and "'unit'" in msg


def _wards_fc() -> dict:
    ring = [[106.19, 21.26], [106.21, 21.26], [106.21, 21.28], [106.19, 21.28], [106.19, 21.26]]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Trần Phú", "type": "ward"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {"name": "Song Mai", "type": "commune"},
         "geometry": {"type": "Polygon", "coordinates": [[[x + 0.05, y] for x, y in ring]]}},
    ]}


def test_load_wards_minimal(tmp_path: Path) -> None:
    path = tmp_path / "wards.geojson"
    path.write_text(json.dumps(_wards_fc(), ensure_ascii=False), encoding="utf-8")
    w = load_wards(path)
    assert w.names == ("Trần Phú", "Song Mai") and w.types == ("ward", "commune")
    assert w.rings[0].shape == (5, 2) and not w.rings[0].flags.writeable
    assert point_in_ward(w, 106.20, 21.27) == "Trần Phú"
    assert point_in_ward(w, 106.25, 21.27) == "Song Mai"
    assert point_in_ward(w, 106.23, 21.27) is None


@pytest.mark.parametrize("mutate, field", [
    (lambda fc: fc["features"][1]["properties"].pop("name"), "name"),
    (lambda fc: fc["features"][1]["properties"].update(type="district"), "type"),
    (lambda fc: fc["features"][1]["properties"].update(name="Trần Phú"), "name"),
    (lambda fc: fc["features"][1]["geometry"].update(type="Point"), "geometry"),
    (lambda fc: fc["features"][1]["geometry"]["coordinates"][0].pop(), "geometry.coordinates"),
    (lambda fc: fc["features"][1]["geometry"]["coordinates"][0].__setitem__(2, [106.2, "x"]),
     "geometry.coordinates"),
    (lambda fc: fc["features"][1]["geometry"]["coordinates"][0].__setitem__(2, [106.2, 95.0]),
     "geometry.coordinates"),
    (lambda fc: fc["features"][1]["geometry"].update(coordinates=[[[106.2, 21.2]] * 3]),
     "geometry.coordinates"),
    (lambda fc: fc["features"][1].update(properties=None), "properties"),
])
def test_load_wards_errors_name_file_feature_field(tmp_path: Path, mutate, field: str) -> None:
    fc = _wards_fc()
    mutate(fc)
    path = tmp_path / "wards.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RegistryError) as e:
        load_wards(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: feature 1") and f"'{field}'" in msg, msg


def test_load_wards_not_a_collection(tmp_path: Path) -> None:
    path = tmp_path / "wards.geojson"
    path.write_text('{"type": "Feature"}', encoding="utf-8")
    with pytest.raises(RegistryError, match="FeatureCollection"):
        load_wards(path)


def test_the_shipped_layers_load_with_provenance_and_valid_geometry():
    from ioc.citydata import default_city_dir, load_layers

    layers = load_layers(default_city_dir())
    assert [lay.spec.id for lay in layers] == ["water", "roads", "flood_zones", "planning_zones"]
    for lay in layers:
        assert lay.features and lay.spec.source and lay.spec.licence and lay.spec.date
        assert all(f["properties"].get("name") for f in lay.features)
    names = {f["properties"]["name"] for lay in layers for f in lay.features}
    assert "Sông Thương" in names


def test_a_city_without_a_layers_folder_has_none_and_a_broken_file_is_one_line(tmp_path):
    from ioc.citydata import load_layers

    assert load_layers(tmp_path) == ()
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "layers.toml").write_text(
        '[[layers]]\nid = "x"\nfile = "x.geojson"\nname = { vi = "X", en = "X" }\nsource = "s"\nlicence = "l"\n'
        'date = "2026-01-01"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="layer 'x': .*x.geojson: file not found"):
        load_layers(tmp_path)
    (tmp_path / "layers" / "x.geojson").write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                                                   '"properties": {}, "geometry": {"type": "Point", '
                                                   '"coordinates": [21.2, 106.1]}}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="x.geojson: feature 0: position"):
        load_layers(tmp_path)
