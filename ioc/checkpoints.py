"""Core checkpoints on disk: one file in the data folder, written atomically, read at start.

``ioc run`` keeps ``<data-dir>/checkpoint/core.ckpt`` (format: :mod:`processing.checkpoint`):

* **written** every ``every_s`` seconds of wall time (default 60; ``ioc run
  --checkpoint-every S``), once after the pre-roll and at a clean shutdown;
  the state arrays are copied between two batches (so they and the position
  agree exactly) and encoded and written on a thread of its own, so the
  pipeline does not wait for the disk.  A write that fails (disk full) is one
  warning line; the previous checkpoint stays, and the next write tries again;
* **atomically**: the bytes go to a temporary file in the same folder, which is
  fsync'ed and renamed over the old file with ``os.replace`` (and the folder is
  fsync'ed), so a crash or ``kill -9`` at any moment leaves either the old or the
  new checkpoint, never a torn one;
* **read** at start by :meth:`Checkpointer.load`: ``None`` when there is none;
  :class:`~processing.checkpoint.CheckpointError` (one line) when it is damaged
  or was taken with another registry or core shape.  ``ioc run`` then starts cold
  with one warning line (the file is replaced at the next checkpoint): a control
  room that comes back cold is better than one that does not come back.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from processing.checkpoint import Checkpoint, CheckpointError, decode, encode_parts
from processing.config import CoreConfig
from processing.registry import Registry

__all__ = ["DEFAULT_EVERY_S", "Checkpointer", "SaveInfo", "checkpoint_path", "read_checkpoint", "write_atomic"]

log = logging.getLogger(__name__)

#: Wall seconds between periodic checkpoints of ``ioc run``.
DEFAULT_EVERY_S = 60.0


def checkpoint_path(data_dir: str | Path) -> Path:
    """``<data_dir>/checkpoint/core.ckpt``."""
    return Path(data_dir) / "checkpoint" / "core.ckpt"


def write_atomic(path: str | Path, parts: Any) -> int:
    """Write the byte pieces ``parts`` to ``path`` atomically (temporary file in the same folder,
    fsync, ``os.replace``, fsync of the folder); returns the bytes written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    size = 0
    try:
        with open(tmp, "wb") as fh:
            for part in parts:
                fh.write(part)
                size += memoryview(part).nbytes
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):      # the rename itself survives a power cut once the folder is synced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return size


def read_checkpoint(path: str | Path, registry: Registry | None = None,
                    config: CoreConfig | None = None) -> Checkpoint | None:
    """The checkpoint at ``path`` (checked against ``registry``/``config`` when given), or None if
    there is no file.  Raises :class:`~processing.checkpoint.CheckpointError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return decode(data, registry, config)
    except CheckpointError as exc:
        raise type(exc)(f"{path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class SaveInfo:
    """One checkpoint written: where, how big, how long encoding and writing took, its position."""

    path: Path
    nbytes: int
    seconds: float
    position: Mapping[str, Any]


class Checkpointer:
    """The checkpoint file of one core: load at start, periodic saves, a last one at shutdown.

    ``clock`` measures the period (wall seconds; injected in tests).  ``every_s`` <= 0 turns the
    periodic saves off (explicit :meth:`save` still writes)."""

    def __init__(self, path: str | Path, registry: Registry, config: CoreConfig, *,
                 every_s: float = DEFAULT_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        if math.isnan(every_s):
            raise ValueError("the checkpoint period must be a number of seconds")
        self.path = Path(path)
        self.registry = registry
        self.config = config
        self.every_s = float(every_s)
        self._clock = clock
        self._last_at = clock()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.saved = 0
        self.failures = 0
        self.last: SaveInfo | None = None

    # ---------------------------------------------------------------- reading
    def load(self) -> Checkpoint | None:
        """The checkpoint if there is one (see :func:`read_checkpoint`)."""
        return read_checkpoint(self.path, self.registry, self.config)

    # ---------------------------------------------------------------- writing
    def due(self) -> bool:
        """A periodic checkpoint is due (and no background write is still running)."""
        if self.every_s <= 0 or self.busy:
            return False
        return self._clock() - self._last_at >= self.every_s

    @property
    def busy(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def save(self, arrays: Mapping[str, np.ndarray], position: Mapping[str, Any]) -> SaveInfo:
        """Encode and write now (waits for a background write first); raises OSError on failure."""
        self.wait()
        self._last_at = self._clock()
        return self._write(arrays, position)

    def submit(self, arrays: Mapping[str, np.ndarray], position: Mapping[str, Any]) -> bool:
        """Encode and write on a background thread; False (nothing done) if one is still writing.
        ``arrays`` must be copies nobody changes meanwhile (:meth:`AnomalyCore.state_arrays`)."""
        if self.busy:
            return False
        self._last_at = self._clock()
        thread = threading.Thread(target=self._write_logged, args=(arrays, position), name="ioc-checkpoint",
                                  daemon=True)
        self._thread = thread
        thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background write to finish."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _write_logged(self, arrays: Mapping[str, np.ndarray], position: Mapping[str, Any]) -> None:
        try:
            self._write(arrays, position)
        except Exception as exc:  # noqa: BLE001 - the pipeline goes on; the previous checkpoint stays
            self.failures += 1
            log.warning("checkpoint not written to %s: %s (the previous one stays; retrying in %g s)",
                        self.path, exc, self.every_s)

    def _write(self, arrays: Mapping[str, np.ndarray], position: Mapping[str, Any]) -> SaveInfo:
        start = time.perf_counter()
        with self._lock:
            nbytes = write_atomic(self.path, encode_parts(arrays, position, self.registry, self.config))
        info = SaveInfo(self.path, nbytes, time.perf_counter() - start, dict(position))
        self.last = info
        self.saved += 1
        return info
