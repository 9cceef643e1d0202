"""What the alerting owner has taken from the workers' alert evidence: one copy of each reading,
each sensor's last-heard time and each partition's event clock.

Workers publish alert evidence (:func:`processing.partitions.alert_evidence`) at least once:
after a hand-over, the new owner of a partition publishes again the range since its
checkpoint, with the same values.  The :class:`EvidenceLedger` keeps, per sensor, the newest
reading time taken, and :meth:`EvidenceLedger.admit` passes a row only when it is newer --
copies are dropped by (sensor, time), so each reading counts once in the alerts.  A reading
older than its sensor's newest (a late reading) is taken as a copy too: the core has scored it,
but an alert is about now.

Silence is judged per partition.  A partition's event clock is the newest reading time it has
carried; :meth:`EvidenceLedger.last_seen` shifts each sensor's last-heard time by how far its
partition's clock lags the newest clock, so a sensor is silent when the *other sensors of its
partition* moved on without it.  A partition that stops as a whole -- its worker died and the
group has not moved it yet -- accumulates no silence, and no sensor of it pages anyone for the
pipeline's pause (:meth:`EvidenceLedger.stalled` names such partitions, for the log).

Pure: numpy in, numpy out; :meth:`state` / :meth:`from_state` carry it in the alert store's
horizon, so a standby that takes over resumes with the same ledger.
"""
from __future__ import annotations

import base64
from typing import Any, Mapping

import numpy as np

from processing.errors import StateError

__all__ = ["EvidenceLedger", "LedgerError"]


class LedgerError(StateError, ValueError):
    """A stored ledger that does not fit this city (another registry or partition count)."""


class EvidenceLedger:
    """Per sensor the newest reading time taken (NaN: never), per partition its event clock.

    >>> led = EvidenceLedger(np.array([0, 0, 1]), partitions=2)
    >>> led.admit(np.array([0, 2, 0]), np.array([10., 10., 11.])).tolist()
    [True, True, True]
    >>> led.admit(np.array([0, 1]), np.array([11., 12.])).tolist()       # sensor 0 at 11 is a copy
    [False, True]
    >>> led.now, led.last_seen().tolist()                                # partition 1 lags by 2 s
    (12.0, [11.0, 12.0, 12.0])
    """

    def __init__(self, partition_of: np.ndarray, *, partitions: int) -> None:
        self.partition_of = np.asarray(partition_of, dtype=np.int64)
        self.partitions = int(partitions)
        self.seen = np.full(self.partition_of.size, np.nan)
        self.clock = np.full(self.partitions, np.nan)

    @property
    def now(self) -> float:
        """The newest reading time of any partition (NaN before any)."""
        return float(np.nanmax(self.clock)) if np.isfinite(self.clock).any() else float("nan")

    def admit(self, sensor: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Which rows are new (newer than their sensor's newest taken), and take them.

        Rows of one call are judged against the ledger before the call: several new readings
        of a sensor in one record all pass."""
        sensor = np.asarray(sensor, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            new = ~(ts <= self.seen[sensor])                 # NaN (never seen) compares False: new
        if new.any():
            s, t = sensor[new], ts[new]
            np.fmax.at(self.seen, s, t)
            np.fmax.at(self.clock, self.partition_of[s], t)
        return new

    def last_seen(self) -> np.ndarray:
        """Each sensor's last-heard time as the alert list's silence check reads it: shifted by its
        partition's lag behind the newest clock (NaN: never heard, not judged)."""
        now = self.now
        lag = np.where(np.isnan(self.clock), 0.0, now - self.clock) if np.isfinite(now) else np.zeros(self.partitions)
        return self.seen + lag[self.partition_of]

    def stalled(self, behind_s: float) -> list[int]:
        """Partitions whose clock is more than ``behind_s`` behind the newest (or that never carried any)."""
        now = self.now
        if not np.isfinite(now):
            return []
        with np.errstate(invalid="ignore"):
            late = ~(self.clock >= now - behind_s)
        return np.flatnonzero(late).tolist()

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        """JSON-able state (base64 of the float64 arrays) for the alert store's horizon."""
        return {"sensors": int(self.seen.size), "partitions": self.partitions,
                "seen": base64.b64encode(self.seen.astype("<f8").tobytes()).decode("ascii"),
                "clock": base64.b64encode(self.clock.astype("<f8").tobytes()).decode("ascii")}

    @classmethod
    def from_state(cls, partition_of: np.ndarray, partitions: int, state: Mapping[str, Any]) -> "EvidenceLedger":
        """The ledger :meth:`state` saved; :class:`LedgerError` when it is of another city or partitioning."""
        led = cls(partition_of, partitions=partitions)
        try:
            n, parts = int(state["sensors"]), int(state["partitions"])
            seen = np.frombuffer(base64.b64decode(state["seen"]), dtype="<f8")
            clock = np.frombuffer(base64.b64decode(state["clock"]), dtype="<f8")
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"the stored evidence ledger cannot be read: {exc}") from None
        if n != led.seen.size or parts != partitions or seen.size != n or clock.size != parts:
            raise LedgerError(f"the stored evidence ledger is of {n} sensors on {parts} partitions; this city has "
                              f"{led.seen.size} sensors on {partitions}")
        led.seen[:] = seen
        led.clock[:] = clock
        return led
