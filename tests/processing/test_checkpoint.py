"""Core checkpoints (processing.checkpoint, AnomalyCore.state_arrays / restore_state): the state
survives a round trip bit for bit, a core restored mid-stream scores the rest exactly as one that
never stopped, and a checkpoint of another registry or shape, or a damaged one, is refused with
one line saying what is wrong."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from processing import checkpoint as ck
from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec
from simulators.city import CitySimulator

T0 = 1_772_384_400.0          # 2026-03-02 00:00 +07:00
DAY = 86400.0


def make_registry(kinds: list[str], *, ids: list[str] | None = None) -> Registry:
    intervals = (300.0, 600.0, 60.0)
    ids = ids or [f"BG-{i:02d}-{k}" for i, k in enumerate(kinds)]
    return Registry(tuple(
        SensorSpec(id=sid, name=sid, domain=KINDS[k].domain, kind=k, unit=KINDS[k].unit, ward="Trần Phú",
                   lon=106.19 + 0.001 * i, lat=21.27, interval_s=intervals[i % 3])
        for i, (sid, k) in enumerate(zip(ids, kinds))))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return make_registry([k for k in KINDS for _ in range(2)])       # two sensors of every kind


@pytest.fixture(scope="module")
def batches(registry: Registry) -> list[ReadingBatch]:
    """Four simulated days with anomalies, cut into 48 two-hour batches."""
    sim = CitySimulator(registry, seed=5, anomaly_rate=3.0)
    batch, labels = sim.generate(T0, T0 + 4 * DAY, anomalies_from=T0 + DAY)
    assert labels, "the simulated days should hold anomalies"
    edges = T0 + 7200.0 * np.arange(49)
    return [batch.take((batch.ts >= a) & (batch.ts < b)) for a, b in zip(edges[:-1], edges[1:])]


def fed(registry: Registry, batches: list[ReadingBatch], config: CoreConfig | None = None) -> AnomalyCore:
    core = AnomalyCore(registry, config)
    for b in batches:
        core.update(b)
    return core


def same_state(a: AnomalyCore, b: AnomalyCore) -> bool:
    sa, sb = a.state_arrays(copy=False), b.state_arrays(copy=False)
    return sa.keys() == sb.keys() and all(sa[k].tobytes() == sb[k].tobytes() for k in sa)


POSITION = {"t": T0 + 0.1, "source": "kafka://127.0.0.1:9092/ioc.readings",
            "offsets": {"ioc.readings:0": 12, "ioc.readings:5": 2**40}, "sim": {"nan": float("nan")}}


# ------------------------------------------------------------------------------ round trip

def test_round_trip_restores_every_array_bit_for_bit_and_keeps_the_position(registry, batches) -> None:
    core = fed(registry, batches[:20])
    data = ck.encode(core.state_arrays(), POSITION, registry, core.config)
    assert data[:8] == ck.MAGIC and struct.unpack_from("<H", data, 8)[0] == ck.FORMAT_VERSION
    assert core.state_bytes() <= len(data) < core.state_bytes() + 64 * 1024     # raw arrays, a small header
    got = ck.decode(data, registry, core.config)
    assert set(got.arrays) == {"st", "season", "short", "ring", "ring_aux"}
    assert got.sensors == len(registry) and got.config == ck.config_shape(core.config)
    assert got.position["t"] == POSITION["t"] and got.position["offsets"] == POSITION["offsets"]
    assert np.isnan(got.position["sim"]["nan"])
    assert not any(a.flags.writeable for a in got.arrays.values())         # views of the input bytes
    fresh = AnomalyCore(registry)
    fresh.restore_state(got.arrays)
    assert same_state(core, fresh)
    # the pieces written one by one are the same bytes
    assert b"".join(ck.encode_parts(core.state_arrays(), POSITION, registry, core.config)) == data


def test_state_arrays_are_copies(registry, batches) -> None:
    core = fed(registry, batches[:2])
    arrays = core.state_arrays()
    arrays["st"][:] = -1.0
    assert not (core.state_arrays(copy=False)["st"] == -1.0).all()


def test_a_core_restored_mid_stream_scores_the_rest_exactly_like_one_that_never_stopped(registry, batches) -> None:
    cut = 30                                   # 2.5 days in: seasonal baselines learned, alerts armed
    whole = AnomalyCore(registry)
    expected = [whole.update(b) for b in batches]
    first = fed(registry, batches[:cut])
    data = ck.encode(first.state_arrays(), {"t": float(batches[cut - 1].ts.max())}, registry, first.config)
    del first                                  # "the process died"
    resumed = AnomalyCore(registry)
    resumed.restore_state(ck.decode(data, registry, resumed.config).arrays)
    got = [resumed.update(b) for b in batches[cut:]]
    for e, g in zip(expected[cut:], got):
        np.testing.assert_array_equal(g.score, e.score)
        np.testing.assert_array_equal(g.alert, e.alert)
        np.testing.assert_array_equal(g.reasons, e.reasons)
    assert sum(int(g.alert.sum()) for g in got) > 0, "the rest should hold alerts to compare"
    assert same_state(whole, resumed)
    cold = fed(registry, batches[cut:])        # without the checkpoint the same readings score otherwise
    assert not same_state(whole, cold)


# ------------------------------------------------------------------------------- mismatch

def test_another_registry_is_refused_naming_it(registry, batches) -> None:
    core = fed(registry, batches[:2])
    data = ck.encode(core.state_arrays(), POSITION, registry, core.config)
    kinds = [s.kind for s in registry.sensors]
    ids = registry.ids
    others = {
        "one more sensor": make_registry(kinds + ["pm25"]),
        "another order": make_registry(kinds[1:] + kinds[:1], ids=ids[1:] + ids[:1]),
        "a renamed sensor": make_registry(kinds, ids=["X-renamed"] + ids[1:]),
    }
    for what, other in others.items():
        with pytest.raises(ck.CheckpointMismatch, match="another sensor registry") as err:
            ck.decode(data, other, core.config)
        assert "\n" not in str(err.value), what
    with pytest.raises(ck.CheckpointMismatch, match=f"{len(registry)} sensors .* in the checkpoint, "
                                                    f"{len(registry) + 1} "):
        ck.decode(data, others["one more sensor"])


@pytest.mark.parametrize("field, value", [("window", 256), ("short", 20), ("seasonal_slots", 48)])
def test_another_core_shape_is_refused_naming_the_setting(registry, batches, field, value) -> None:
    core = fed(registry, batches[:2])
    data = ck.encode(core.state_arrays(), POSITION, registry, core.config)
    other = CoreConfig(**{field: value})
    with pytest.raises(ck.CheckpointMismatch, match=f"{field}={getattr(core.config, field)} in the checkpoint, "
                                                    f"{value} now"):
        ck.decode(data, registry, other)
    # settings that do not change shapes (thresholds) do not matter
    ck.decode(data, registry, CoreConfig(alert_on=7.0, th_likelihood=2.0))


def test_another_kernel_state_layout_is_refused(registry, batches, monkeypatch) -> None:
    core = fed(registry, batches[:2])
    data = ck.encode(core.state_arrays(), POSITION, registry, core.config)
    monkeypatch.setattr(ck, "layout_fingerprint", lambda: "0123456789abcdef")
    with pytest.raises(ck.CheckpointMismatch, match="another state layout"):
        ck.decode(data, registry, core.config)


def test_restore_state_checks_names_shapes_and_dtypes_before_touching_anything(registry, batches) -> None:
    core = fed(registry, batches[:3])
    before = core.state_arrays()
    good = core.state_arrays()
    bad = {
        "missing": {k: v for k, v in good.items() if k != "short"},
        "unknown": {**good, "extra": np.zeros(3)},
        "shape": {**good, "ring": good["ring"][:-1]},
        "dtype": {**good, "ring_aux": good["ring_aux"].astype(np.float64)},
        "type": {**good, "st": good["st"].tolist()},
    }
    for what, arrays in bad.items():
        with pytest.raises(ck.CheckpointMismatch) as err:
            core.restore_state(arrays)
        assert "\n" not in str(err.value), what
        assert same_state(core, _with_state(registry, before)), f"{what}: a refused restore changed the core"
    with pytest.raises(ck.CheckpointMismatch, match=r"state array 'ring' has shape"):
        core.restore_state(bad["shape"])
    with pytest.raises(ck.CheckpointMismatch, match=r"'ring_aux' has dtype float64 .* needs float32"):
        core.restore_state(bad["dtype"])


def _with_state(registry: Registry, arrays: dict[str, np.ndarray]) -> AnomalyCore:
    core = AnomalyCore(registry)
    core.restore_state(arrays)
    return core


# ------------------------------------------------------------------------------ corruption

def test_damaged_or_truncated_checkpoints_are_refused_with_one_line(registry, batches) -> None:
    core = fed(registry, batches[:2])
    data = ck.encode(core.state_arrays(), POSITION, registry, core.config)
    header_len = struct.unpack_from("<I", data, 12)[0]
    flipped = lambda at: data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]   # noqa: E731
    cases = {
        "empty": (b"", "shorter than its"),
        "prefix cut": (data[:10], "shorter than its"),
        "header cut": (data[:40], "truncated"),
        "data cut": (data[:-1], "truncated"),
        "half": (data[:len(data) // 2], "truncated"),
        "not a checkpoint": (b"PK\x03\x04" + data[4:], "not a core checkpoint"),
        "other version": (data[:8] + struct.pack("<H", ck.FORMAT_VERSION + 1) + data[10:], "format version"),
        "header bit": (flipped(20 + header_len // 2), "header damaged"),
        "array bit": (flipped(len(data) - 3), "array 'ring_aux' damaged"),
        "first array bit": (flipped(-(-(20 + header_len) // 64) * 64 + 5), "array 'st' damaged"),
    }
    for what, (bad, message) in cases.items():
        with pytest.raises(ck.CheckpointCorrupt) as err:
            ck.decode(bad, registry, core.config)
        assert message in str(err.value), f"{what}: {err.value}"
        assert "\n" not in str(err.value), what
        assert isinstance(err.value, ValueError)
