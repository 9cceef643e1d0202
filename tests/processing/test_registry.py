"""Registry.from_geojson: every invalid input is one RegistryError naming source, feature and field."""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import pytest

from processing.kinds import KINDS
from processing.registry import Registry, RegistryError

SOURCE = "test-sensors.geojson"


def _feature(sid: str, kind: str, lon: float = 106.2, lat: float = 21.27, **props: Any) -> dict:
    spec = KINDS[kind]
    p = {"id": sid, "name": f"Cảm biến {sid}", "domain": spec.domain, "kind": kind, "unit": spec.unit,
         "ward": "Trần Phú", "interval_s": 300}
    p.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": p}


def _good() -> dict:
    return {"type": "FeatureCollection", "features": [
        _feature("BG-TRF-001", "vehicle_count"),
        _feature("BG-ENV-001", "pm25", limit_high=150.0, ward="Ngô Quyền"),
        _feature("BG-UTL-001", "water_pressure", interval_s=60, limit_low=1.0, ward="Lê Lợi"),
        _feature("BG-ENV-002", "water_level", interval_s=600, limit_high=6.3, alert_level_1=4.3),
    ]}


def _props(fc: dict, i: int) -> dict:
    return fc["features"][i]["properties"]


def test_good_collection_builds_arrays() -> None:
    reg = Registry.from_geojson(_good(), SOURCE)
    assert len(reg) == 4
    assert reg.ids == ["BG-TRF-001", "BG-ENV-001", "BG-UTL-001", "BG-ENV-002"]
    np.testing.assert_array_equal(reg.interval_s, [300.0, 300.0, 60.0, 600.0])
    assert reg.interval_s.dtype == np.float64
    assert np.isnan(reg.limit_low[[0, 1, 3]]).all() and reg.limit_low[2] == 1.0
    assert np.isnan(reg.limit_high[[0, 2]]).all()
    assert reg.limit_high[1] == 150.0 and reg.limit_high[3] == 6.3
    kinds = list(KINDS)
    np.testing.assert_array_equal(reg.kind_code, [kinds.index(k) for k in
                                                  ("vehicle_count", "pm25", "water_pressure", "water_level")])
    assert reg.wards == sorted({"Trần Phú", "Ngô Quyền", "Lê Lợi"})
    assert reg.index_of("BG-UTL-001") == 2
    assert reg.index_of("BG-XXX-999") == -1
    idx = reg.indices(["BG-ENV-002", "nope", "BG-TRF-001"])
    assert idx.dtype == np.int32
    np.testing.assert_array_equal(idx, [3, -1, 0])
    assert reg["BG-ENV-001"].unit == "µg/m³"
    assert reg[0].name == "Cảm biến BG-TRF-001"
    assert not reg.interval_s.flags.writeable


def test_name_defaults_to_id() -> None:
    fc = _good()
    del _props(fc, 0)["name"]
    assert Registry.from_geojson(fc, SOURCE)[0].name == "BG-TRF-001"


@pytest.mark.parametrize("obj, field", [
    ([], "type"),
    ({"type": "Feature"}, "type"),
    ({"type": "FeatureCollection"}, "features"),
    ({"type": "FeatureCollection", "features": []}, "features"),
    ({"type": "FeatureCollection", "features": {}}, "features"),
])
def test_collection_level_errors(obj: Any, field: str) -> None:
    with pytest.raises(RegistryError) as e:
        Registry.from_geojson(obj, SOURCE)
    msg = str(e.value)
    assert msg.startswith(SOURCE) and f"'{field}'" in msg
    assert "\n" not in msg


Mutation = Callable[[dict], None]


def _set(i: int, key: str, value: Any) -> Mutation:
    def f(fc: dict) -> None:
        _props(fc, i)[key] = value
    return f


def _del(i: int, key: str) -> Mutation:
    def f(fc: dict) -> None:
        del _props(fc, i)[key]
    return f


def _coords(i: int, value: Any) -> Mutation:
    def f(fc: dict) -> None:
        fc["features"][i]["geometry"]["coordinates"] = value
    return f


# (case, mutation, feature index, id expected in the message or None, field)
CASES: list[tuple[str, Mutation, int, str | None, str]] = [
    ("missing id", _del(1, "id"), 1, None, "id"),
    ("empty id", _set(1, "id", ""), 1, None, "id"),
    ("non-string id", _set(1, "id", 17), 1, None, "id"),
    ("id with spaces", _set(1, "id", "BG ENV 001"), 1, None, "id"),
    ("duplicate id", _set(2, "id", "BG-TRF-001"), 2, "BG-TRF-001", "id"),
    ("wrong domain", _set(1, "domain", "weather"), 1, "BG-ENV-001", "domain"),
    ("missing domain", _del(1, "domain"), 1, "BG-ENV-001", "domain"),
    ("unknown kind", _set(1, "kind", "pm1"), 1, "BG-ENV-001", "kind"),
    ("kind/domain mismatch", _set(1, "domain", "traffic"), 1, "BG-ENV-001", "kind"),
    ("wrong unit", _set(1, "unit", "ug/m3"), 1, "BG-ENV-001", "unit"),
    ("missing unit", _del(1, "unit"), 1, "BG-ENV-001", "unit"),
    ("missing ward", _del(2, "ward"), 2, "BG-UTL-001", "ward"),
    ("blank ward", _set(2, "ward", "  "), 2, "BG-UTL-001", "ward"),
    ("longitude out of range", _coords(3, [206.2, 21.27]), 3, "BG-ENV-002", "geometry.coordinates"),
    ("latitude out of range", _coords(3, [106.2, 121.27]), 3, "BG-ENV-002", "geometry.coordinates"),
    ("one coordinate", _coords(3, [106.2]), 3, "BG-ENV-002", "geometry.coordinates"),
    ("string coordinates", _coords(3, ["106.2", "21.27"]), 3, "BG-ENV-002", "geometry.coordinates"),
    ("zero interval", _set(0, "interval_s", 0), 0, "BG-TRF-001", "interval_s"),
    ("negative interval", _set(0, "interval_s", -300), 0, "BG-TRF-001", "interval_s"),
    ("missing interval", _del(0, "interval_s"), 0, "BG-TRF-001", "interval_s"),
    ("string interval", _set(0, "interval_s", "300"), 0, "BG-TRF-001", "interval_s"),
    ("bool interval", _set(0, "interval_s", True), 0, "BG-TRF-001", "interval_s"),
    ("limit_low == limit_high", _set(2, "limit_high", 1.0), 2, "BG-UTL-001", "limit_low"),
    ("limit_low > limit_high", _set(2, "limit_high", 0.5), 2, "BG-UTL-001", "limit_low"),
    ("NaN limit_high", _set(1, "limit_high", math.nan), 1, "BG-ENV-001", "limit_high"),
    ("NaN limit_low", _set(2, "limit_low", math.nan), 2, "BG-UTL-001", "limit_low"),
    ("infinite limit", _set(1, "limit_high", math.inf), 1, "BG-ENV-001", "limit_high"),
]


@pytest.mark.parametrize("case, mutate, index, sid, field", CASES, ids=[c[0] for c in CASES])
def test_feature_errors_name_source_feature_and_field(case: str, mutate: Mutation, index: int,
                                                      sid: str | None, field: str) -> None:
    fc = copy.deepcopy(_good())
    mutate(fc)
    with pytest.raises(RegistryError) as e:
        Registry.from_geojson(fc, SOURCE)
    msg = str(e.value)
    assert msg.startswith(f"{SOURCE}: feature {index}"), msg
    if sid is not None:
        assert f"({sid})" in msg, msg
    assert f"'{field}'" in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("feature, field", [
    ("not a feature", "type"),
    ({"type": "Feature", "geometry": None}, "properties"),
    ({"type": "Feature", "properties": {"id": "X1"}, "geometry": {"type": "LineString", "coordinates": []}},
     "geometry"),
])
def test_malformed_features(feature: Any, field: str) -> None:
    fc = _good()
    fc["features"].append(feature)
    with pytest.raises(RegistryError) as e:
        Registry.from_geojson(fc, SOURCE)
    assert str(e.value).startswith(f"{SOURCE}: feature 4") and f"'{field}'" in str(e.value)


def test_registry_error_is_value_error() -> None:
    assert issubclass(RegistryError, ValueError)
