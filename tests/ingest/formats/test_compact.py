"""ingest.formats.compact: compact JSON decoding, its dead letters, and the kinds' possible ranges."""
from __future__ import annotations

import numpy as np
import pytest

from processing.kinds import KINDS
from processing.registry import Registry
from tests.ingest.formats.samples import ID_OF, RECEIVED, T0, dec, js, one_dead, rows


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
