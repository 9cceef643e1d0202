"""The city's map layers: layers.toml validated field by field, the GeoJSON checked as RFC 7946 asks."""
from __future__ import annotations

import pytest

from processing.errors import ConfigError
from processing.layers import bbox_of, check_features, parse_layers

GOOD = {"id": "water", "file": "water.geojson", "name": {"vi": "Sông", "en": "Rivers"},
        "style": {"color": "#3f8fd6", "width": 3, "opacity": 0.5}, "visible": False,
        "source": "schematic", "licence": "CC0-1.0", "date": "2026-12-07"}


def test_a_layer_is_read_with_its_names_style_and_provenance():
    (spec,) = parse_layers({"layers": [GOOD]}, "layers.toml")
    assert (spec.id, spec.name("vi"), spec.name("en"), spec.visible) == ("water", "Sông", "Rivers", False)
    assert (spec.style.color, spec.style.width, spec.style.opacity) == ("#3f8fd6", 3.0, 0.5)
    assert (spec.source, spec.licence, spec.date) == ("schematic", "CC0-1.0", "2026-12-07")
    assert parse_layers({}, "layers.toml") == ()


@pytest.mark.parametrize("change, says", [
    ({"id": "Water"}, "layers[0].id: a lower-case identifier"),
    ({"id": "sensors"}, "reserved for the IOC's own collections"),
    ({"file": "../etc/passwd.geojson"}, "layers[0].file"),
    ({"name": {"vi": "Sông"}}, "layers[0].name: a table with 'vi' and 'en'"),
    ({"licence": " "}, "layers[0].licence: say where"),
    ({"date": "07/12/2026"}, "layers[0].date: the data's date as YYYY-MM-DD"),
    ({"style": {"color": "blue"}}, "layers[0].style.color"),
    ({"style": {"width": 0}}, "layers[0].style.width"),
    ({"style": {"opacity": 2}}, "layers[0].style.opacity"),
    ({"visible": "yes"}, "layers[0].visible"),
    ({"colour": "x"}, "unknown field(s) colour"),
])
def test_every_bad_field_is_one_line_naming_it(change, says):
    with pytest.raises(ConfigError) as err:
        parse_layers({"layers": [{**GOOD, **change}]}, "config/x/layers/layers.toml")
    assert says in str(err.value) and str(err.value).startswith("config/x/layers/layers.toml: ")
    assert "\n" not in str(err.value)


def test_an_id_used_twice_is_refused():
    with pytest.raises(ConfigError, match="layers\\[1\\].id: 'water' is used twice"):
        parse_layers({"layers": [GOOD, GOOD]}, "layers.toml")


def _fc(geometry):
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "x"},
                                                      "geometry": geometry}]}


def test_features_are_checked_as_rfc_7946_asks():
    line = {"type": "LineString", "coordinates": [[106.1, 21.2], [106.2, 21.3]]}
    assert check_features(_fc(line), "f.geojson")[0]["geometry"] == line
    with pytest.raises(ConfigError, match="feature 0: position \\[21.2, 106.1\\] is not \\[longitude, latitude\\]"):   # latitude and longitude swapped
        check_features(_fc({"type": "LineString", "coordinates": [[21.2, 106.1], [21.3, 200.0]]}), "f.geojson")
    with pytest.raises(ConfigError, match="last equal to the first"):
        check_features(_fc({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}), "f.geojson")
    with pytest.raises(ConfigError, match="geometry type 'Circle'"):
        check_features(_fc({"type": "Circle", "coordinates": [0, 0]}), "f.geojson")
    with pytest.raises(ConfigError, match="not a GeoJSON FeatureCollection"):
        check_features({"type": "Feature"}, "f.geojson")
    assert bbox_of({"type": "Point", "coordinates": [106.2, 21.3]}) == (106.2, 21.3, 106.2, 21.3)
