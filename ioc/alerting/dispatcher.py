"""Delivering notifications, and the alert service that ties engine, store and channels together.

:class:`Dispatcher` takes due deliveries from the store and sends them::

    pending ──claim (attempt n, retry time set first)──▶ channel.send
       ▲                                                   │ ok            → sent
       └──── retry at now + backoff_s · 2^(n-1) (capped) ◀─┤ retriable     → pending (or failed after max_attempts)
                                                           └ not retriable → failed

:class:`AlertService` is what the pipeline, the dashboard and the CLI use: it
feeds scored batches to the pure :class:`~processing.alerting.engine.AlertEngine`,
renders each new notice's payload once (bilingual text + CAP XML), records the
outcome in the :class:`~ioc.alerting.store.AlertStore` in one transaction, and
restores the engine from the store after a restart.  Not thread-safe by
itself: :class:`AlertService` serialises callers with a lock; the dispatcher may
run in its own thread (the store is thread-safe).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ioc.alerting.channels import Channel, DeliveryError
from ioc.alerting.store import AlertStore, Delivery
from processing.alerting.cap import to_cap
from processing.alerting.config import AlertingConfig, DeliverySettings, Officer
from processing.alerting.engine import AlertEngine, Notice, Outcome, Routed
from processing.alerting.messages import render
from processing.alerts import AlertError
from processing.batch import ReadingBatch
from processing.registry import Registry

__all__ = ["LOCAL_ACTOR", "AlertService", "Dispatcher", "backoff_delay"]

log = logging.getLogger(__name__)

#: how the audit log names an action taken on this machine with ``ioc alerts`` (direct access
#: to the data folder, so no sign-in): role ``local``, address ``cli``
LOCAL_ACTOR: dict[str, str] = {"role": "local", "address": "cli"}


def backoff_delay(settings: DeliverySettings, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return min(settings.backoff_max_s, settings.backoff_s * (2.0 ** max(0, attempt - 1)))


class Dispatcher:
    """Sends due deliveries through their channels; retries with exponential backoff."""

    def __init__(self, store: AlertStore, channels: Mapping[str, Channel], settings: DeliverySettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.channels = dict(channels)
        self.settings = settings
        self.clock = clock
        self._wake = threading.Event()

    def wake(self) -> None:
        """New deliveries were queued: a dispatcher waiting in :meth:`run_forever` starts at once."""
        self._wake.set()

    def run_once(self, now: float | None = None, limit: int = 100) -> int:
        """Attempt every due delivery once; returns how many were sent."""
        sent = 0
        for d in self.store.due(self.clock() if now is None else now, limit):
            sent += self.attempt(d, self.clock() if now is None else now)
        return sent

    def attempt(self, d: Delivery, now: float) -> int:
        attempt = d.attempts + 1
        self.store.claim(d.key, now, now + backoff_delay(self.settings, attempt))
        channel = self.channels.get(d.channel)
        if channel is None:
            self.store.mark_error(d.key, f"no {d.channel!r} channel configured", final=True)
            return 0
        try:
            channel.send(d)
        except DeliveryError as exc:
            final = not exc.retriable or attempt >= self.settings.max_attempts
            self.store.mark_error(d.key, f"attempt {attempt}: {exc}", final=final)
            return 0
        except Exception as exc:  # a bug in a channel must not stop the others; recorded, retried
            self.store.mark_error(d.key, f"attempt {attempt}: {type(exc).__name__}: {exc}",
                                  final=attempt >= self.settings.max_attempts)
            return 0
        self.store.mark_sent(d.key, self.clock() if now is None else now)
        return 1

    def run_forever(self, stop: threading.Event, poll_s: float = 0.2, error_wait_s: float = 5.0) -> None:
        """Loop until ``stop`` is set (for a background thread).

        The thread never dies of an error: a store that cannot be read or written (disk full,
        a locked file) is logged once, with its reason, and retried every ``error_wait_s``
        until it works again -- a dead dispatcher would be a silent notification blackout."""
        problem = ""
        while not stop.is_set():
            self._wake.clear()
            try:
                sent = self.run_once()
            except Exception as exc:  # noqa: BLE001 -- anything: logged, retried, never fatal
                if f"{type(exc).__name__}: {exc}" != problem:
                    problem = f"{type(exc).__name__}: {exc}"
                    log.error("alert deliveries paused: %s (retrying every %g s)", problem, error_wait_s)
                stop.wait(error_wait_s)
                continue
            if problem:
                log.warning("alert deliveries resumed after: %s", problem)
                problem = ""
            if not sent:
                self._wake.wait(poll_s)


class AlertService:
    """Engine + store (+ rendering), one lock: the operator-facing alerting API."""

    def __init__(self, registry: Registry, config: AlertingConfig, store: AlertStore, *,
                 ward_rings: Mapping[str, np.ndarray] | None = None,
                 on_queued: Callable[[], None] | None = None, clock: Callable[[], float] | None = None) -> None:
        self.registry = registry
        self.config = config
        self.store = store
        self.ward_rings = dict(ward_rings or {})
        self.on_queued = on_queued          # e.g. Dispatcher.wake
        # the dispatcher's clock for queue/retry times; None: the engine's ``now`` (simulated or fake time)
        self.clock = clock
        self.engine = AlertEngine(registry, config)
        routed, incidents, next_seq, next_id = store.load_state()
        self.engine.restore(routed, incidents, next_seq, next_id)
        self._lock = threading.Lock()

    # ----------------------------------------------------------- pipeline
    def step(self, batch: ReadingBatch | None, scores: Any, last_seen: np.ndarray | None, now: float, *,
             notify: bool = True, horizon: Mapping[str, Any] | None = None) -> Outcome:
        """Feed one scored batch (``scores`` has ``.alert``, ``.score``, ``.reasons``) and tick.

        ``notify=False`` (e.g. while replaying history before going live) records
        alerts and events but queues no notification and arms no escalation.
        ``horizon``: the stream position of this batch, stored with its outcome
        (:meth:`AlertStore.horizon`)."""
        self.apply_commands(now)
        with self._lock:
            triple = None if scores is None else (scores.alert, scores.score, scores.reasons)
            out = self.engine.step(batch, triple, last_seen, now)
            if not notify:
                out = self.engine.quiet(out)
            return self._record(out, now, horizon)

    def tick(self, now: float) -> Outcome:
        self.apply_commands(now)
        with self._lock:
            return self._record(self.engine.tick(now), now)

    def apply_commands(self, now: float) -> int:
        """Apply operator actions queued in the store by another process (the CLI, a dashboard node);
        returns how many.  The audit log names the role and address of who queued each."""
        done = 0
        for cid, _at, actor, action, alert_id, arg, role, address in self.store.queued_commands():
            who = {"role": role, "address": address} if role else LOCAL_ACTOR
            try:
                if action == "acknowledge":
                    self.acknowledge(alert_id, actor, now, arg, **who)
                elif action == "resolve":
                    self.resolve(alert_id, actor, now, arg, **who)
                elif action == "assign":
                    self.assign(alert_id, arg, actor, now, **who)
                else:
                    raise AlertError(f"unknown action {action!r}")
            except AlertError as exc:
                self.store.finish_command(cid, False, str(exc))
                continue
            self.store.finish_command(cid, True, "")
            done += 1
        return done

    # ---------------------------------------------------------- operators
    def acknowledge(self, alert_id: int, by: str, now: float, comment: str = "", *, role: str = "",
                    address: str = "") -> Routed:
        """``by`` takes the alert; the audit log records them with ``role`` and ``address``."""
        with self._lock:
            self._known(alert_id)
            self._record(self.engine.acknowledge(alert_id, by, now, comment), now)
            self.store.audit(by.strip(), "acknowledge", alert_id, comment, now, role=role, address=address)
            return self.engine.get(alert_id)

    def assign(self, alert_id: int, officer_id: str, by: str, now: float, *, role: str = "",
               address: str = "") -> Routed:
        with self._lock:
            self._known(alert_id)
            self._record(self.engine.assign(alert_id, officer_id, by, now), now)
            self.store.audit(by.strip(), "assign", alert_id, officer_id, now, role=role, address=address)
            return self.engine.get(alert_id)

    def resolve(self, alert_id: int, by: str, now: float, comment: str = "", *, role: str = "",
                address: str = "") -> Routed:
        with self._lock:
            self._known(alert_id)
            self._record(self.engine.resolve(alert_id, by, now, comment), now)
            self.store.audit(by.strip(), "resolve", alert_id, comment, now, role=role, address=address)
            return self.engine.get(alert_id)

    def _known(self, alert_id: int) -> None:
        """A resolved alert is no longer in the engine after a restart: say so plainly."""
        try:
            self.engine.get(alert_id)
        except AlertError:
            stored = self.store.alert(alert_id)
            if stored is not None and stored.alert.state == "resolved":
                raise AlertError(f"alert {alert_id} is already resolved") from None
            raise

    def retry_delivery(self, key: str, by: str, now: float, *, role: str = "", address: str = "") -> bool:
        ok = self.store.retry_failed(key, now)
        if ok:
            self.store.audit(by.strip(), "retry_delivery", None, key, now, role=role, address=address)
        return ok

    # ------------------------------------------------------------ reading
    def open_alerts(self) -> list[Routed]:
        with self._lock:
            return list(self.engine.alerts(["open", "acknowledged"]))

    def on_duty(self, now: float) -> dict[str, tuple[Officer, ...]]:
        return self.engine.roster.everyone_on_duty(now)

    def cap_xml(self, alert_id: int, msg_type: str | None = None) -> str:
        """The alert as CAP 1.2 now (Alert while unresolved, Cancel once resolved)."""
        with self._lock:
            try:
                r = self.engine.get(alert_id)
            except Exception:
                stored = self.store.alert(alert_id)
                if stored is None:
                    raise
                r = stored
        return self.cap_for(r, msg_type)

    def cap_for(self, r: Routed, msg_type: str | None = None) -> str:
        """CAP 1.2 of the alert record ``r`` (e.g. one read from the store by a dashboard node)."""
        mt = msg_type or ("Cancel" if r.alert.state == "resolved" else "Alert")
        seq = r.first_event
        sent = r.created_at
        if mt != "Alert":
            events = self.store.events(r.id)
            seq, sent = (events[-1].seq, events[-1].at) if events else (seq, sent)
        event = {"Alert": "opened", "Update": "severity", "Cancel": "resolved"}[mt]
        return self._cap(r, event, seq, sent, mt)

    # ------------------------------------------------------------ private
    def _record(self, out: Outcome, now: float, horizon: Mapping[str, Any] | None = None) -> Outcome:
        if out.alerts or out.events or out.notices or out.incidents:
            at = now if self.clock is None else self.clock()
            if self.store.record(out, self._payloads(out), at, horizon=horizon) and self.on_queued is not None:
                self.on_queued()
        return out

    def _cap(self, r: Routed, event: str, seq: int, sent: float, msg_type: str) -> str:
        a = r.alert
        spec = self.registry[a.sensor]
        inc = self._incident_size(r)
        return to_cap(alert_id=a.id, kind=a.kind, severity=a.severity, spec=spec, since=a.opened_at,
                      last_value=a.last_value, occurrences=a.occurrences, level=r.level,
                      team_name=self.config.team(r.team).name, event=event, event_seq=seq, sent=sent,
                      msg_type=msg_type, first_event=r.first_event, first_sent=r.created_at, cap=self.config.cap,
                      city=self.config.city, ward_ring=self.ward_rings.get(spec.ward), score=a.peak_score, incident_size=inc)

    def _incident_size(self, r: Routed) -> int:
        if r.incident is None:
            return 0
        for inc in self.engine.incidents():
            if inc.id == r.incident:
                return len(inc.alert_ids)
        return 0

    def _payloads(self, out: Outcome) -> dict[str, dict[str, Any]]:
        """One payload per (alert, event), shared by its notices; rendered once, stored with each delivery."""
        events = {e.seq: e for e in out.events}
        cache: dict[int, dict[str, Any]] = {}
        payloads: dict[str, dict[str, Any]] = {}
        for n in out.notices:
            if n.event_seq not in cache:
                cache[n.event_seq] = self._payload(n, events.get(n.event_seq))
            payloads[n.key] = cache[n.event_seq]
        return payloads

    def _payload(self, n: Notice, ev: Any) -> dict[str, Any]:
        r = self.engine.get(n.alert_id)
        a = r.alert
        spec = self.registry[a.sensor]
        team = self.config.team(r.team)
        at = ev.at if ev is not None else r.created_at
        inc = self._incident_size(r)
        text = {}
        city = self.config.city
        for lang in city.languages:
            t = render(alert_id=a.id, kind=a.kind, severity=a.severity, event=n.event, spec=spec, since=a.opened_at,
                       last_value=a.last_value, occurrences=a.occurrences, level=n.level,
                       team_name=team.name if lang == "vi" else team.name_en, lang=lang, cap=self.config.cap,
                       city=city, incident_size=inc)
            text[lang] = {"subject": t.subject, "headline": t.headline, "description": t.description,
                          "instruction": t.instruction}
        return {
            "alert": {"id": a.id, "sensor_id": a.sensor_id, "sensor_name": spec.name, "kind": a.kind,
                      "severity": a.severity, "state": a.state, "domain": spec.domain, "ward": spec.ward,
                      "lat": spec.lat, "lon": spec.lon, "since": city.iso(a.opened_at),
                      "last_value": a.last_value if math.isfinite(a.last_value) else None, "unit": spec.unit,
                      "peak_score": round(a.peak_score, 4), "team": r.team, "level": n.level, "flaps": r.flaps,
                      "incident": r.incident},
            "event": {"seq": n.event_seq, "type": n.event, "at": city.iso(at),
                      "by": ev.by if ev is not None else "system", "detail": ev.detail if ev is not None else ""},
            "msg_type": n.msg_type,
            "text": text,
            "cap": self._cap(r, n.event, n.event_seq, at, n.msg_type),
        }

    def deliveries(self, alert_id: int | None = None, status: str | None = None) -> Sequence[Delivery]:
        return self.store.deliveries(alert_id, status)
