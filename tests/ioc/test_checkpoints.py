"""The checkpoint file (ioc.checkpoints): written atomically, read back, periodic on a clock."""
from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from ioc import checkpoints
from ioc.checkpoints import Checkpointer, checkpoint_path, read_checkpoint, write_atomic
from processing.batch import ReadingBatch
from processing.checkpoint import CheckpointCorrupt, CheckpointMismatch
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.registry import Registry

T0 = 1_772_384_400.0


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def core() -> AnomalyCore:
    reg = Registry.synthetic(20, interval_s=60.0)
    c = AnomalyCore(reg)
    rng = np.random.default_rng(2)
    k = np.arange(20 * 200)
    c.update(ReadingBatch.from_arrays(k % 20, T0 + 60.0 * (k // 20), 10 + rng.random(k.size)))
    return c


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == np.asarray(b[k]).tobytes() for k in a)


def test_the_file_lives_in_the_data_folder(tmp_path: Path) -> None:
    assert checkpoint_path(tmp_path) == tmp_path / "checkpoint" / "core.ckpt"


def test_save_then_load_gives_the_state_and_position_back(core: AnomalyCore, tmp_path: Path) -> None:
    ck = Checkpointer(checkpoint_path(tmp_path), core.registry, core.config, every_s=0)
    assert ck.load() is None                                    # none yet: a cold start, no error
    info = ck.save(core.state_arrays(), {"t": T0 + 1.5, "source": "x"})
    assert info.path.stat().st_size == info.nbytes > core.state_bytes()
    got = ck.load()
    assert got is not None and got.position == {"t": T0 + 1.5, "source": "x"}
    assert same(core.state_arrays(copy=False), dict(got.arrays))
    assert [p.name for p in info.path.parent.iterdir()] == ["core.ckpt"]     # no temporary file left


def test_a_write_goes_to_a_synced_temporary_file_in_the_same_folder_then_replaces(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    calls: list[tuple] = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.fstat(fd).st_mode)), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", Path(a), Path(b))),
                                                     real_replace(a, b)))
    target = tmp_path / "d" / "core.ckpt"
    assert write_atomic(target, [b"abc", memoryview(b"defg")]) == 7
    assert target.read_bytes() == b"abcdefg"
    kinds = [c[0] for c in calls]
    assert kinds == ["fsync", "replace", "fsync"]               # the file, the rename, then its folder
    _, tmp, dst = calls[1]
    assert tmp.parent == dst.parent == target.parent and tmp != dst
    assert stat.S_ISREG(calls[0][1]) and stat.S_ISDIR(calls[2][1])


def test_a_write_that_fails_midway_leaves_the_previous_checkpoint_whole(core: AnomalyCore, tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path)
    ck = Checkpointer(path, core.registry, core.config, every_s=0)
    ck.save(core.state_arrays(), {"t": 1.0})
    old = path.read_bytes()

    def dying_parts():
        yield b"IOC-CKPT" + b"\0" * 5000
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(path, dying_parts())
    assert path.read_bytes() == old and ck.load().position == {"t": 1.0}
    assert [p.name for p in path.parent.iterdir()] == ["core.ckpt"]


def test_read_back_names_the_file_when_it_is_damaged_or_of_another_registry(core: AnomalyCore,
                                                                           tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path)
    Checkpointer(path, core.registry, core.config, every_s=0).save(core.state_arrays(), {"t": 1.0})
    with pytest.raises(CheckpointMismatch, match=f"^{path}: checkpoint was taken with another sensor registry"):
        read_checkpoint(path, Registry.synthetic(21), core.config)
    with pytest.raises(CheckpointMismatch, match="window=512 in the checkpoint, 64 now"):
        read_checkpoint(path, core.registry, CoreConfig(window=64))
    path.write_bytes(path.read_bytes()[:-100])                  # torn by something else than us
    with pytest.raises(CheckpointCorrupt, match=f"^{path}: checkpoint truncated"):
        read_checkpoint(path, core.registry, core.config)


def test_periodic_checkpoints_follow_the_clock_and_write_in_the_background(core: AnomalyCore,
                                                                          tmp_path: Path) -> None:
    clock = Clock()
    ck = Checkpointer(checkpoint_path(tmp_path), core.registry, core.config, every_s=60.0, clock=clock)
    assert not ck.due()
    clock.t += 59.9
    assert not ck.due()
    clock.t += 0.1
    assert ck.due()
    assert ck.submit(core.state_arrays(), {"t": 2.0})
    assert not ck.due()                                         # the period starts again at the submit
    ck.wait()
    assert ck.saved == 1 and ck.load().position == {"t": 2.0}
    clock.t += 60.0
    assert ck.due()
    ck.save(core.state_arrays(), {"t": 3.0})                    # an explicit save restarts the period too
    assert not ck.due() and ck.saved == 2
    never = Checkpointer(tmp_path / "other.ckpt", core.registry, core.config, every_s=0, clock=clock)
    clock.t += 1e9
    assert not never.due()


def test_one_background_write_at_a_time(core: AnomalyCore, tmp_path: Path, monkeypatch) -> None:
    gate = threading.Event()
    real = checkpoints.write_atomic

    def slow(path, parts):
        gate.wait(10)
        return real(path, parts)

    monkeypatch.setattr(checkpoints, "write_atomic", slow)
    clock = Clock()
    ck = Checkpointer(checkpoint_path(tmp_path), core.registry, core.config, every_s=1.0, clock=clock)
    assert ck.submit(core.state_arrays(), {"t": 1.0})
    clock.t += 5
    assert ck.busy and not ck.due()                             # still writing: not due, and refused
    assert not ck.submit(core.state_arrays(), {"t": 2.0})
    gate.set()
    ck.wait()
    assert not ck.busy and ck.load().position == {"t": 1.0}


def test_a_failed_background_write_is_one_warning_and_keeps_going(core: AnomalyCore, tmp_path: Path,
                                                                  caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    ck = Checkpointer(blocker / "core.ckpt", core.registry, core.config, every_s=5.0)
    with caplog.at_level(logging.WARNING, logger="ioc.checkpoints"):
        assert ck.submit(core.state_arrays(), {"t": 1.0})
        ck.wait()
    assert ck.failures == 1 and ck.saved == 0
    [record] = [r for r in caplog.records if r.name == "ioc.checkpoints"]
    assert "checkpoint not written" in record.getMessage() and "\n" not in record.getMessage()
