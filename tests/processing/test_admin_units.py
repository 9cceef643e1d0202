"""Administrative units as data: the 1 July 2025 reorganisation in dates, parents and successors."""
from __future__ import annotations

import pytest

from ioc.citydata import default_city_dir, load_admin_units, load_wards
from processing.admin_units import parse_admin_units
from processing.errors import ConfigError

BASE = {"date": "2026-12-07", "source": "test"}


def test_the_shipped_units_say_what_changed_on_1_july_2025():
    units = load_admin_units(default_city_dir())
    assert units is not None and units.date == "2026-12-07"
    chain = [u.name for u in units.chain("ngo_quyen")]
    assert chain == ["Phường Ngô Quyền", "Thành phố Bắc Giang", "Tỉnh Bắc Giang"]
    assert units.get("bac_giang_province").successor == "bac_ninh"
    assert [u.code for u in units.on("2025-07-01")] == ["bac_ninh"]          # the district level is gone
    before = {u.short_name for u in units.on("2025-06-30") if u.level in ("ward", "commune")}
    wards = load_wards(default_city_dir() / "wards.geojson")
    mapped = {n for n in wards.names if not n.startswith("KCN")}
    assert before == mapped                  # every ward and commune of the map is a unit of the file


@pytest.mark.parametrize("units, says", [
    ([{"code": "a", "name": "A", "level": "ward"}], "units[0].parent: a ward belongs to a unit above it"),
    ([{"code": "a", "name": "A", "level": "canton"}], "units[0].level: one of province"),
    ([{"code": "A", "name": "A", "level": "province"}], "units[0].code"),
    ([{"code": "a", "name": "A", "level": "province", "valid_to": "30/06/2025"}], "units[0].valid_to"),
    ([{"code": "a", "name": "A", "level": "province", "valid_from": "2025-07-01", "valid_to": "2025-06-30"}],
     "is after valid_to"),
    ([{"code": "a", "name": "A", "level": "province"}, {"code": "a", "name": "B", "level": "province"}], "used twice"),
    ([{"code": "a", "name": "A", "level": "province", "successor": "z"}], "units[0].successor: no unit 'z'"),
    ([{"code": "a", "name": "A", "level": "province", "area": "1"}], "unknown field(s) area"),
])
def test_every_problem_is_one_line_naming_the_field(units, says):
    with pytest.raises(ConfigError) as err:
        parse_admin_units({**BASE, "units": units}, "admin_units.toml")
    assert says in str(err.value) and str(err.value).startswith("admin_units.toml: ")
