"""The scored-stream records: round trip, size, and one clear error per kind of damage."""
from __future__ import annotations

import numpy as np
import pytest

from ingest.formats.scores import Scored, ScoresFormatError, decode, encode


def _record(n: int) -> Scored:
    rng = np.random.default_rng(n)
    return Scored(5, 1000, 1000 + n, "worker-ä", rng.integers(0, 500, n).astype(np.int32), rng.random(n) * 1e9,
                  rng.normal(size=n), rng.random(n).astype(np.float32), rng.random(n) > 0.5,
                  rng.integers(0, 2 ** 16, n).astype(np.uint16))


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_round_trip_keeps_every_column(n):
    rec = _record(n)
    data = encode(rec)
    assert len(data) == 29 + len("worker-ä".encode()) + 27 * n
    back = decode(data)
    assert (back.partition, back.first_offset, back.next_offset, back.worker) == (5, 1000, 1000 + n, "worker-ä")
    for field in ("sensor", "ts", "value", "score", "alert", "reasons"):
        np.testing.assert_array_equal(getattr(back, field), getattr(rec, field))


def test_damage_is_named():
    data = encode(_record(3))
    with pytest.raises(ScoresFormatError, match="shorter than"):
        decode(data[:10])
    with pytest.raises(ScoresFormatError, match="not a scores record"):
        decode(b"XXXX" + data[4:])
    with pytest.raises(ScoresFormatError, match="should be .* bytes, got"):
        decode(data[:-1])
    with pytest.raises(ScoresFormatError, match="version 9"):
        decode(data[:4] + b"\x09\x00" + data[6:])


def test_chunks_keep_every_row_in_order():
    rec = _record(45)
    parts = rec.chunks(20)
    assert [len(p) for p in parts] == [20, 20, 5]
    assert all((p.partition, p.first_offset, p.next_offset, p.worker) == (5, 1000, 1045, "worker-ä") for p in parts)
    np.testing.assert_array_equal(np.concatenate([p.ts for p in parts]), rec.ts)
    assert rec.chunks(45) == [rec]
    np.testing.assert_array_equal(rec.take(np.array([3, 1])).sensor, rec.sensor[[3, 1]])
