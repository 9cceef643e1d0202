"""Dead letters in a file, for the embedded mode (no Kafka ``ioc.deadletter`` topic).

One JSON object per line, appended::

    {"source": "city/trần-phú/environment/BG-ENV-014", "reason": "…", "code": "non_finite",
     "received": 1772412000.0, "payload_b64": "eyJpZCI6…"}

The original bytes are kept whole (base64), so a dead letter can be replayed
once its cause is fixed.  Appends are serialised by a lock and written with one
``write`` per call in append mode, so several threads (and, for lines of
ordinary size, processes) can share a file.  A last line cut short by a crash
is skipped when reading; any other unreadable line raises ValueError naming the
file and line.

>>> import tempfile, pathlib
>>> from ingest.formats import DeadLetter
>>> f = DeadLetterFile(pathlib.Path(tempfile.mkdtemp()) / "dead.jsonl")
>>> f.append(DeadLetter("city/a/traffic/X", "unknown sensor \\"X\\"", b'{"v": 1}', 1772412000.0, "unknown_sensor"))
1
>>> f.count, f.read_all()[0].payload
(1, b'{"v": 1}')
"""
from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Iterable

from ingest.formats import DeadLetter

__all__ = ["DeadLetterFile"]


class DeadLetterFile:
    """Append-only JSON-lines file of :class:`~ingest.formats.DeadLetter`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._count = len(self.read_all()) if self.path.exists() else 0

    @property
    def count(self) -> int:
        """Dead letters in the file (those found when opened plus those appended since)."""
        return self._count

    def __len__(self) -> int:
        return self._count

    def append(self, dead: DeadLetter | Iterable[DeadLetter]) -> int:
        """Append one dead letter or many; returns how many were written."""
        letters = [dead] if isinstance(dead, DeadLetter) else list(dead)
        if not letters:
            return 0
        text = "".join(json.dumps({"source": d.source, "reason": d.reason, "code": d.code, "received": d.received,
                                   "payload_b64": base64.b64encode(d.payload).decode("ascii")},
                                  ensure_ascii=False) + "\n" for d in letters)
        data = text.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as fh:
                fh.write(data)
            self._count += len(letters)
        return len(letters)

    def read_all(self) -> list[DeadLetter]:
        """Every dead letter in the file, oldest first (an empty list when there is no file)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = raw.split(b"\n")
        out: list[DeadLetter] = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(DeadLetter(str(obj["source"]), str(obj["reason"]),
                                      base64.b64decode(obj["payload_b64"], validate=True),
                                      float(obj["received"]), str(obj.get("code", "bad_format"))))
            except (ValueError, KeyError, TypeError) as exc:
                if no == len(lines):               # the unterminated last line of an interrupted write
                    break
                raise ValueError(f"{self.path}: line {no}: not a dead-letter record ({exc})") from None
        return out
