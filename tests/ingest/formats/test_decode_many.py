"""ingest.formats: decode_many over all three formats -- bad input as a whole, sniffing, formats per topic.

The malformed corpus in ``tests/ingest/malformed/`` (one file per case, expected
code/reason in ``expected.json``) is replayed here and, by the transport
integration tests, through real brokers.  Its sensor ids exist in the Bắc Giang
registry and in the small registry of ``conftest.py``.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import numpy as np
import pytest

from ingest.formats import FORMATS, MAX_BYTES, decode, decode_many
from processing.kinds import KINDS
from processing.registry import Registry
from tests.ingest.formats.samples import MALFORMED, RECEIVED, T0, dec, good_messages, one_dead


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
