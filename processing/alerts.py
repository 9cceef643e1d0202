"""A first alert list: alerts opened from the anomaly core's alert flags, and handled by people.

Pure: no I/O, and every clock is an argument.

An alert is keyed by ``(sensor, kind)``, where the kind is the main reason of
the reading that raised the flag (``limit``, ``stuck``, ``deviation``, ...,
``anomaly`` when no single detector is named) or ``silent`` for a sensor that
stopped reporting.  Its life::

    flag rises (onset) ──▶ open ──acknowledge──▶ acknowledged ──resolve──▶ resolved
         │  flag stays on: the same alert is updated (last value, peak score, severity)
         └─ flag clears: marked *cleared*; auto-resolved ``auto_resolve_s`` later
            (``tick``), unless the flag rises again first, which re-opens the same alert

Severity: ``critical`` for a hard-limit breach (registry limits) and for a
silent sensor, ``info`` for sensor faults that are not city incidents (a
flatline, a gap, invalid values), ``warning`` otherwise.  It can only rise
during an alert; an acknowledged alert whose severity rises returns to open.

Every change is reported as a typed :class:`Change` (``opened``, ``reopened``, ``updated``,
``acknowledged``, ``cleared``, ``resolved``, with the alert before and after), in the order
it was made, so the alerting engine turns changes into events without comparing copies.

Intake is vectorised: :meth:`AlertList.ingest` sorts a scored batch by sensor
and time once, finds the runs of flagged readings with numpy, and reduces each
run (peak score, reasons, count) with ``reduceat``; Python objects are made per
alert run, never per reading.  Alerts are frozen :class:`Alert` values, replaced
on every change and stamped with a growing ``rev`` so a display can send only
what changed.
"""
from __future__ import annotations

import dataclasses
import operator
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

import numpy as np

from processing.batch import ReadingBatch
from processing.reasons import Reason
from processing.registry import Registry
from processing.errors import IocError

T = TypeVar("T")

__all__ = ["ALERT_KINDS", "CHANGE_TYPES", "Alert", "AlertConfig", "AlertError", "AlertList", "Change", "SEVERITIES",
           "SEVERITY_RANK", "STATES", "feed_sort_key", "kind_of", "replacer"]

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
STATES: tuple[str, ...] = ("open", "acknowledged", "resolved")

#: Which reason names an alert, most telling first.
_KIND_ORDER: tuple[tuple[Reason, str], ...] = (
    (Reason.LIMIT, "limit"), (Reason.STUCK, "stuck"), (Reason.DEVIATION, "deviation"),
    (Reason.SEASONAL, "seasonal"), (Reason.RATE, "rate"), (Reason.GAP, "gap"),
    (Reason.INVALID, "invalid"), (Reason.LATE, "late"),
)
_KIND_BITS: tuple[tuple[int, str], ...] = tuple((int(b), k) for b, k in _KIND_ORDER)
#: every kind an alert can have (:func:`kind_of`), the names routing rules may use
ALERT_KINDS: tuple[str, ...] = tuple(k for _, k in _KIND_ORDER) + ("anomaly", "silent")
_SILENT, _LIMIT = int(Reason.SILENT), int(Reason.LIMIT)
_INFO_KINDS = frozenset({"stuck", "gap", "invalid", "late"})
#: severity -> rank (higher is worse); the one ordering the engine, the routing rules and the feed use
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
_STATE_RANK = {"open": 0, "acknowledged": 1, "resolved": 2}
_SYSTEM = "system"


class AlertError(IocError, ValueError):
    """An operator action that cannot be done (unknown alert, already resolved, no name)."""


def kind_of(reasons: int) -> str:
    """The kind of an alert raised by a reading with these reason bits."""
    reasons = int(reasons)
    if reasons & _SILENT:
        return "silent"
    for bit, name in _KIND_BITS:
        if reasons & bit:
            return name
    return "anomaly"


def _severity(kind: str, reasons: int) -> str:
    if kind in ("limit", "silent") or int(reasons) & _LIMIT:
        return "critical"
    return "info" if kind in _INFO_KINDS else "warning"


@dataclass(frozen=True, slots=True)
class AlertConfig:
    # a cleared alert (flag off, sensor back) resolves itself this long after clearing
    auto_resolve_s: float = 900.0
    # a sensor is silent after this many of its intervals without a reading
    silence_factor: float = 3.0
    # resolved alerts kept for the record (oldest dropped first)
    keep_resolved: int = 200

    def __post_init__(self) -> None:
        if not self.auto_resolve_s >= 0:
            raise ValueError(f"alert setting 'auto_resolve_s' must be >= 0, got {self.auto_resolve_s!r}")
        if not self.silence_factor > 1:
            raise ValueError(f"alert setting 'silence_factor' must be > 1, got {self.silence_factor!r}")
        if self.keep_resolved < 0:
            raise ValueError(f"alert setting 'keep_resolved' must be >= 0, got {self.keep_resolved!r}")


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    sensor: int                  # index into the registry
    sensor_id: str
    kind: str
    severity: str
    state: str
    opened_at: float             # epoch seconds of the reading that raised it
    last_at: float               # newest reading (or check) that kept it on
    peak_score: float
    last_value: float
    reasons: int                 # OR of the Reason bits seen while it was on
    readings: int                # flagged readings counted into it
    occurrences: int = 1         # times the condition rose (re-opened after clearing)
    cleared_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    comment: str = ""
    rev: int = 0

    @property
    def active(self) -> bool:
        """The condition is still on (not cleared) and nobody resolved it."""
        return self.cleared_at is None and self.state != "resolved"


def replacer(cls: type[T]) -> Callable[..., T]:
    """``dataclasses.replace`` for instances of the frozen dataclass ``cls``, with the field
    introspection done once here instead of on every call (alert intake's hot path)."""
    names = tuple(f.name for f in dataclasses.fields(cls))   # type: ignore[arg-type]
    get = operator.attrgetter(*names)
    index = {n: i for i, n in enumerate(names)}

    def replace(obj: T, **changes: object) -> T:
        values = list(get(obj))
        for name, value in changes.items():
            values[index[name]] = value
        return cls(*values)
    return replace


_with = replacer(Alert)

#: what can happen to an alert, in :class:`Change`
CHANGE_TYPES: tuple[str, ...] = ("opened", "reopened", "updated", "acknowledged", "cleared", "resolved")


@dataclass(frozen=True, slots=True)
class Change:
    """One transition of one alert, as :class:`AlertList` made it.

    ``opened``: a new alert (``before`` is None); ``reopened``: its condition rose again after
    clearing (one more occurrence); ``updated``: the condition goes on (newest value, peak,
    maybe a higher severity); ``acknowledged``; ``cleared``: the condition went off;
    ``resolved``: closed by a person or by the auto-resolve."""

    type: str
    before: Alert | None
    after: Alert

    @property
    def alert_id(self) -> int:
        return self.after.id

    @property
    def severity_rose(self) -> bool:
        return self.before is not None and SEVERITY_RANK[self.after.severity] > SEVERITY_RANK[self.before.severity]


def feed_sort_key(alert: Alert) -> tuple:
    """Order for a display: open before acknowledged before resolved, then most severe, then newest."""
    return (_STATE_RANK[alert.state], -SEVERITY_RANK[alert.severity], -alert.opened_at, -alert.id)


class AlertList:
    """The alerts of one registry's sensors.  Not thread-safe: one owner calls it."""

    def __init__(self, registry: Registry, config: AlertConfig | None = None) -> None:
        self.registry = registry
        self.config = config or AlertConfig()
        n = len(registry)
        self._ids = registry.ids
        self._alerts: dict[int, Alert] = {}
        self._flag = np.zeros(n, dtype=bool)             # the core's flag after the last reading seen
        self._active = np.full(n, -1, dtype=np.int64)    # alert of the current flagged run
        self._silence = np.full(n, -1, dtype=np.int64)   # alert of the current silence
        self._by_key: dict[tuple[int, str], int] = {}    # unresolved alert per (sensor, kind)
        self._cleared: set[int] = set()
        self._resolved: deque[int] = deque()
        self._next_id = 1
        self._watch_from: float | None = None            # silence is measured from here at the earliest
        self.rev = 0

    # ------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._alerts)

    def get(self, alert_id: int) -> Alert:
        try:
            return self._alerts[alert_id]
        except KeyError:
            raise AlertError(f"no alert {alert_id}") from None

    def alerts(self, states: Iterable[str] | None = None) -> tuple[Alert, ...]:
        """Alerts (kept resolved ones included), in id order, optionally of some states only."""
        if states is None:
            return tuple(self._alerts.values())
        wanted = set(states)
        unknown = wanted - set(STATES)
        if unknown:
            raise AlertError(f"unknown alert state(s) {sorted(unknown)}; known: {', '.join(STATES)}")
        return tuple(a for a in self._alerts.values() if a.state in wanted)

    def count(self, state: str = "open") -> int:
        return sum(1 for a in self._alerts.values() if a.state == state)

    # ------------------------------------------------------------- intake
    def ingest(self, batch: ReadingBatch, alert: np.ndarray, score: np.ndarray, reasons: np.ndarray) -> list[Change]:
        """Take the scored readings of one batch; returns the changes it made, in order.

        ``alert``, ``score`` and ``reasons`` are the core's per-reading outputs
        (``Scores.alert``, ``Scores.score``, ``Scores.reasons``) in batch order.
        """
        m = len(batch)
        if m == 0:
            return []
        if not (len(alert) == len(score) == len(reasons) == m):
            raise ValueError("ingest: scores and batch differ in length")
        # (sensor, time) order; a batch already in it is read as it is (views, no copies)
        order = slice(None) if batch.in_sensor_order() else np.lexsort((batch.ts, batch.sensor))
        s = batch.sensor[order].astype(np.int64)
        t = batch.ts[order]
        v = batch.value[order]
        a = np.asarray(alert, dtype=bool)[order]
        sc = np.asarray(score, dtype=np.float64)[order]
        rs = np.asarray(reasons, dtype=np.int64)[order]

        first = np.ones(m, dtype=bool)
        first[1:] = s[1:] != s[:-1]
        prev = np.empty(m, dtype=bool)
        prev[1:] = a[:-1]
        prev[first] = self._flag[s[first]]
        onset = a & ~prev
        starts = a & (~prev | first)       # a run of flagged readings begins (new, or carried over)
        changed: list[Change] = []

        # runs carried over from the previous batch that end on this batch's first reading
        for row in np.flatnonzero(first & ~a & prev).tolist():
            self._clear_run(int(s[row]), float(t[row]), changed)

        flagged = np.flatnonzero(a)
        if flagged.size:
            bounds = np.flatnonzero(starts[flagged])
            run_first = flagged[bounds]
            run_last = flagged[np.r_[bounds[1:], flagged.size] - 1]
            peak = np.maximum.reduceat(sc[flagged], bounds)
            bits = np.bitwise_or.reduceat(rs[flagged], bounds)
            count = np.diff(np.r_[bounds, flagged.size])
            after = np.minimum(run_last + 1, m - 1)
            ended = (run_last + 1 < m) & ~first[after]           # the next reading of that sensor is unflagged
            cols = zip(s[run_first].tolist(), onset[run_first].tolist(), rs[run_first].tolist(),
                       t[run_first].tolist(), t[run_last].tolist(), v[run_last].tolist(), peak.tolist(),
                       bits.tolist(), count.tolist(), ended.tolist(), t[after].tolist())
            for (i, is_onset, first_bits, t0, t1, last_v, pk, bb, n, end, t_end) in cols:
                if is_onset:
                    change = self._raise(i, kind_of(first_bits), t0, t1, last_v, pk, bb, n)
                    self._active[i] = change.alert_id
                    changed.append(change)
                else:
                    going_on = self._continue(int(self._active[i]), t1, last_v, pk, bb, n)
                    if going_on is not None:
                        changed.append(going_on)
                if end:
                    self._clear_run(i, t_end, changed)

        last = np.r_[np.flatnonzero(first)[1:], m] - 1
        self._flag[s[last]] = a[last]
        return changed

    def watch_from(self, t: float) -> None:
        """Measure silence from ``t`` (e.g. the process start or the live start) for sensors
        last heard before it; set by the first :meth:`check_silence` when never called."""
        self._watch_from = float(t)

    @property
    def watching_since(self) -> float | None:
        """When silence is measured from for sensors last heard before it (None: not yet)."""
        return self._watch_from

    def silent_sensors(self) -> np.ndarray:
        """Indices of the sensors silent now (their ``silent`` alert is open): the one rule the
        display's *offline* and the silent alert share."""
        return np.flatnonzero(self._silence >= 0)

    def check_silence(self, last_seen: np.ndarray, now: float) -> list[Change]:
        """Open a ``silent`` alert for each sensor whose newest reading (``last_seen``,
        epoch seconds, NaN = never, ignored) is more than ``silence_factor`` intervals
        before ``now``; clear it when the sensor reports again.  Returns the changes.

        Silence is measured from the newest reading or from when this list started
        watching (:meth:`watch_from`; by default the ``now`` of the first call),
        whichever is later: after a (re)start, a sensor last heard long ago -- e.g.
        a ``last_seen`` restored from a checkpoint -- gets one full
        ``silence_factor x interval`` to report before it alerts, so a restart does
        not raise a silent alert for every sensor at once."""
        now = float(now)
        if self._watch_from is None:
            self._watch_from = now
        seen = np.asarray(last_seen, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            since = np.where(np.isnan(seen), np.nan, np.maximum(seen, self._watch_from))
            silent = (now - since) > self.config.silence_factor * self.registry.interval_s
        tracked = self._silence >= 0
        changed: list[Change] = []
        for i in np.flatnonzero(silent & ~tracked).tolist():
            change = self._raise(i, "silent", now, now, float("nan"), 1.0, int(Reason.SILENT), 0)
            self._silence[i] = change.alert_id
            changed.append(change)
        for i in np.flatnonzero(~silent & tracked).tolist():
            aid = int(self._silence[i])
            self._silence[i] = -1
            cleared = self._mark_cleared(aid, now)
            if cleared is not None:
                changed.append(cleared)
        return changed

    def tick(self, now: float) -> list[Change]:
        """Resolve cleared alerts whose condition has stayed off for ``auto_resolve_s``."""
        due = [aid for aid in self._cleared
               if self._alerts[aid].cleared_at + self.config.auto_resolve_s <= now]  # type: ignore[operator]
        return [self._close(aid, _SYSTEM, now, "auto-resolved: condition cleared") for aid in sorted(due)]

    def restore(self, alerts: Iterable[Alert], next_id: int, rev: int = 0) -> None:
        """Rebuild the list from stored alerts after a restart (an empty list only).

        Unresolved alerts keep their dedup key; an uncleared one stays the active
        run (or silence) of its sensor, so the condition continuing updates it."""
        if self._alerts:
            raise AlertError("restore: the alert list is not empty")
        for a in sorted(alerts, key=lambda x: x.id):
            self._alerts[a.id] = a
            self.rev = max(self.rev, a.rev)
            if a.state == "resolved":
                self._resolved.append(a.id)
                continue
            self._by_key[(a.sensor, a.kind)] = a.id
            if a.cleared_at is not None:
                self._cleared.add(a.id)
            elif a.kind == "silent":
                self._silence[a.sensor] = a.id
            else:
                self._active[a.sensor] = a.id
                self._flag[a.sensor] = True
        self._next_id = max([next_id, self._next_id] + [a + 1 for a in self._alerts])
        self.rev = max(self.rev, rev)

    def forget(self, alert_ids: Iterable[int]) -> None:
        """Drop resolved alerts from memory (their owner keeps the record elsewhere)."""
        for aid in alert_ids:
            a = self._alerts.get(aid)
            if a is not None and a.state == "resolved":
                del self._alerts[aid]
        self._resolved = deque(i for i in self._resolved if i in self._alerts)

    # ---------------------------------------------------------- operators
    def acknowledge(self, alert_id: int, by: str, now: float) -> Change | None:
        """An officer takes the alert; acknowledging twice keeps the first acknowledgement (None)."""
        who = _name(by)
        a = self.get(alert_id)
        if a.state == "resolved":
            raise AlertError(f"alert {alert_id} is already resolved")
        if a.state == "acknowledged":
            return None
        return Change("acknowledged", a, self._put(_with(a, state="acknowledged", acknowledged_by=who,
                                                         acknowledged_at=now)))

    def resolve(self, alert_id: int, by: str, now: float, comment: str = "") -> Change:
        """Close the alert.  If its condition is still on, it is not raised again until it clears."""
        who = _name(by)
        a = self.get(alert_id)
        if a.state == "resolved":
            raise AlertError(f"alert {alert_id} is already resolved")
        return self._close(alert_id, who, now, str(comment).strip()[:500])

    # ------------------------------------------------------------ private
    def _put(self, alert: Alert) -> Alert:
        self.rev += 1
        alert = _with(alert, rev=self.rev)
        self._alerts[alert.id] = alert
        return alert

    def _raise(self, i: int, kind: str, t0: float, t1: float, value: float, peak: float, bits: int,
               n: int) -> Change:
        sev = _severity(kind, bits)
        key = (i, kind)
        aid = self._by_key.get(key)
        if aid is not None:                      # the same condition again: re-open it
            a = self._alerts[aid]
            rises = SEVERITY_RANK[sev] > SEVERITY_RANK[a.severity]
            self._cleared.discard(aid)
            return Change("reopened", a, self._put(_with(
                a, cleared_at=None, occurrences=a.occurrences + 1, last_at=max(a.last_at, t1), last_value=value,
                peak_score=max(a.peak_score, peak), reasons=a.reasons | bits, readings=a.readings + n,
                severity=sev if rises else a.severity, state="open" if rises else a.state)))
        aid = self._next_id
        self._next_id += 1
        self._by_key[key] = aid
        return Change("opened", None, self._put(Alert(
            id=aid, sensor=i, sensor_id=self._ids[i], kind=kind, severity=sev, state="open", opened_at=t0,
            last_at=t1, peak_score=peak, last_value=value, reasons=bits, readings=n)))

    def _continue(self, aid: int, t1: float, value: float, peak: float, bits: int, n: int) -> Change | None:
        a = self._alerts.get(aid)
        if a is None or a.state == "resolved":
            return None
        sev = _severity(a.kind, a.reasons | bits)
        rises = SEVERITY_RANK[sev] > SEVERITY_RANK[a.severity]
        return Change("updated", a, self._put(_with(
            a, last_at=max(a.last_at, t1), last_value=value, peak_score=max(a.peak_score, peak),
            reasons=a.reasons | bits, readings=a.readings + n, severity=sev if rises else a.severity,
            state="open" if rises else a.state)))

    def _clear_run(self, i: int, t: float, changed: list[Change]) -> None:
        aid = int(self._active[i])
        self._active[i] = -1
        cleared = self._mark_cleared(aid, t) if aid >= 0 else None
        if cleared is not None:
            changed.append(cleared)

    def _mark_cleared(self, aid: int, t: float) -> Change | None:
        a = self._alerts.get(aid)
        if a is None or a.state == "resolved" or a.cleared_at is not None:
            return None
        self._cleared.add(aid)
        return Change("cleared", a, self._put(_with(a, cleared_at=t)))

    def _close(self, aid: int, who: str, now: float, comment: str) -> Change:
        a = self._alerts[aid]
        self._cleared.discard(aid)
        if self._by_key.get((a.sensor, a.kind)) == aid:
            del self._by_key[(a.sensor, a.kind)]
        out = self._put(_with(a, state="resolved", resolved_by=who, resolved_at=now, comment=comment))
        self._resolved.append(aid)
        while len(self._resolved) > self.config.keep_resolved:
            old = self._resolved.popleft()
            self._alerts.pop(old, None)
        return Change("resolved", a, out)


def _name(by: str) -> str:
    who = str(by or "").strip()
    if not who:
        raise AlertError("an officer's name is required")
    if len(who) > 64:
        raise AlertError("an officer's name must be at most 64 characters")
    return who

