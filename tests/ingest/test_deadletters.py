"""ingest.deadletters: the embedded mode's dead-letter file (JSON lines, base64 payloads)."""
from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest

from ingest.deadletters import DeadLetterFile
from ingest.formats import DeadLetter, decode_many
from processing.registry import Registry


def letter(i: int, payload: bytes = b'{"id": "BG-ENV-014", "v": NaN}') -> DeadLetter:
    return DeadLetter(f"city/trần-phú/environment/BG-ENV-{i:03d}", f"value NaN is not a finite number ({i})",
                      payload, 1772412000.0 + i, "non_finite")


def test_append_and_read_back_round_trip(tmp_path: Path) -> None:
    f = DeadLetterFile(tmp_path / "dead" / "letters.jsonl")          # the folder is created on first append
    assert f.count == 0 and f.read_all() == []
    raw = bytes(range(256))                                           # any bytes survive, not only UTF-8
    assert f.append(letter(1, raw)) == 1
    assert f.append([letter(2), letter(3)]) == 2
    assert f.append([]) == 0
    assert f.count == len(f) == 3
    back = f.read_all()
    assert back == [letter(1, raw), letter(2), letter(3)]


def test_line_format(tmp_path: Path) -> None:
    f = DeadLetterFile(tmp_path / "d.jsonl")
    f.append(letter(7))
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert set(obj) == {"source", "reason", "code", "received", "payload_b64"}
    assert obj["source"] == "city/trần-phú/environment/BG-ENV-007"          # readable, not \\u-escaped
    assert "trần-phú" in lines[0]
    assert base64.b64decode(obj["payload_b64"]) == b'{"id": "BG-ENV-014", "v": NaN}'
    assert obj["received"] == 1772412007.0 and obj["code"] == "non_finite"


def test_count_includes_letters_already_in_the_file(tmp_path: Path) -> None:
    DeadLetterFile(tmp_path / "d.jsonl").append([letter(1), letter(2)])
    again = DeadLetterFile(tmp_path / "d.jsonl")
    assert again.count == 2
    again.append(letter(3))
    assert again.count == 3 and len(again.read_all()) == 3


def test_threads_append_whole_lines(tmp_path: Path) -> None:
    f = DeadLetterFile(tmp_path / "d.jsonl")
    big = b"x" * 20_000                                                # lines far beyond a pipe buffer

    def worker(k: int) -> None:
        for i in range(50):
            f.append(letter(k * 100 + i, big if i % 10 == 0 else b"{"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert f.count == 200
    back = f.read_all()
    assert len(back) == 200 and {d.source for d in back} == {letter(k * 100 + i).source
                                                             for k in range(4) for i in range(50)}


def test_interrupted_last_line_is_skipped_other_damage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    f = DeadLetterFile(path)
    f.append([letter(1), letter(2)])
    with open(path, "ab") as fh:
        fh.write(b'{"source": "city/a/traffic/X", "rea')                # a crash mid-write
    assert [d.reason for d in DeadLetterFile(path).read_all()] == [letter(1).reason, letter(2).reason]
    path.write_bytes(path.read_bytes().replace(b'"source"', b'"sauce"', 1) + b"\n")
    with pytest.raises(ValueError, match=r"d\.jsonl: line 1: not a dead-letter record"):
        DeadLetterFile(path)


def test_records_what_the_decoder_rejects(tmp_path: Path) -> None:
    out = decode_many([("city/a/environment/S000000", b'{"v": 5000}'), ("t", b"\xff"),
                       ("city/a/environment/S000000", b'{"v": 5}')],
                      registry=Registry.synthetic(1), received=1772412000.0)
    f = DeadLetterFile(tmp_path / "d.jsonl")
    f.append(out.dead)
    assert len(out.batch) == 1
    assert [(d.code, d.payload) for d in f.read_all()] == [("out_of_range", b'{"v": 5000}'), ("invalid_utf8", b"\xff")]
