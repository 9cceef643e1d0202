"""ingest.formats.ngsi_ld: NGSI-LD decoding (normalized and keyValues), unit codes, times, dead letters."""
from __future__ import annotations

import pytest

from ingest.formats.ngsi_ld import NGSI_ATTRIBUTES
from processing.kinds import KINDS
from processing.registry import Registry
from tests.ingest.formats.samples import ID_OF, RECEIVED, T0, dec, entity, js, one_dead, rows


NGSI_CASES = [  # kind, entity type, attribute, value sent (default unit), value in the canonical unit
    ("vehicle_count", "TrafficFlowObserved", "intensity", 197, 197.0),
    ("avg_speed", "TrafficFlowObserved", "averageVehicleSpeed", 52.6, 52.6),
    ("occupancy", "TrafficFlowObserved", "occupancy", 0.76, 76.0),
    ("pm25", "AirQualityObserved", "pm25", 35.2, 35.2),
    ("pm10", "AirQualityObserved", "pm10", 61.0, 61.0),
    ("temperature", "AirQualityObserved", "temperature", 28.5, 28.5),
    ("noise_laeq", "NoiseLevelObserved", "LAeq", 67.8, 67.8),
    ("water_level", "FloodMonitoring", "currentLevel", 3.4, 3.4),
    ("water_level", "WaterObserved", "height", 3.4, 3.4),
    ("water_flow", "WaterObserved", "flow", 0.2, 720.0),
    ("water_pressure", "DeviceMeasurement", "waterPressure", 3.1, 3.1),
    ("feeder_load", "DeviceMeasurement", "feederLoad", 4.2, 4.2),
    ("streetlight_current", "Streetlight", "current", 11.5, 11.5),
]


@pytest.mark.parametrize("normalized", [True, False], ids=["normalized", "keyValues"])
@pytest.mark.parametrize("kind, etype, attr, sent, canonical", NGSI_CASES)
def test_ngsi_every_kind(reg: Registry, normalized: bool, kind: str, etype: str, attr: str, sent: float,
                         canonical: float) -> None:
    out = dec(reg, js(entity(kind, etype, attr, sent, normalized=normalized)))
    assert out.dead == ()
    assert rows(out, reg) == [(ID_OF[kind], T0, pytest.approx(canonical))]


def test_ngsi_attribute_table_covers_every_kind() -> None:
    assert set(NGSI_ATTRIBUTES) == set(KINDS)
    assert {c[0] for c in NGSI_CASES} == set(KINDS)


def test_ngsi_array_of_entities_with_a_bad_one(reg: Registry) -> None:
    ents = [entity("pm25", "AirQualityObserved", "pm25", 35.2, normalized=True),
            {"type": "AirQualityObserved", "pm25": 3},
            entity("pm10", "AirQualityObserved", "pm10", 9000, normalized=False),
            entity("noise_laeq", "NoiseLevelObserved", "LAeq", 67.8, normalized=False)]
    out = dec(reg, js(ents))
    assert [r[0] for r in rows(out, reg)] == ["BG-ENV-014", "BG-ENV-013"]
    assert [(d.code, d.reason) for d in out.dead] == [
        ("no_id", "ngsi-ld entity 1: no id"),
        ("out_of_range", "ngsi-ld entity 2 (urn:ngsi-ld:AirQualityObserved:BG-ENV-015) attribute 'pm10': "
                         "value 9000 µg/m³ is outside the possible range "
                         "0..3000 µg/m³ of pm10 sensor BG-ENV-015")]


def test_ngsi_unit_code_is_honoured(reg: Registry) -> None:
    cases = [("water_flow", "WaterObserved", "flow", 720, "MQH", 720.0),
             ("occupancy", "TrafficFlowObserved", "occupancy", 76, "P1", 76.0),
             ("pm25", "AirQualityObserved", "pm25", 35.2, "GQ", 35.2),
             ("avg_speed", "TrafficFlowObserved", "averageVehicleSpeed", 10, "MTS", 36.0),
             ("water_pressure", "DeviceMeasurement", "waterPressure", 320, "KPA", 3.2),
             ("temperature", "AirQualityObserved", "temperature", 301.65, "KEL", 28.5)]
    ents = [entity(k, t, a, v, normalized=True, unitCode=u) for k, t, a, v, u, _ in cases]
    out = dec(reg, js(ents))
    assert out.dead == () and out.batch.value.tolist() == pytest.approx([c[-1] for c in cases])
    d = one_dead(dec(reg, js(entity("pm25", "AirQualityObserved", "pm25", 3, normalized=True, unitCode="KMH"))))
    assert d.code == "bad_unit" and d.reason.startswith(
        "ngsi-ld entity 0 (urn:ngsi-ld:AirQualityObserved:BG-ENV-014) attribute 'pm25': unit \"km/h\" does not fit "
        "pm25 sensor BG-ENV-014")


def test_ngsi_flow_in_m3_per_hour_without_unit_code_is_out_of_range(reg: Registry) -> None:
    d = one_dead(dec(reg, js(entity("water_flow", "WaterObserved", "flow", 720, normalized=False))))
    assert d.code == "out_of_range" and "(sent 720 m³/s)" in d.reason


def test_ngsi_time_precedence(reg: Registry) -> None:
    base = {"id": "urn:ngsi-ld:AirQualityObserved:BG-ENV-014", "type": "AirQualityObserved"}
    at = "2026-03-02T00:41:00Z"
    cases = [
        ({"pm25": {"type": "Property", "value": 1, "observedAt": at}, "dateObserved": "2026-03-01T00:00:00Z"},
         T0 + 60),
        ({"pm25": 1, "dateObserved": "2026-03-02T00:40:00Z", "dateObservedTo": "2026-03-01T00:00:00Z"}, T0),
        ({"pm25": 1, "dateObservedFrom": "2026-03-02T00:35:00Z", "dateObservedTo": "2026-03-02T00:40:00Z"}, T0),
        ({"pm25": 1}, RECEIVED),
        ({"pm25": 1, "dateObserved": "2026-03-02T00:35:00/2026-03-02T00:40:00"}, T0),   # interval, naive = UTC
        ({"pm25": 1, "dateObserved": {"type": "Property", "value": "2026-03-02T00:40:00Z"}}, T0),
    ]
    out = dec(reg, js([{**base, **c} for c, _ in cases]))
    assert out.dead == () and out.batch.ts.tolist() == [t for _, t in cases]


def test_ngsi_device_measurement_num_value(reg: Registry) -> None:
    ents = [{"id": "urn:ngsi-ld:DeviceMeasurement:BG-UTL-001", "type": "DeviceMeasurement", "numValue": 320000,
             "unit": "PAL", "dateObserved": "2026-03-02T00:40:00Z"},
            {"id": "urn:ngsi-ld:DeviceMeasurement:BG-UTL-030", "type": "DeviceMeasurement",
             "numValue": {"type": "Property", "value": 4.2}}]
    out = dec(reg, js(ents))
    assert out.dead == () and out.batch.value.tolist() == pytest.approx([3.2, 4.2])


def test_ngsi_errors(reg: Registry) -> None:
    aq = "urn:ngsi-ld:AirQualityObserved:"
    ents = [
        {"id": 5, "type": "AirQualityObserved"},
        {"id": "BG-ENV-014", "type": "AirQualityObserved", "pm25": 1},
        {"id": aq + "BG-ENV-014", "pm25": 1},
        {"id": aq + "BG-NOPE", "type": "AirQualityObserved", "pm25": 1},
        {"id": aq + "BG-ENV-014", "type": "AirQualityObserved", "pm10": 1},
        {"id": aq + "BG-ENV-014", "type": "AirQualityObserved", "pm25": {"type": "Relationship", "object": "x"}},
        {"id": aq + "BG-ENV-014", "type": "AirQualityObserved", "pm25": [{"type": "Property", "value": 1}]},
        {"id": aq + "BG-ENV-014", "type": "AirQualityObserved", "pm25": 1, "dateObserved": "soon"},
        {"id": aq + "BG-ENV-014", "type": "AirQualityObserved", "pm25": "35"},
        {"id": aq + "BG-ENV-014", "type": "AirQualityObserved", "pm25": 35},
    ]
    out = dec(reg, js(ents))
    assert out.batch.value.tolist() == [35.0]
    e = "ngsi-ld entity"
    assert [(d.code, d.reason) for d in out.dead] == [
        ("wrong_type", f"{e} 0: 'id' must be a string, got number 5"),
        ("bad_format", f'{e} 1: id "BG-ENV-014" is not urn:ngsi-ld:<Type>:<sensor id>'),
        ("bad_format", f"{e} 2 ({aq}BG-ENV-014): no 'type' string"),
        ("unknown_sensor", f'{e} 3 ({aq}BG-NOPE): unknown sensor "BG-NOPE"'),
        ("no_attribute", f"{e} 4 ({aq}BG-ENV-014): no attribute 'pm25' for pm25 sensor BG-ENV-014"),
        ("bad_format", f"{e} 5 ({aq}BG-ENV-014): attribute 'pm25' must be a Property with a 'value'"),
        ("unsupported", f"{e} 6 ({aq}BG-ENV-014): attribute 'pm25' has several instances (datasetId); send one"),
        ("bad_time", f"{e} 7 ({aq}BG-ENV-014): dateObserved \"soon\" is not an ISO 8601 date-time"),
        ("wrong_type", f"{e} 8 ({aq}BG-ENV-014) attribute 'pm25': value must be a number, got string \"35\""),
    ]


def test_ngsi_explicit_format_and_sniffing(reg: Registry) -> None:
    ent = entity("pm25", "AirQualityObserved", "pm25", 35.2, normalized=False)
    assert dec(reg, js(ent), fmt="ngsi-ld").batch.value.tolist() == [35.2]
    d = one_dead(dec(reg, '{"type": "AirQualityObserved"}'))
    assert (d.code, d.reason) == ("no_id", "ngsi-ld entity 0: no id")
