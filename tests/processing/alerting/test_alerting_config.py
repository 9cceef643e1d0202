"""alerting.toml validation: the shipped file loads; every error is one line naming file, table and key."""
from __future__ import annotations

import copy
import tomllib

import pytest

from ioc.citydata import default_city_dir, load_city, load_registry
from processing.alerting.config import ConfigError, parse_config

CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
SRC = "config/bac_giang/alerting.toml"
RAW = tomllib.loads((CITY / "alerting.toml").read_text("utf-8"))


def parse(obj: dict) -> object:
    return parse_config(obj, SRC, city=load_city(CITY / "city.toml"), wards=REG.wards, sensor_ids=REG.ids)


def test_the_shipped_config_is_valid() -> None:
    cfg = parse(RAW)
    assert {t.id for t in cfg.teams} == {"giao_thong", "moi_truong", "ha_tang", "dieu_hanh_ioc"}
    assert cfg.team("giao_thong").name == "Đội điều hành giao thông"
    assert cfg.engine.auto_resolve_s == 900.0 and cfg.delivery.max_attempts == 6
    assert cfg.silences[0].recurrence == "weekly" and cfg.silences[0].days == (6,)
    assert cfg.team("giao_thong").escalation[1].after_s == 600.0


def edit(path: list, value: object, delete: bool = False) -> dict:
    obj = copy.deepcopy(RAW)
    node = obj
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


@pytest.mark.parametrize("obj, message", [
    (edit(["shifts", 1, "start"], "25:00"), "[[shifts]] #2 key 'start': expected \"HH:MM\", got '25:00'"),
    (edit(["shifts", 0, "officers"], ["ghost"]), "[[shifts]] #1 key 'officers': unknown value 'ghost'"),
    (edit(["rules", 0, "team"], "nobody"), "[[rules]] #1 key 'team': unknown team 'nobody'"),
    (edit(["rules", 1, "domains"], ["weather"]), "[[rules]] #2 key 'domains': unknown value 'weather'"),
    (edit(["rules", 1, "min_severity"], "high"), "[[rules]] #2 key 'min_severity': expected one of"),
    (edit(["engine", "silence_factor"], 1), "[engine] key 'silence_factor': must be > 1.0"),
    (edit(["engine", "colour"], "red"), "[engine] key 'colour': unknown key"),
    (edit(["officers", 0, "email"], "not-an-address"), "[[officers]] #1 key 'email': not an e-mail address"),
    (edit(["officers", 1, "id"], "nguyen_van_an"), "[[officers]] #2 key 'id': duplicate officer id"),
    (edit(["officers", 0, "name"], None, delete=True), "[[officers]] #1 key 'name': is required"),
    (edit(["teams", 0, "escalation", 1, "after_min"], 0),
     "[[teams]] #1 (giao_thong) [[teams.escalation]] #2 key 'after_min': must be later than the previous level"),
    (edit(["teams", 0, "escalation", 1, "to"], ["ghost"]), "[[teams.escalation]] #2 key 'to': unknown officer"),
    (edit(["teams", 0, "topics"], ["amqp:x"]), "[[teams]] #1 key 'topics': expected \"mqtt:<topic>\""),
    (edit(["silences", 0, "recurrence"], "monthly"), "[[silences]] #1 key 'recurrence': expected once, daily"),
    (edit(["silences", 0, "wards"], ["Atlantis"]), "[[silences]] #1 key 'wards': unknown value 'Atlantis'"),
    (edit(["silences", 0, "days"], None, delete=True), "[[silences]] #1 key 'days': a weekly silence needs days"),
    (edit(["cap", "scope"], "Everyone"), "[cap] key 'scope': expected Public/Restricted/Private"),
    (edit(["default_team"], "x"), "top level key 'default_team': unknown team 'x'"),
    (edit(["delivery", "max_attempts"], "3"), "[delivery] key 'max_attempts': expected int, got '3'"),
])
def test_errors_name_file_table_and_key(obj: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(obj)
    text = str(exc.value)
    assert text.startswith(SRC + ": ") and message in text and "\n" not in text


def test_one_off_silence_needs_an_offset_and_an_order() -> None:
    base = {"id": "cat_dien", "reason": "Cắt điện", "wards": ["Ngô Quyền"], "recurrence": "once"}
    obj = edit(["silences"], [dict(base, start_at="2026-03-02T08:00:00", end_at="2026-03-02T10:00:00+07:00")])
    with pytest.raises(ConfigError, match="key 'start_at': needs a UTC offset"):
        parse(obj)
    obj = edit(["silences"], [dict(base, start_at="2026-03-02T10:00:00+07:00", end_at="2026-03-02T08:00:00+07:00")])
    with pytest.raises(ConfigError, match="key 'end_at': must be after start_at"):
        parse(obj)
    obj = edit(["silences"], [dict(base, start_at="2026-03-02T08:00:00+07:00", end_at="2026-03-02T10:00:00+07:00")])
    s = parse(obj).silences[0]  # type: ignore[attr-defined]
    assert s.end_at - s.start_at == 7200.0 and s.active(s.start_at, 0, 0) and not s.active(s.end_at, 0, 0)
