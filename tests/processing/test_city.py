"""city.toml validated into a CityProfile: every mistake is one line naming the key."""
from __future__ import annotations

import pytest

from processing.city import CityProfile, parse_city
from processing.errors import ConfigError

GOOD = {"id": "bac_giang", "utc_offset": "+07:00", "sender": "ioc@bacgiang.gov.vn", "timezone": "Asia/Ho_Chi_Minh",
        "name": {"vi": "Bắc Giang", "en": "Bac Giang"}, "title": {"vi": "Thành phố Bắc Giang", "en": "Bắc Giang City"}}


def test_a_good_profile_and_its_defaults() -> None:
    c = parse_city(GOOD, "city.toml")
    assert isinstance(c, CityProfile) and c.utc_offset_s == 7 * 3600 and c.offset_label == "+07:00"
    assert c.text("title", "vi") == "Thành phố Bắc Giang" and c.text("name", "en") == "Bac Giang"
    assert c.text("center", "en") == "Bac Giang IOC" and c.text("local_time", "vi") == "giờ địa phương"
    assert c.languages == ("vi", "en") and c.timezone_name == "Asia/Ho_Chi_Minh"
    assert c.clock(1_772_384_400.0) == (0, 0)                  # Monday 2026-03-02 00:00 local
    assert c.iso(1_772_384_400.9) == "2026-03-02T00:00:00+07:00"
    west = parse_city(dict(GOOD, utc_offset="-03:30"), "city.toml")
    assert west.utc_offset_s == -12_600 and west.offset_label == "-03:30"
    assert west.iso(0.0) == "1969-12-31T20:30:00-03:30"
    with pytest.raises(KeyError):
        c.text("mayor", "vi")


@pytest.mark.parametrize("change, message", [
    ({"utc_offset": "7"}, "city.toml: utc_offset: expected an offset like +07:00, got '7'"),
    ({"utc_offset": "+15:00"}, "city.toml: utc_offset: expected an offset like +07:00, got '+15:00'"),
    ({"utc_offset": None}, "city.toml: utc_offset: expected an offset like +07:00, got None"),
    ({"id": "Bắc Giang"}, "city.toml: id: expected lower-case letters, digits and '_', got 'Bắc Giang'"),
    ({"id": ""}, "city.toml: id: expected a non-empty string, got ''"),
    ({"sender": "ioc at bacgiang"}, "city.toml: sender: expected an address like ioc@city.gov.vn"),
    ({"name": {"vi": "Bắc Giang"}}, "city.toml: [name] en: expected a non-empty string, got None"),
    ({"name": "Bắc Giang"}, "city.toml: [name]: expected a table with vi and en"),
    ({"title": {"vi": "x", "en": "y", "fr": "z"}}, "city.toml: [title] fr: unknown language; known: vi, en"),
    ({"languages": ["vi", "fr"]}, "city.toml: languages: 'fr' has no texts; known: vi, en"),
    ({"languages": ["vi", "vi"]}, "city.toml: languages: expected a list of distinct language codes"),
    ({"languages": []}, "city.toml: languages: expected a list of distinct language codes"),
    ({"mayor": "x"}, "city.toml: mayor: unknown key; known: center, id, languages, local_time, name, sender"),
])
def test_each_mistake_is_one_line_naming_the_key(change: dict, message: str) -> None:
    obj = {**GOOD, **change}
    obj = {k: v for k, v in obj.items() if not (k == "utc_offset" and v is None)}
    with pytest.raises(ConfigError) as exc:
        parse_city(obj, "city.toml")
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_not_a_table() -> None:
    with pytest.raises(ConfigError, match="city.toml: top level must be a table"):
        parse_city([], "city.toml")  # type: ignore[arg-type]
