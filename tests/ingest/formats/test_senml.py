"""ingest.formats.senml: SenML (RFC 8428) decoding, units, and dead letters."""
from __future__ import annotations

import json
import random

import pytest

from ingest.formats import decode_many
from ingest.units import UNITS
from processing.kinds import KINDS
from processing.registry import Registry
from tests.ingest.formats.samples import ID_OF, RECEIVED, SENSORS, T0, dec, js, one_dead, rows


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
