"""ingest.payloads: compact JSON, SenML (RFC 8428) and NGSI-LD decoding, units, and dead letters.

The malformed corpus in ``tests/ingest/malformed/`` (one file per case, expected
code/reason in ``expected.json``) is replayed here and, by the transport
integration tests, through real brokers.  Its sensor ids exist in the Bắc Giang
registry and in the small registry below.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from ingest.payloads import (FORMATS, MAX_BYTES, NGSI_ATTRIBUTES, UNITS, DeadLetter, Decoded, decode,
                             decode_many)
from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec

MALFORMED = Path(__file__).parent / "malformed"
T0 = 1772412000.0                    # 2026-03-02 00:40 UTC
RECEIVED = T0 + 300.0

SENSORS = {                          # id -> kind (ids as in config/bac_giang/sensors.geojson)
    "BG-TRF-001": "vehicle_count",
    "BG-TRF-002": "avg_speed",
    "BG-TRF-003": "occupancy",
    "BG-ENV-001": "water_level",
    "BG-ENV-012": "temperature",
    "BG-ENV-013": "noise_laeq",
    "BG-ENV-014": "pm25",
    "BG-ENV-015": "pm10",
    "BG-UTL-001": "water_pressure",
    "BG-UTL-019": "water_flow",
    "BG-UTL-030": "feeder_load",
    "BG-UTL-046": "streetlight_current",
}
ID_OF = {kind: sid for sid, kind in SENSORS.items()}


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry(tuple(
        SensorSpec(id=sid, name=sid, domain=KINDS[kind].domain, kind=kind, unit=KINDS[kind].unit,
                   ward="Trần Phú", lon=106.2, lat=21.27, interval_s=60.0)
        for sid, kind in SENSORS.items()))


def dec(reg: Registry, payload: bytes | str, *, source: str = "test", fmt: str | None = None) -> Decoded:
    if isinstance(payload, str):
        payload = payload.encode()
    return decode(payload, source=source, registry=reg, received=RECEIVED, fmt=fmt)


def js(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def rows(out: Decoded, reg: Registry) -> list[tuple[str, float, float]]:
    return [(reg.sensors[i].id, t, v) for i, t, v in
            zip(out.batch.sensor.tolist(), out.batch.ts.tolist(), out.batch.value.tolist())]


def one_dead(out: Decoded) -> DeadLetter:
    assert len(out.dead) == 1, out.dead
    return out.dead[0]


# --------------------------------------------------------------------------- compact

def test_compact_single(reg: Registry) -> None:
    out = dec(reg, '{"id": "BG-ENV-014", "ts": 1772412000.0, "v": 35.2}')
    assert rows(out, reg) == [("BG-ENV-014", T0, 35.2)] and out.dead == ()
    b = out.batch
    assert (b.sensor.dtype, b.ts.dtype, b.value.dtype) == (np.int32, np.float64, np.float64)


def test_compact_array_keeps_order(reg: Registry) -> None:
    msg = [{"id": "BG-TRF-001", "ts": T0, "v": 12}, {"id": "BG-TRF-002", "ts": T0 + 1, "v": 41.5},
           {"id": "BG-ENV-014", "ts": T0 + 2, "v": 0}]
    out = dec(reg, js(msg))
    assert rows(out, reg) == [("BG-TRF-001", T0, 12.0), ("BG-TRF-002", T0 + 1, 41.5), ("BG-ENV-014", T0 + 2, 0.0)]


@pytest.mark.parametrize("ts, expected", [
    ("2026-03-02T07:40:00+07:00", T0),
    ("2026-03-02T00:40:00Z", T0),
    ("2026-03-02T00:40:00.500+00:00", T0 + 0.5),
    (1772412000, T0),
])
def test_compact_time_forms(reg: Registry, ts: object, expected: float) -> None:
    out = dec(reg, js({"id": "BG-ENV-014", "ts": ts, "v": 1}))
    assert out.batch.ts.tolist() == [expected] and out.dead == ()


def test_compact_without_ts_is_stamped_received(reg: Registry) -> None:
    assert dec(reg, '{"id": "BG-ENV-014", "v": 1}').batch.ts.tolist() == [RECEIVED]


def test_compact_naive_iso_time_is_rejected(reg: Registry) -> None:
    d = one_dead(dec(reg, js({"id": "BG-ENV-014", "ts": "2026-03-02T07:40:00", "v": 1})))
    assert d.code == "bad_time" and "has no UTC offset" in d.reason and "2026-03-02T07:40:00" in d.reason


def test_compact_id_from_mqtt_topic(reg: Registry) -> None:
    topic = "city/tran-phu/environment/BG-ENV-014"
    out = dec(reg, '{"ts": 1772412000, "v": 7}', source=topic)
    assert rows(out, reg) == [("BG-ENV-014", T0, 7.0)]
    out = dec(reg, '[{"ts": 1772412000, "v": 7}, {"ts": 1772412060, "v": 8}]', source=topic)
    assert [r[0] for r in rows(out, reg)] == ["BG-ENV-014"] * 2
    # an id in the message wins over the topic
    assert rows(dec(reg, '{"id": "BG-ENV-015", "v": 9}', source=topic), reg)[0][0] == "BG-ENV-015"


def test_compact_without_id_off_topic_is_dead(reg: Registry) -> None:
    d = one_dead(dec(reg, '{"ts": 1772412000, "v": 7}', source="ioc.readings"))
    assert d.code == "no_id" and "no 'id'" in d.reason and d.source == "ioc.readings"


@pytest.mark.parametrize("v, code, words", [
    ('"35.2"', "wrong_type", 'value must be a number, got string "35.2"'),
    ("true", "wrong_type", "value must be a number, got boolean true"),
    ("null", "wrong_type", "no value 'v'"),
    ("[1]", "wrong_type", "value must be a number, got array [1]"),
    ("NaN", "non_finite", "value NaN is not a finite number"),
    ("-Infinity", "non_finite", "value -Infinity is not a finite number"),
    ("1e999", "non_finite", "is not a finite number"),
    ("1" + "0" * 400, "non_finite", "is not a finite number"),
])
def test_compact_bad_values(reg: Registry, v: str, code: str, words: str) -> None:
    d = one_dead(dec(reg, f'{{"id": "BG-ENV-014", "ts": 1772412000, "v": {v}}}'))
    assert d.code == code and words in d.reason


@pytest.mark.parametrize("ts, words", [
    ('"yesterday"', "'ts' \"yesterday\" is not an ISO 8601 date-time"),
    ("true", "'ts' must be epoch seconds or an ISO 8601 string, got boolean true"),
    ("{}", "got object {}"),
])
def test_compact_bad_times(reg: Registry, ts: str, words: str) -> None:
    d = one_dead(dec(reg, f'{{"id": "BG-ENV-014", "ts": {ts}, "v": 1}}'))
    assert d.code == "bad_time" and words in d.reason


def test_compact_nan_time_is_non_finite(reg: Registry) -> None:
    d = one_dead(dec(reg, '{"id": "BG-ENV-014", "ts": NaN, "v": 1}'))
    assert d.code == "non_finite" and "time NaN" in d.reason


def test_compact_wrong_id_type_and_several_problems(reg: Registry) -> None:
    d = one_dead(dec(reg, '{"id": 14, "ts": "x", "v": "y"}'))
    assert d.code == "wrong_type"
    assert "'id' must be a string, got number 14" in d.reason and 'got string "y"' in d.reason and "'ts'" in d.reason


def test_compact_array_bad_records_are_named(reg: Registry) -> None:
    msg = [{"id": "BG-ENV-014", "v": 1}, 5, {"id": "BG-NOPE", "v": 2}, {"id": "BG-ENV-015", "v": 3}]
    out = dec(reg, js(msg))
    assert [r[0] for r in rows(out, reg)] == ["BG-ENV-014", "BG-ENV-015"]
    assert [(d.code, d.reason) for d in out.dead] == [
        ("bad_format", "record 1: not a JSON object, got number 5"),
        ("unknown_sensor", 'record 2: unknown sensor "BG-NOPE"')]


@pytest.mark.parametrize("kind, low, high", [(k, s.valid_min, s.valid_max) for k, s in KINDS.items()])
def test_range_is_the_kinds_possible_range(reg: Registry, kind: str, low: float, high: float) -> None:
    sid = ID_OF[kind]
    ok = dec(reg, js([{"id": sid, "v": low}, {"id": sid, "v": high}]))
    assert ok.batch.value.tolist() == [low, high] and ok.dead == ()
    span = high - low
    out = dec(reg, js([{"id": sid, "v": low - 0.01 * span}, {"id": sid, "v": high + 0.01 * span}]))
    assert len(out.batch) == 0 and [d.code for d in out.dead] == ["out_of_range"] * 2
    unit = KINDS[kind].unit
    assert f"record 1: value {high + 0.01 * span:g} {unit} is outside the possible range {low:g}..{high:g} {unit} " \
           f"of {kind} sensor {sid}" == out.dead[1].reason


# --------------------------------------------------------------------------- SenML

def test_senml_base_fields_resolve(reg: Registry) -> None:
    pack = [{"bn": "BG-ENV-01", "bt": T0, "bu": "ug/m3", "n": "4", "v": 35.2, "t": 0},
            {"n": "5", "v": 60.1, "t": 0},
            {"n": "4", "v": 36.0, "t": 60},
            {"bn": "BG-TRF-00", "n": "1", "u": "veh", "v": 12, "t": 120}]
    out = dec(reg, js(pack))
    assert rows(out, reg) == [("BG-ENV-014", T0, 35.2), ("BG-ENV-015", T0, 60.1), ("BG-ENV-014", T0 + 60, 36.0),
                              ("BG-TRF-001", T0 + 120, 12.0)]
    assert out.dead == ()


def test_senml_base_value_and_full_name_in_bn(reg: Registry) -> None:
    pack = [{"bn": "BG-ENV-001", "bt": T0, "bu": "m", "bv": 2.0}, {"v": 0.25, "t": 0}, {"v": -0.5, "t": 60}]
    out = dec(reg, js(pack))
    assert rows(out, reg) == [("BG-ENV-001", T0, 2.25), ("BG-ENV-001", T0 + 60, 1.5)]


def test_senml_relative_time(reg: Registry) -> None:
    pack = [{"bn": "BG-ENV-014", "v": 1.0},             # no time at all: now
            {"t": -60, "v": 2.0},                       # a minute ago
            {"bt": -120, "t": 30, "v": 3.0},            # relative base time
            {"bt": T0, "t": -30, "v": 4.0}]             # absolute again
    out = dec(reg, js(pack))
    assert out.batch.ts.tolist() == [RECEIVED, RECEIVED - 60, RECEIVED - 90, T0 - 30]


def test_senml_base_fields_change_mid_pack(reg: Registry) -> None:
    pack = [{"bn": "BG-ENV-014", "bt": T0, "bu": "ug/m3", "v": 10},
            {"bu": "kg/m3", "v": 2e-8},
            {"bn": "BG-ENV-012", "bu": "K", "v": 300.0}]
    out = dec(reg, js(pack))
    assert [r[0] for r in rows(out, reg)] == ["BG-ENV-014", "BG-ENV-014", "BG-ENV-012"]
    assert out.batch.value.tolist() == pytest.approx([10.0, 20.0, 26.85])


def test_senml_single_record_object(reg: Registry) -> None:
    out = dec(reg, '{"n": "BG-ENV-014", "u": "ug/m3", "v": 35.2, "t": 1772412000}')
    assert rows(out, reg) == [("BG-ENV-014", T0, 35.2)]


UNIT_CASES = [  # kind, unit sent, value sent, value in the canonical unit
    ("pm25", "ug/m3", 35.0, 35.0), ("pm25", "µg/m3", 35.0, 35.0), ("pm25", "µg/m³", 35.0, 35.0),
    ("pm25", "ug/m^3", 35.0, 35.0), ("pm25", "μg/m3", 35.0, 35.0), ("pm25", "kg/m3", 3.5e-8, 35.0),
    ("pm10", "mg/m3", 0.08, 80.0), ("pm10", "µg/m³", 80.0, 80.0),
    ("noise_laeq", "dB", 65.0, 65.0), ("noise_laeq", "dBA", 65.0, 65.0), ("noise_laeq", "dB(A)", 65.0, 65.0),
    ("water_level", "m", 2.5, 2.5), ("water_level", "cm", 250.0, 2.5), ("water_level", "mm", 2500.0, 2.5),
    ("temperature", "Cel", 28.5, 28.5), ("temperature", "°C", 28.5, 28.5), ("temperature", "K", 301.65, 28.5),
    ("water_pressure", "bar", 3.2, 3.2), ("water_pressure", "Pa", 320000.0, 3.2),
    ("water_pressure", "kPa", 320.0, 3.2), ("water_pressure", "MPa", 0.32, 3.2),
    ("water_flow", "m3/h", 720.0, 720.0), ("water_flow", "m³/h", 720.0, 720.0),
    ("water_flow", "m3/s", 0.2, 720.0), ("water_flow", "l/s", 200.0, 720.0),
    ("feeder_load", "MW", 4.2, 4.2), ("feeder_load", "kW", 4200.0, 4.2), ("feeder_load", "W", 4.2e6, 4.2),
    ("streetlight_current", "A", 12.0, 12.0), ("streetlight_current", "mA", 12000.0, 12.0),
    ("occupancy", "%", 35.0, 35.0), ("occupancy", "/", 0.35, 35.0),
    ("vehicle_count", "veh", 120.0, 120.0), ("vehicle_count", "veh/5min", 120.0, 120.0),
    ("vehicle_count", "count", 120.0, 120.0), ("vehicle_count", "veh/h", 1440.0, 120.0),
    ("avg_speed", "km/h", 36.0, 36.0), ("avg_speed", "m/s", 10.0, 36.0),
]


@pytest.mark.parametrize("kind, unit, sent, canonical", UNIT_CASES)
def test_senml_units_are_normalised(reg: Registry, kind: str, unit: str, sent: float, canonical: float) -> None:
    out = dec(reg, js([{"bn": ID_OF[kind], "bt": T0, "u": unit, "v": sent}]))
    assert out.dead == () and out.batch.value.tolist() == pytest.approx([canonical])


def test_every_kind_accepts_its_canonical_unit_and_units_table_covers_kinds(reg: Registry) -> None:
    assert set(UNITS) == set(KINDS)
    for kind, spec in KINDS.items():
        assert UNITS[kind][spec.unit] == (1.0, 0.0)
        out = dec(reg, js([{"bn": ID_OF[kind], "u": spec.unit, "v": spec.valid_max}]))
        assert out.dead == () and out.batch.value.tolist() == [spec.valid_max]


@pytest.mark.parametrize("kind, unit", [("pm25", "km/h"), ("occupancy", "veh"), ("avg_speed", "%"),
                                        ("temperature", "Fahrenheit"), ("water_flow", "m3")])
def test_senml_unit_that_does_not_fit_is_dead(reg: Registry, kind: str, unit: str) -> None:
    pack = [{"bn": ID_OF[kind], "bt": T0, "u": unit, "v": 1}, {"bn": "BG-ENV-014", "u": "ug/m3", "v": 3}]
    out = dec(reg, js(pack))
    assert rows(out, reg) == [("BG-ENV-014", T0, 3.0)]           # bt carries over to the next record
    d = one_dead(out)
    assert d.code == "bad_unit"
    assert d.reason.startswith(f'senml record 0: unit {json.dumps(unit, ensure_ascii=False)} does not fit '
                               f'{kind} sensor {ID_OF[kind]} (accepted: {KINDS[kind].unit}')


def test_senml_out_of_range_after_conversion_names_what_was_sent(reg: Registry) -> None:
    d = one_dead(dec(reg, js([{"bn": "BG-TRF-003", "u": "/", "v": 35}])))
    assert d.code == "out_of_range"
    assert d.reason == ("senml record 0: value 3500 % (sent 35 /) is outside the possible range 0..100 % "
                        "of occupancy sensor BG-TRF-003")


@pytest.mark.parametrize("field, value, what", [("vs", "high", "string"), ("vb", True, "boolean"),
                                                ("vd", "aGVsbG8", "data")])
def test_senml_non_numeric_record_is_dead_rest_kept(reg: Registry, field: str, value: object, what: str) -> None:
    pack = [{"bn": "BG-ENV-014", "bt": T0, "v": 1}, {field: value, "t": 60}, {"v": 3, "t": 120}]
    out = dec(reg, js(pack))
    assert out.batch.value.tolist() == [1.0, 3.0]
    d = one_dead(out)
    assert d.code == "not_numeric"
    assert d.reason == f'senml record 1: "BG-ENV-014" carries a {what} value (\'{field}\'), not a number'


def test_senml_sum_only_record(reg: Registry) -> None:
    d = one_dead(dec(reg, js([{"bn": "BG-TRF-001", "s": 1200}])))
    assert d.code == "not_numeric" and "only a sum" in d.reason


def test_senml_without_any_name(reg: Registry) -> None:
    out = dec(reg, js([{"n": "BG-ENV-014", "v": 1}, {"v": 2, "u": "ug/m3"}]))
    # record 1 has no n and there is no bn
    assert out.batch.value.tolist() == [1.0]
    d = one_dead(out)
    assert (d.code, d.reason) == ("no_name", "senml record 1: no base name and no name")


def test_senml_record_errors(reg: Registry) -> None:
    pack = [{"bn": "BG-ENV-014", "bt": T0},            # header: no reading, no error
            {"n": 7, "v": 1},
            {"v": 1, "t": "soon"},
            {"n": "", "v": "x"},
            {"v": 2, "x_": 1},
            {"v": 3, "ignored": True},
            "junk",
            {"n": "-X", "v": 4},
            {"t": 5}]
    out = dec(reg, js(pack))
    assert out.batch.value.tolist() == [3.0]
    assert [(d.code, d.reason) for d in out.dead] == [
        ("wrong_type", "senml record 1: name 'n' must be a string, got number 7"),
        ("bad_time", "senml record 2: time 't' must be a number, got string \"soon\""),
        ("wrong_type", "senml record 3: value must be a number, got string \"x\""),
        ("unsupported", "senml record 4: unsupported must-understand field 'x_'"),
        ("bad_format", "senml record 6: not a JSON object, got string \"junk\""),
        ("unknown_sensor", "senml record 7: unknown sensor \"BG-ENV-014-X\""),
        ("wrong_type", "senml record 8: \"BG-ENV-014\" has no value 'v'"),
    ]


@pytest.mark.parametrize("bad, words", [
    ({"bver": 11}, "SenML version 'bver' 11 is not supported"),
    ({"bt": "now"}, "base time 'bt' must be a number, got string \"now\""),
    ({"bn": 5}, "base name 'bn' must be a string"),
    ({"bu": ["m"]}, "base unit 'bu' must be a string"),
    ({"bv": None}, "base value 'bv' must be a number"),
])
def test_senml_bad_base_field_drops_the_rest(reg: Registry, bad: dict, words: str) -> None:
    pack = [{"bn": "BG-ENV-001", "bt": T0, "v": 1}, {"v": 2, "t": 1}, {**bad, "v": 3}, {"v": 4}]
    out = dec(reg, js(pack))
    assert out.batch.value.tolist() == [1.0, 2.0]
    d = one_dead(out)
    assert d.reason.startswith(f"senml record 2: {words}") and d.reason.endswith("records 2..3 dropped")


def test_senml_header_only_pack_is_dead(reg: Registry) -> None:
    d = one_dead(dec(reg, '[{"bn": "BG-ENV-014", "bt": 1772412000}]'))
    assert (d.code, d.reason) == ("bad_format", "senml payload carries no reading")


def test_senml_regular_and_irregular_packs_decode_alike(reg: Registry) -> None:
    """Regular packs take a column-wise fast path; an ignorable extra field forces the record-by-record
    decoder.  Both must give the same readings and dead letters."""
    rnd = random.Random(8428)
    spellings = {k: list(UNITS[k]) for k in KINDS}
    regulars, irregulars = [], []
    for trial in range(300):
        n = rnd.randint(1, 12)
        one_sensor = rnd.random() < 0.4                 # bn is the sensor id, records carry no name
        sids = [rnd.choice(list(SENSORS) + ["BG-NOPE"])] * n if one_sensor else \
            [rnd.choice(list(SENSORS) + ["BG-NOPE"]) for _ in range(n)]
        common = sids[0] if one_sensor else \
            "BG-" if all(s.startswith("BG-") for s in sids) and rnd.random() < 0.5 else ""
        base: dict = {}
        if common:
            base["bn"] = common
        if rnd.random() < 0.7:
            base["bt"] = rnd.choice([T0, -600.0, 0, 1772412000])
        with_t, with_u = rnd.random() < 0.7, rnd.random() < 0.6
        if one_sensor and with_u and rnd.random() < 0.5:
            base["bu"], with_u = rnd.choice(spellings[SENSORS.get(sids[0], "pm25")] + ["furlong"]), False
        pack = []
        for k, sid in enumerate(sids):
            kind = SENSORS.get(sid, "pm25")
            rec: dict = {} if one_sensor else {"n": sid[len(common):]}
            if with_u:
                rec["u"] = rnd.choice(spellings[kind] + ["furlong"])
            rec["v"] = rnd.choice([1, 2.5, 0, -3.0, 1e9, 50.0])
            if with_t:
                rec["t"] = rnd.choice([0, 60.0, -30, T0 + k, 5])
            pack.append(rec)
        if base:
            if rnd.random() < 0.5:
                pack[0] = {**base, **pack[0]}
            else:
                pack.insert(0, base)
        regular = dec(reg, js(pack))
        regulars.append(("t", js(pack)))
        pack[-1] = {**pack[-1], "note": "forces the record-by-record decoder"}
        irregular = dec(reg, js(pack))
        irregulars.append(("t", js(pack)))
        assert rows(regular, reg) == rows(irregular, reg), (trial, pack)
        assert [(d.code, d.reason) for d in regular.dead] == [(d.code, d.reason) for d in irregular.dead], pack
    # and all at once, in one batch
    together = decode_many(regulars, registry=reg, received=RECEIVED)
    apart = decode_many(irregulars, registry=reg, received=RECEIVED)
    assert rows(together, reg) == rows(apart, reg) and len(together.batch) > 300
    assert [d.reason for d in together.dead] == [d.reason for d in apart.dead]
    # a batch of one-sensor packs only (looked up once a pack)
    which = [k for k, m in enumerate(regulars) if b'"n"' not in m[1] and b'"u"' not in m[1]]
    alone = decode_many([regulars[k] for k in which], registry=reg, received=RECEIVED)
    alone_apart = decode_many([irregulars[k] for k in which], registry=reg, received=RECEIVED)
    assert len(which) > 30 and len(alone.batch) > 100
    assert rows(alone, reg) == rows(alone_apart, reg)
    assert [d.reason for d in alone.dead] == [d.reason for d in alone_apart.dead]


def test_senml_explicit_format(reg: Registry) -> None:
    out = dec(reg, '[{"n": "BG-ENV-014", "v": 3}]', fmt="senml")
    assert out.batch.value.tolist() == [3.0]


# --------------------------------------------------------------------------- NGSI-LD

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


def entity(kind: str, etype: str, attr: str, value: object, *, normalized: bool, **extra: object) -> dict:
    sid = ID_OF[kind]
    ent: dict = {"id": f"urn:ngsi-ld:{etype}:{sid}", "type": etype}
    if normalized:
        ent[attr] = {"type": "Property", "value": value, **extra}
        ent["dateObserved"] = {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-03-02T00:40:00Z"}}
        ent["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.2, 21.27]}}
        ent["@context"] = ["https://smartdatamodels.org/context.jsonld"]
    else:
        ent[attr] = value
        ent["dateObserved"] = "2026-03-02T07:40:00+07:00"
        ent["location"] = {"type": "Point", "coordinates": [106.2, 21.27]}
    return ent


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


# --------------------------------------------------------------------------- bad input as a whole

EXPECTED = json.loads((MALFORMED / "expected.json").read_text(encoding="utf-8"))


def test_corpus_files_are_all_listed() -> None:
    on_disk = {p.name for p in MALFORMED.iterdir() if p.name != "expected.json"}
    assert on_disk == set(EXPECTED)
    for name in ("truncated.json", "invalid_utf8.bin", "nan.json", "unknown_sensor.json", "senml_no_name.json",
                 "ngsi_no_id.json", "wrong_types.json"):
        assert name in EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_is_dead_with_reason(reg: Registry, name: str) -> None:
    raw = (MALFORMED / name).read_bytes()
    want = EXPECTED[name]
    out = dec(reg, raw, source="city/tran-phu/environment/BG-ENV-014")
    assert len(out.batch) == 0
    assert len(out.dead) == want["dead"]
    assert all(d.code == want["code"] for d in out.dead)
    assert any(want["reason"] in d.reason for d in out.dead), [d.reason for d in out.dead]
    assert all(d.payload == raw and d.received == RECEIVED for d in out.dead)


def good_messages(i: int) -> list[tuple[str, bytes]]:
    t = T0 + 60 * i
    return [
        ("city/tran-phu/environment/BG-ENV-014", js({"id": "BG-ENV-014", "ts": t, "v": 30.0 + i})),
        ("city/tran-phu/traffic/BG-TRF-001", js([{"bn": "BG-TRF-00", "bt": t, "n": "1", "u": "veh", "v": 10 + i},
                                                 {"n": "2", "u": "km/h", "v": 40.0}])),
        ("ioc.readings", js(entity("noise_laeq", "NoiseLevelObserved", "LAeq", 60.0 + i, normalized=True))),
    ]


def test_bad_input_among_good_messages_in_one_call(reg: Registry) -> None:
    """The issue's bad-input corpus: every one is dead with a reason; the good ones around them are kept."""
    bad = [(f"city/tran-phu/environment/{name}", (MALFORMED / name).read_bytes()) for name in sorted(EXPECTED)]
    bad.append(("city/tran-phu/environment/BG-ENV-014", b'{"id": "BG-ENV-014", "v": 1, "pad": "'
                + b"x" * (1 << 20) + b'"}'))                            # 1 MB message
    bad.append(("city/tran-phu/environment/BG-ENV-014", b"[" * 100_000))  # deeply nested
    messages: list[tuple[str, bytes]] = []
    for i, b in enumerate(bad):
        messages += good_messages(i)
        messages.append(b)
    messages += good_messages(len(bad))
    out = decode_many(messages, registry=reg, received=RECEIVED)
    n_good = len(bad) + 1
    assert len(out.batch) == 4 * n_good
    assert sorted(out.batch.value[out.batch.sensor == reg.index_of("BG-ENV-014")].tolist()) == \
        [30.0 + i for i in range(n_good)]
    expected_dead = sum(w["dead"] for w in EXPECTED.values()) + 2
    assert len(out.dead) == expected_dead
    big = [d for d in out.dead if d.code == "too_large"]
    assert len(big) == 1 and big[0].reason == \
        f"payload of {len(bad[-2][1]):,} bytes exceeds the {MAX_BYTES:,}-byte limit (not parsed)"
    assert big[0].payload == bad[-2][1]
    deep = [d for d in out.dead if d.payload == bad[-1][1]]
    assert len(deep) == 1 and deep[0].code == "invalid_json"
    # dead letters come in message order, each from the source it arrived on
    order = [next(i for i, m in enumerate(messages) if m[1] == d.payload) for d in out.dead]
    assert order == sorted(order)
    assert all(d.source.startswith("city/tran-phu/environment/") for d in out.dead)


@pytest.mark.parametrize("payload, code, words", [
    (b"", "invalid_json", "empty payload"),
    (b"   \n", "invalid_json", "empty payload"),
    (b'{"id": "BG-ENV-014", "v": 1} x', "invalid_json", "Extra data at line 1 column 30 (char 29)"),
    (b"{'id': 1}", "invalid_json", "Expecting property name enclosed in double quotes"),
    (b"\xef\xbb\xbf{}", "invalid_json", "BOM"),
    (b"\xc3\x28", "invalid_utf8", "not UTF-8 text: invalid continuation byte at byte 0 (0xc3)"),
    (b"\xff\xfe{\x00}\x00", "invalid_utf8", "at byte 0"),
    (b"42", "bad_format", "not a JSON object or array: got number 42"),
    (b'"hello"', "bad_format", 'got string "hello"'),
    (b"null", "bad_format", "not a JSON object or array: got null"),
    (b"[1, 2, 3]", "bad_format", "array holds no JSON objects"),
    (b'{"hello": "world"}', "bad_format", "unrecognised payload"),
])
def test_message_level_errors(reg: Registry, payload: bytes, code: str, words: str) -> None:
    d = one_dead(dec(reg, payload))
    assert d.code == code and words in d.reason, d.reason
    assert d.payload == payload


def test_whitespace_around_json_is_fine(reg: Registry) -> None:
    out = dec(reg, b'\n  {"id": "BG-ENV-014", "v": 1}\r\n')
    assert out.batch.value.tolist() == [1.0] and out.dead == ()


def test_payload_types(reg: Registry) -> None:
    raw = b'{"id": "BG-ENV-014", "v": 1}'
    for p in (raw, bytearray(raw), memoryview(raw), raw.decode()):
        out = decode_many([("t", p)], registry=reg, received=RECEIVED)
        assert out.batch.value.tolist() == [1.0]
    d = one_dead(decode_many([("t", bytearray(b"{"))], registry=reg, received=RECEIVED))
    assert d.payload == b"{" and type(d.payload) is bytes


def test_kafka_tombstone_is_an_empty_payload(reg: Registry) -> None:
    messages: list = [("ioc.readings", None), ("ioc.readings", b'{"id": "BG-ENV-014", "v": 1}')]
    out = decode_many(messages, registry=reg, received=RECEIVED)
    d = one_dead(out)
    assert (d.code, d.reason, d.payload) == ("invalid_json", "empty payload", b"")
    assert len(out.batch) == 1


def test_max_bytes_is_configurable(reg: Registry) -> None:
    raw = b'{"id": "BG-ENV-014", "v": 1}'
    assert len(decode(raw, source="t", registry=reg, received=0.0, max_bytes=len(raw)).batch) == 1
    d = one_dead(decode(raw, source="t", registry=reg, received=0.0, max_bytes=len(raw) - 1))
    assert d.code == "too_large"


def test_never_raises_on_mangled_messages(reg: Registry) -> None:
    rnd = random.Random(4)
    seeds = [m for i in range(3) for _, m in good_messages(i)]
    seeds += [(MALFORMED / n).read_bytes() for n in sorted(EXPECTED)]
    messages = []
    for _ in range(1500):
        b = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            pos = rnd.randrange(len(b) + 1)
            if op < 0.4 and b:
                del b[pos:pos + rnd.randint(1, 8)]
            elif op < 0.8:
                b[pos:pos] = rnd.choice([b"{", b"}", b"[", b"]", b",", b'"', b"NaN", b"-", b"0", b"\xff", b'"v"',
                                         b'"bn"', b"null", b"true", b"1e400", b'"urn:ngsi-ld:X:BG-ENV-014"'])
            else:
                b = b[:pos]
        messages.append((rnd.choice(["t", "city/a/environment/BG-ENV-014", "city/a/traffic/BG-TRF-001"]), bytes(b)))
    out = decode_many(messages, registry=reg, received=RECEIVED)
    assert np.isfinite(out.batch.value).all() and np.isfinite(out.batch.ts).all()
    assert (out.batch.sensor >= 0).all() and (out.batch.sensor < len(reg)).all()
    lo = np.array([KINDS[reg.sensors[i].kind].valid_min for i in out.batch.sensor.tolist()])
    hi = np.array([KINDS[reg.sensors[i].kind].valid_max for i in out.batch.sensor.tolist()])
    assert ((out.batch.value >= lo) & (out.batch.value <= hi)).all()
    # every message either gave readings or at least one dead letter
    dead = {(d.source, d.payload) for d in out.dead}
    for source, raw in messages:
        if (source, raw) not in dead:
            assert len(dec(reg, raw, source=source).batch) > 0
    assert all(d.reason and "\n" not in d.reason for d in out.dead)
    assert not any(d.reason.startswith("could not decode") for d in out.dead)


# --------------------------------------------------------------------------- decode_many and formats

def test_decode_many_one_batch_in_message_order(reg: Registry) -> None:
    messages = [m for i in range(50) for m in good_messages(i)]
    out = decode_many(messages, registry=reg, received=RECEIVED)
    assert out.dead == () and len(out.batch) == 200
    ids = [reg.sensors[i].id for i in out.batch.sensor[:4].tolist()]
    assert ids == ["BG-ENV-014", "BG-TRF-001", "BG-TRF-002", "BG-ENV-013"]
    assert out.batch.value[out.batch.sensor == reg.index_of("BG-TRF-001")].tolist() == [10.0 + i for i in range(50)]


def test_decode_many_accepts_an_iterator_and_nothing(reg: Registry) -> None:
    out = decode_many(iter(good_messages(0)), registry=reg, received=RECEIVED)
    assert len(out.batch) == 4
    empty = decode_many([], registry=reg, received=RECEIVED)
    assert len(empty.batch) == 0 and empty.dead == ()


def test_formats_per_topic(reg: Registry) -> None:
    # {"v": 1} alone is compact by sniffing; forced to SenML it has no name
    msg = b'[{"v": 1}]'
    formats = {"city/+/environment/#": "senml", "exact/topic": "compact"}
    out = decode_many([("city/a/environment/BG-ENV-014", msg), ("exact/topic", msg),
                       ("other", msg)], registry=reg, received=RECEIVED, formats=formats)
    assert [d.reason for d in out.dead] == [
        "senml record 0: no base name and no name",
        "record 0: no 'id', and the source is not a <prefix>/<district>/<domain>/<sensor_id> topic",
        "record 0: no 'id', and the source is not a <prefix>/<district>/<domain>/<sensor_id> topic"]
    # a compact message forced to SenML: 'id' is no SenML field, so the record has no name
    out = decode_many([("x", b'{"id": "BG-ENV-014", "v": 1}')], registry=reg, received=0.0, formats="senml")
    assert (one_dead(out).code, one_dead(out).reason) == ("no_name", "senml record 0: no base name and no name")


def test_wrong_format_argument_raises() -> None:
    reg = Registry.synthetic(1)
    with pytest.raises(ValueError, match="'senml2'"):
        decode(b"{}", source="t", registry=reg, received=0.0, fmt="senml2")
    with pytest.raises(ValueError, match=r"formats\['a'\]"):
        decode_many([], registry=reg, received=0.0, formats={"a": "xml"})
    assert FORMATS == ("compact", "senml", "ngsi-ld")


def test_received_is_on_every_dead_letter(reg: Registry) -> None:
    out = decode_many([("t", b"{"), ("t", b'{"id": "BG-NOPE", "v": 1}')], registry=reg, received=123.5)
    assert [d.received for d in out.dead] == [123.5, 123.5]
    assert T0 == datetime(2026, 3, 2, 0, 40, tzinfo=timezone.utc).timestamp()
