"""The alert engine: lifecycle, dedup, flaps, incidents, silences, routing and escalation.

Pure: no I/O, every clock an argument.  Built on :class:`processing.alerts.AlertList`
(vectorised intake: numpy finds the runs of flagged readings, one Python object
per *alert*, never per reading) and adds what pushes alerts to people::

    reading flags ─▶ AlertList (dedup by sensor + kind, auto-resolve, silence) ─▶ typed Changes, in order
                                  │
                 AlertEngine._sync: per Change → events + notices
                   opened      → route (rules → team), silenced? grouped into an incident? else notify level 0
                   reopened    → a *flap*: same alert, counted, never re-notified; ``flapping`` past the threshold
                   severity ↑  → Update to the current level (a reopened or updated alert whose severity rose)
                   cleared     → recorded; the alert resolves itself later unless it re-rises
                   resolved    → Cancel on the team's topics

The list owns each alert's lifecycle record (:class:`~processing.alerts.Alert`); the engine
keeps, per alert, the routing state around the newest record (:class:`Routed`) and never
compares two records to find out what happened: each :class:`~processing.alerts.Change`
says it.
    tick(now) ─▶ auto-resolve, escalation (not acknowledged after N min and still on → next level),
                 end of a maintenance window (a still-active silenced alert is notified then)

Every state transition is an :class:`Event` (numbered, for the store and the
audit trail); every delivery to make is a :class:`Notice` carrying an
idempotency key ``<alert>:<event>:<channel>:<recipient>``.  Nothing is sent
here: the I/O layer stores the outcome and dispatches the notices.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from processing.alerting.config import AlertingConfig, Team
from processing.alerting.roster import Roster
from processing.alerting.routing import Router
from processing.alerts import Alert, AlertConfig, AlertError, AlertList, Change, replacer
from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["AlertEngine", "EVENT_TYPES", "Event", "Incident", "Notice", "Outcome", "Routed"]

EVENT_TYPES: tuple[str, ...] = (
    "opened", "silenced", "grouped", "incident", "flap", "flapping", "severity", "cleared", "reopened",
    "escalated", "unsilenced", "acknowledged", "assigned", "resolved", "incident_resolved")


@dataclass(frozen=True, slots=True)
class Event:
    """One state transition of an alert (or of its incident)."""
    seq: int
    alert_id: int
    type: str
    at: float
    by: str = "system"
    level: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One delivery to make: an alert event to one recipient on one channel."""
    key: str                 # idempotency key: alert:event:channel:recipient
    alert_id: int
    event_seq: int
    event: str
    msg_type: str            # CAP msgType: Alert | Update | Cancel
    channel: str             # webhook | email | mqtt | kafka
    address: str             # URL, e-mail address or topic
    officer: str             # officer id ("" for a topic)
    level: int


@dataclass(frozen=True, slots=True)
class Routed:
    """An alert as the engine pushes it: the lifecycle record plus routing state."""
    alert: Alert
    team: str
    level: int = 0                      # escalation level reached
    notified_at: float | None = None    # when level 0 was told (None: not yet / never)
    escalate_at: float | None = None    # next escalation due (None: none pending)
    silenced_by: str | None = None      # silence id that kept it quiet
    flaps: int = 0
    flapping: bool = False
    incident: int | None = None
    assignee: str | None = None
    first_event: int = 0                # seq of the event that opened it (CAP references)
    created_at: float = 0.0             # engine time of that event (the first CAP message's ``sent``)

    @property
    def id(self) -> int:
        return self.alert.id


@dataclass(frozen=True, slots=True)
class Incident:
    """Several unresolved alerts in one ward and domain, handled as one."""
    id: int
    ward: str
    domain: str
    team: str
    alert_ids: tuple[int, ...]
    opened_at: float
    resolved_at: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one engine call changed: alerts to store, events to record, notices to deliver."""
    alerts: tuple[Routed, ...] = ()
    events: tuple[Event, ...] = ()
    notices: tuple[Notice, ...] = ()
    incidents: tuple[Incident, ...] = ()

    def __add__(self, other: "Outcome") -> "Outcome":
        seen = {r.id: r for r in self.alerts}
        seen.update({r.id: r for r in other.alerts})
        inc = {i.id: i for i in self.incidents}
        inc.update({i.id: i for i in other.incidents})
        return Outcome(tuple(seen.values()), self.events + other.events, self.notices + other.notices,
                       tuple(inc.values()))


_with = replacer(Routed)


class _Acc:
    """Collects one call's outcome."""

    def __init__(self) -> None:
        self.alerts: dict[int, Routed] = {}
        self.events: list[Event] = []
        self.notices: list[Notice] = []
        self.incidents: dict[int, Incident] = {}

    def done(self) -> Outcome:
        return Outcome(tuple(self.alerts.values()), tuple(self.events), tuple(self.notices),
                       tuple(self.incidents.values()))


class AlertEngine:
    """Alerts of one registry, routed by one configuration.  Not thread-safe: one owner calls it."""

    def __init__(self, registry: Registry, config: AlertingConfig) -> None:
        self.registry = registry
        self.config = config
        e = config.engine
        # the list keeps every resolved alert until this engine has seen it resolve (see _prune)
        self.list = AlertList(registry, AlertConfig(auto_resolve_s=e.auto_resolve_s, silence_factor=e.silence_factor,
                                                    keep_resolved=2**62))
        self._resolved: list[int] = []
        self.roster = Roster(config)
        self.router = Router(config, self.roster)
        self._routed: dict[int, Routed] = {}
        self._incidents: dict[int, Incident] = {}
        self._open_incident: dict[tuple[str, str], int] = {}
        self._seq = 1
        self._next_incident = 1
        # unresolved, notified alerts not yet in an incident, per (ward, domain): incident candidates
        self._loose: dict[tuple[str, str], set[int]] = {}
        self._members_open: dict[int, set[int]] = {}      # incident → its unresolved alerts

    # ------------------------------------------------------------ reading
    def get(self, alert_id: int) -> Routed:
        r = self._routed.get(alert_id)
        if r is None:
            raise AlertError(f"no alert {alert_id}")
        return r

    def alerts(self, states: Iterable[str] | None = None) -> tuple[Routed, ...]:
        return tuple(self._routed[a.id] for a in self.list.alerts(states) if a.id in self._routed)

    def incidents(self) -> tuple[Incident, ...]:
        return tuple(self._incidents.values())

    @property
    def next_seq(self) -> int:
        return self._seq

    # ------------------------------------------------------------- intake
    def ingest(self, batch: ReadingBatch, alert: np.ndarray, score: np.ndarray, reasons: np.ndarray,
               now: float) -> Outcome:
        """Take the core's scored batch (see :meth:`AlertList.ingest`) at wall/sim time ``now``."""
        acc = _Acc()
        self._sync(self.list.ingest(batch, alert, score, reasons), now, acc)
        return acc.done()

    def check_silence(self, last_seen: np.ndarray, now: float) -> Outcome:
        """Open / clear ``silent`` alerts from the core's ``last_seen`` (see :meth:`AlertList.check_silence`)."""
        acc = _Acc()
        self._sync(self.list.check_silence(last_seen, now), now, acc)
        return acc.done()

    def watch_from(self, t: float) -> None:
        """Measure silence from ``t`` at the earliest (see :meth:`AlertList.watch_from`); by default
        from the first :meth:`check_silence`, so a restart does not flood with silent alerts."""
        self.list.watch_from(t)

    def tick(self, now: float) -> Outcome:
        """Auto-resolve cleared alerts, escalate unacknowledged ones, notify at the end of a silence."""
        acc = _Acc()
        self._sync(self.list.tick(now), now, acc)
        for r in list(self._routed.values()):
            a = r.alert
            if a.state != "open":
                continue
            if r.silenced_by is not None and r.notified_at is None:
                spec = self.registry[a.sensor]
                if a.active and self.roster.silenced_by(spec.id, spec.ward, spec.domain, now) is None:
                    self._notify_open(r, now, acc, "unsilenced", detail=f"silence {r.silenced_by} ended")
                    self._loose.setdefault(self._group(a), set()).add(a.id)
                continue
            if r.escalate_at is not None and now >= r.escalate_at and a.active:   # a cleared one waits
                team = self.config.team(r.team)
                level = r.level + 1
                ev = self._event(acc, a.id, "escalated", now, level=level,
                                 detail=f"not acknowledged {int((now - (r.notified_at or now)) // 60)} min")
                self._notices(acc, r, ev, "Update", team, level, now, topics=False)
                self._put(acc, _with(
                    r, level=level, escalate_at=self.router.escalation_due(team, level, r.notified_at or now)))
        return acc.done()

    def step(self, batch: ReadingBatch | None, scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
             last_seen: np.ndarray | None, now: float) -> Outcome:
        """One pipeline step: ingest (if any), silence check (if ``last_seen``), tick."""
        out = Outcome()
        if batch is not None and scores is not None:
            out = out + self.ingest(batch, scores[0], scores[1], scores[2], now)
        if last_seen is not None:
            out = out + self.check_silence(last_seen, now)
        return out + self.tick(now)

    def quiet(self, out: Outcome) -> Outcome:
        """The same outcome with its notices dropped and the escalation of its alerts disarmed
        (history replayed before going live must not page anyone)."""
        alerts = []
        for r in out.alerts:
            cur = self._routed.get(r.id)
            if cur is not None and cur.escalate_at is not None:
                cur = _with(cur, escalate_at=None)
                self._routed[r.id] = cur
            alerts.append(cur or r)
        return Outcome(tuple(alerts), out.events, (), out.incidents)

    # ---------------------------------------------------------- operators
    def acknowledge(self, alert_id: int, by: str, now: float, comment: str = "") -> Outcome:
        """An officer takes the alert: escalation stops."""
        r = self.get(alert_id)
        change = self.list.acknowledge(alert_id, by, now)
        acc = _Acc()
        if change is None:                  # acknowledged already: the first acknowledgement stands
            return acc.done()
        a = change.after
        ev = self._event(acc, alert_id, "acknowledged", now, by=a.acknowledged_by or by, level=r.level,
                         detail=str(comment).strip()[:500])
        r = _with(r, alert=a, escalate_at=None)
        self._topic_notices(acc, r, ev, "Update", now)
        self._put(acc, r)
        return acc.done()

    def assign(self, alert_id: int, officer_id: str, by: str, now: float) -> Outcome:
        """Give the alert to one officer (an id from the configuration)."""
        r = self.get(alert_id)
        if r.alert.state == "resolved":
            raise AlertError(f"alert {alert_id} is already resolved")
        try:
            officer = self.config.officer(officer_id)
        except KeyError:
            raise AlertError(f"unknown officer {officer_id!r}") from None
        who = str(by or "").strip()
        if not who:
            raise AlertError("a name is required")
        acc = _Acc()
        self._event(acc, alert_id, "assigned", now, by=who, level=r.level, detail=officer.id)
        self._put(acc, _with(r, assignee=officer.id))
        return acc.done()

    def resolve(self, alert_id: int, by: str, now: float, comment: str = "") -> Outcome:
        """Close the alert with a comment."""
        self.get(alert_id)
        acc = _Acc()
        self._sync([self.list.resolve(alert_id, by, now, comment)], now, acc)
        return acc.done()

    # ------------------------------------------------------------ restore
    def restore(self, routed: Sequence[Routed], incidents: Sequence[Incident], next_seq: int,
                next_alert_id: int) -> None:
        """Rebuild from the store after a restart (open alerts stay open, escalation resumes)."""
        if self._routed:
            raise AlertError("restore: the engine already holds alerts")
        self.list.restore([r.alert for r in routed], next_alert_id)
        self._routed = {r.id: r for r in routed}
        for inc in incidents:
            self._incidents[inc.id] = inc
            if inc.resolved_at is None:
                self._open_incident[(inc.ward, inc.domain)] = inc.id
                self._members_open[inc.id] = {r.id for r in routed if r.incident == inc.id
                                              and r.alert.state != "resolved"}
        self._next_incident = max([self._next_incident] + [i.id + 1 for i in incidents])
        for r in routed:
            if r.alert.state != "resolved" and r.incident is None and r.silenced_by is None:
                self._loose.setdefault(self._group(r.alert), set()).add(r.id)
        self._seq = max(self._seq, next_seq)

    # ------------------------------------------------------------ private
    def _event(self, acc: _Acc, alert_id: int, typ: str, at: float, *, by: str = "system", level: int = 0,
               detail: str = "") -> Event:
        ev = Event(self._seq, alert_id, typ, at, by, level, detail)
        self._seq += 1
        acc.events.append(ev)
        return ev

    def _put(self, acc: _Acc, r: Routed) -> None:
        self._routed[r.id] = r
        acc.alerts[r.id] = r

    def _notices(self, acc: _Acc, r: Routed, ev: Event, msg_type: str, team: Team, level: int, now: float,
                 *, topics: bool = True) -> None:
        for ch, addr, officer in self.router.recipients(team, level, now, topics=topics):
            who = officer or addr
            acc.notices.append(Notice(f"{r.id}:{ev.seq}:{ch}:{who}", r.id, ev.seq, ev.type, msg_type, ch, addr,
                                      officer, level))

    def _topic_notices(self, acc: _Acc, r: Routed, ev: Event, msg_type: str, now: float) -> None:
        team = self.config.team(r.team)
        for ch, topic in team.topics:
            acc.notices.append(Notice(f"{r.id}:{ev.seq}:{ch}:{topic}", r.id, ev.seq, ev.type, msg_type, ch, topic,
                                      "", r.level))

    def _notify_open(self, r: Routed, now: float, acc: _Acc, typ: str, detail: str = "") -> None:
        team = self.config.team(r.team)
        ev = self._event(acc, r.id, typ, now, detail=detail)
        self._notices(acc, r, ev, "Alert", team, 0, now)
        self._put(acc, _with(r, level=0, notified_at=now,
                                           escalate_at=self.router.escalation_due(team, 0, now)))

    def _sync(self, changes: Iterable[Change], now: float, acc: _Acc) -> None:
        for c in changes:
            old = self._routed.get(c.alert_id)
            if old is None:             # opened (or a record the engine never routed: route it now)
                self._opened(c.after, now, acc)
            else:
                self._changed(old, c, now, acc)
        self._prune()

    def _prune(self) -> None:
        """Keep only the newest ``keep_resolved`` resolved alerts in memory (the store keeps all)."""
        extra = len(self._resolved) - self.config.engine.keep_resolved
        if extra > 0:
            old, self._resolved = self._resolved[:extra], self._resolved[extra:]
            self.list.forget(old)
            for aid in old:
                self._routed.pop(aid, None)

    def _opened(self, a: Alert, now: float, acc: _Acc) -> None:
        spec = self.registry[a.sensor]
        team = self.router.team_for(spec.domain, spec.ward, a.kind, a.severity)
        r = Routed(alert=a, team=team.id, first_event=self._seq, created_at=now)
        silence = self.roster.silenced_by(spec.id, spec.ward, spec.domain, now)
        opened = self._event(acc, a.id, "opened", now, detail=f"{a.kind} {a.severity} team={team.id}")
        group = (spec.ward, spec.domain)
        inc_id = self._open_incident.get(group)
        if silence is not None:
            self._event(acc, a.id, "silenced", now, detail=f"{silence.id}: {silence.reason}")
            self._put(acc, _with(r, silenced_by=silence.id))
        elif inc_id is not None:
            inc = self._incidents[inc_id]
            inc = dataclasses.replace(inc, alert_ids=inc.alert_ids + (a.id,))
            self._incidents[inc_id] = acc.incidents[inc_id] = inc
            self._members_open.setdefault(inc_id, set()).add(a.id)
            self._event(acc, a.id, "grouped", now, detail=f"incident {inc_id}")
            self._put(acc, _with(r, incident=inc_id))
        else:
            self._notices(acc, r, opened, "Alert", team, 0, now)
            self._put(acc, _with(r, notified_at=now,
                                               escalate_at=self.router.escalation_due(team, 0, now)))
            self._maybe_incident(group, a, now, acc)

    def _group(self, a: Alert) -> tuple[str, str]:
        spec = self.registry[a.sensor]
        return spec.ward, spec.domain

    def _maybe_incident(self, group: tuple[str, str], a: Alert, now: float, acc: _Acc) -> None:
        loose = self._loose.setdefault(group, set())
        loose.add(a.id)
        if len(loose) < self.config.engine.incident_min_alerts:
            return
        members = [self._routed[i] for i in sorted(loose)]
        loose.clear()
        inc = Incident(self._next_incident, group[0], group[1], self._routed[a.id].team,
                       tuple(sorted(r.id for r in members)), now)
        self._next_incident += 1
        self._incidents[inc.id] = acc.incidents[inc.id] = inc
        self._open_incident[group] = inc.id
        self._members_open[inc.id] = set(inc.alert_ids)
        lead = self._routed[a.id]
        ev = self._event(acc, a.id, "incident", now, detail=f"incident {inc.id}: {len(members)} alerts "
                                                            f"{group[1]} {group[0]}")
        self._notices(acc, lead, ev, "Update", self.config.team(lead.team), lead.level, now)
        for r in members:
            self._put(acc, _with(self._routed[r.id], incident=inc.id))

    def _changed(self, old: Routed, c: Change, now: float, acc: _Acc) -> None:
        a, o = c.after, c.before or old.alert
        r = _with(old, alert=a)
        if c.type == "reopened":
            flaps = r.flaps + 1
            self._event(acc, a.id, "flap", now, level=r.level, detail=f"re-rose, flap {flaps}")
            r = _with(r, flaps=flaps)
            if flaps >= self.config.engine.flap_threshold and not r.flapping:
                self._event(acc, a.id, "flapping", now, level=r.level, detail=f"{flaps} flaps")
                r = _with(r, flapping=True)
        if c.severity_rose:
            ev = self._event(acc, a.id, "severity", now, level=r.level, detail=f"{o.severity} -> {a.severity}")
            if r.notified_at is not None and r.incident is None:
                team = self.config.team(r.team)
                self._notices(acc, r, ev, "Update", team, r.level, now)
                if a.state == "open" and o.state == "acknowledged":
                    r = _with(r, notified_at=now, escalate_at=self.router.escalation_due(
                        team, r.level, now))
        if c.type == "cleared":
            self._event(acc, a.id, "cleared", now, level=r.level, detail="condition cleared")
        if c.type == "resolved":
            ev = self._event(acc, a.id, "resolved", a.resolved_at or now, by=a.resolved_by or "system",
                             level=r.level, detail=a.comment)
            r = _with(r, escalate_at=None)
            self._loose.get(self._group(a), set()).discard(a.id)
            self._resolved.append(a.id)
            if r.notified_at is not None:
                self._topic_notices(acc, r, ev, "Cancel", now)
            self._put(acc, r)
            if r.incident is not None:
                self._incident_member_resolved(r.incident, now, acc, a.id)
            return
        self._put(acc, r)

    def _incident_member_resolved(self, inc_id: int, now: float, acc: _Acc, alert_id: int) -> None:
        inc = self._incidents.get(inc_id)
        if inc is None or inc.resolved_at is not None:
            return
        members = self._members_open.setdefault(inc_id, set())
        members.discard(alert_id)
        if not members:
            del self._members_open[inc_id]
            inc = dataclasses.replace(inc, resolved_at=now)
            self._incidents[inc_id] = acc.incidents[inc_id] = inc
            self._open_incident.pop((inc.ward, inc.domain), None)
            self._event(acc, alert_id, "incident_resolved", now, detail=f"incident {inc_id}")
