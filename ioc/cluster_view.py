"""``ioc dashboard``: the control room of a cluster, on any node, from Kafka and the shared alert store.

A dashboard node keeps no state that matters.  It reads the scored stream (``ioc.scores``,
every partition, without a group) into a :class:`~processing.scored_view.ScoredView` and
the KPI figures, reads the alerts from the PostgreSQL alert store, and builds the same
:class:`~dashboard.source.Snapshot` as the embedded pipeline (:class:`ioc.snapshot.SnapshotBuilder`)::

    ioc.scores ──▶ reader thread ──▶ ScoredView + CityKpis ─┐
    alert store (PostgreSQL) ──▶ open + recent alerts ───────┴─▶ Snapshot ──▶ Dash app, HTTP API

At start it reads back ``window_s`` of the stream (by broker time; default an hour), so a node
started or restarted in the middle of a shift shows every sensor's newest value and a chart at
once.

With a ``history`` (:class:`ioc.history.HistoryStore`, ``ioc dashboard --history-dir``) the node
also keeps every reading it reads on its own disk -- the time slider, the drill-down ranges and
incident replay then work on a dashboard node as on ``ioc run``.  Every node keeps the same
history, since each reads the whole stream: nothing to share or elect.  Beside the history it
keeps the stream offsets it has written (``scores-position.json``, saved after each write), and a
restarted node reads on from there (up to ``backfill_s`` back, within what the topic retains), so
a node that was down for an hour has no hole in its history; a reading is kept once per sensor
and time, whatever the stream delivers twice.

Any number of nodes can run behind a load balancer; each shows the whole city whichever worker
scored it, and keeps showing it while workers fail over (the scores of a hand-over arrive twice,
once counted).

Operator actions (acknowledge, resolve, assign) are checked against the signed-in user's role
by the dashboard as always, then queued in the store with the user's name, role and address;
the alerting owner applies them on its next step (:meth:`ioc.alerting.dispatcher.AlertService.apply_commands`),
and the node waits for the outcome (``command_wait_s``) so the operator sees it, or its refusal.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
from aiokafka import AIOKafkaConsumer
from aiokafka import errors as kerr

from dashboard.source import SensorExtras, Snapshot
from ingest.formats.scores import ScoresFormatError, decode as decode_scores
from ingest.kafka.settings import KafkaSettings, explain, quiet_stop
from ioc.alerting.dispatcher import AlertService
from ioc.alerting.wiring import deliveries_of
from ioc.metrics import Rate
from ioc.snapshot import LiveFigures, SnapshotBuilder, StoreAlerting, silent_sensors
from processing.alerting.engine import Routed
from processing.alerts import Alert, AlertError
from processing.config import CoreConfig
from processing.kpis import CityKpis
from processing.registry import Registry
from processing.scored_view import ScoredView

__all__ = ["ClusterView"]

log = logging.getLogger("ioc.dashboard")

RECENT_RESOLVED = 50          # resolved alerts the feed keeps showing, newest first
POSITION_FILE = "scores-position.json"   # beside the history: the offsets it holds up to


class ClusterView:
    """A :class:`~dashboard.source.SnapshotSource` for a dashboard node (thread-safe)."""

    def __init__(self, registry: Registry, settings: KafkaSettings, service: AlertService, *,
                 extras: SensorExtras | None = None, window_s: float = 3600.0, command_wait_s: float = 10.0,
                 rebuild_s: float = 0.5, history: Any = None, backfill_s: float = 86400.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.history_store = history          # an ioc.history.HistoryStore, or None: no time slider
        self.backfill_s = backfill_s
        self.settings = settings
        self.service = service
        self.store = service.store
        self.window_s = window_s
        self.command_wait_s = command_wait_s
        self.rebuild_s = rebuild_s
        self.clock = clock
        self.run_id = uuid.uuid4().hex[:12]
        n = len(registry)
        self.extras = extras or SensorExtras.empty(n)
        core = CoreConfig()
        self.view = ScoredView(n, window=core.window)
        self._kpis = CityKpis.of(registry)
        self._alerting = StoreAlerting(service)
        self._display = SnapshotBuilder(registry, self.extras, self._alerting, self._kpis,  # type: ignore[arg-type]
                                        run_id=self.run_id, speed=1.0, warn_score=0.5, band_k=core.z_report)
        self._lock = threading.Lock()
        self._rate = Rate(10.0)
        self._dead: dict[str, int] = {}
        self._records = 0
        self._builds = 0
        self._alerts_key: tuple = ()
        self._alerts_rev = 0
        self._reader_error = ""
        self._connected = False
        self._built_at = -math.inf
        self._snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()        # the window has been read back
        self._past: Any = None
        self._positions: dict[int, int] = {}  # partition -> next offset taken (into the history)
        self._kept = np.full(n, np.nan)       # each sensor's newest reading in the history
        if history is not None:
            self._kept_from_history()

    # ------------------------------------------------------------------ the scored stream
    def start(self) -> None:
        """Read ``ioc.scores`` on a thread of its own until :meth:`close`."""
        if self._thread is None:
            if self.history_store is not None:
                self.history_store.start()            # its own writes, merges and retention too
            self._thread = threading.Thread(target=lambda: asyncio.run(self._read()), name="ioc-scores-reader",
                                            daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.history_store is not None:
            with self._lock:
                positions = dict(self._positions)
            self.history_store.close()                # what is buffered goes to disk ...
            self._save_positions(positions)           # ... then the offsets it covers

    # ------------------------------------------------------------------ the node's history
    def _kept_from_history(self) -> None:
        """Each sensor's newest kept reading (the hour before the newest), so what the stream brings
        again after a restart is not kept twice."""
        extent = self.history_store.extent()
        if extent is not None:
            r = self.history_store.readings(extent[1] - 3600.0, extent[1])
            np.fmax.at(self._kept, r.sensor.astype(np.int64), r.ts)

    @property
    def _position_path(self) -> Path:
        return Path(self.history_store.folder) / POSITION_FILE

    def _stored_positions(self) -> dict[int, int]:
        """The offsets the history holds up to, for this topic ({} without any, or unreadable: one warning)."""
        path = self._position_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("topic") != self.settings.scores_topic:
                return {}
            return {int(k): int(v) for k, v in data["offsets"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("dashboard: %s: cannot read it (%s); reading back %.0f s only", path, exc, self.window_s)
            return {}

    def _save_positions(self, positions: dict[int, int]) -> None:
        if not positions:
            return
        path = self._position_path
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps({"topic": self.settings.scores_topic,
                                       "offsets": {str(p): o for p, o in sorted(positions.items())}}),
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("dashboard: %s: cannot save the history's offsets: %s", path, exc)

    async def _write_history(self) -> None:
        """Write what the history buffers, then save the offsets taken before it (so a crash in
        between reads them again, and the per-sensor check drops the copies)."""
        with self._lock:
            positions = dict(self._positions)
        await asyncio.to_thread(self.history_store.flush)
        self._save_positions(positions)

    async def _read(self) -> None:
        s = self.settings
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(s.scores_topic, bootstrap_servers=s.bootstrap, group_id=None,
                                        enable_auto_commit=False,
                                        auto_offset_reset="earliest", client_id=s.effective_client_id("dashboard"),
                                        **s.security_options())
            try:
                await consumer.start()
                await self._follow(consumer)
            except Exception as exc:  # noqa: BLE001 - a dead reader would blind the display: retried
                with self._lock:
                    self._connected = False
                    self._reader_error = (f"kafka://{s.bootstrap}: {explain(exc)}" if isinstance(exc, kerr.KafkaError)
                                          else f"{type(exc).__name__}: {exc}")
                log.warning("dashboard: scores from %s: %s; trying again in 2 s", s.scores_topic, self._reader_error)
                await asyncio.sleep(2.0)
            finally:
                await quiet_stop(consumer)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.settings.scores_topic
        deadline = time.monotonic() + 30               # without a group, every partition is assigned once known
        while not consumer.assignment() and time.monotonic() < deadline and not self._stop.is_set():
            await asyncio.sleep(0.1)
        tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not tps:
            raise kerr.UnknownTopicOrPartitionError(f"topic {topic!r} does not exist")
        now = self.clock()
        ends = await consumer.end_offsets(tps)

        async def offsets_at(seconds_back: float) -> dict[Any, int]:
            # nothing since then: the end as it is now (seek_to_end would resolve it later, lazily,
            # and skip what was published in between)
            found = await consumer.offsets_for_times({tp: int((now - seconds_back) * 1000) for tp in tps})
            return {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}
        start = await offsets_at(self.window_s)
        stored = self._stored_positions() if self.history_store is not None else {}
        if stored:                                     # the history reads on where it stopped, if kept
            floor = await offsets_at(self.backfill_s)
            start = {tp: min(start[tp], max(stored.get(tp.partition, floor[tp]), floor[tp])) for tp in tps}
        for tp in tps:
            consumer.seek(tp, start[tp])
        with self._lock:
            self._connected, self._reader_error = True, ""
            self._positions.update({tp.partition: start[tp] for tp in tps})
        log.info("dashboard: reading %s (%d partitions) from %.0f s back%s", topic, len(tps), self.window_s,
                 ", the history from where it stopped" if stored else "")
        written = time.monotonic()
        while not self._stop.is_set():
            data = await consumer.getmany(timeout_ms=300, max_records=2000)
            self._take(data)
            if self.history_store is not None and time.monotonic() - written >= self.history_store.flush_s:
                await self._write_history()
                written = time.monotonic()
            if not self.ready.is_set():
                positions = [await consumer.position(tp) for tp in tps]
                if all(p >= ends[tp] for p, tp in zip(positions, tps)):
                    self.ready.set()

    def _take(self, data: dict) -> None:
        for tp, msgs in data.items():
            for m in msgs:
                try:
                    rec = decode_scores(m.value or b"", sensors=len(self.registry))
                except ScoresFormatError as exc:
                    log.warning("dashboard: %s:%d@%d: %s", tp.topic, tp.partition, m.offset, exc)
                    with self._lock:
                        self._dead["bad_scores"] = self._dead.get("bad_scores", 0) + 1
                        self._positions[tp.partition] = m.offset + 1
                    continue
                with self._lock:
                    before = self.view.readings
                    self.view.add(rec.sensor, rec.ts, rec.value, rec.score, rec.alert)
                    fresh = self.view.readings - before
                    if fresh:
                        self._kpis.add(rec.sensor, rec.ts, rec.value)
                    self._records += 1
                    self._rate.add(self.clock(), fresh)
                    if self.history_store is not None:
                        self._keep(rec)
                        self._positions[tp.partition] = m.offset + 1

    def _keep(self, rec: Any) -> None:
        """Into the history: the record's readings newer than their sensor's newest kept (a copy of a
        hand-over, or of what a restart reads again, is not kept twice)."""
        s = rec.sensor.astype(np.int64)
        with np.errstate(invalid="ignore"):
            new = ~(rec.ts <= self._kept[s])
        if new.any():
            self.history_store.add(rec.sensor[new], rec.ts[new], rec.value[new], rec.score[new],
                                   rec.alert[new], rec.reasons[new])
            np.fmax.at(self._kept, s[new], rec.ts[new])

    # ------------------------------------------------------------------ SnapshotSource
    def snapshot(self) -> Snapshot:
        """The city now: rebuilt at most every ``rebuild_s`` (the alerts are read from the store then)."""
        with self._lock:
            wall = self.clock()
            if self._snapshot is not None and wall - self._built_at < self.rebuild_s:
                return self._snapshot
        shown = self._alerts_shown()                 # the store, outside the lock
        with self._lock:
            self._alerting.routed = {r.id: r for r in shown}
            alerts = tuple(sorted((r.alert for r in shown), key=lambda a: a.id))
            key = tuple((a.id, a.rev, a.state) for a in alerts)
            if key != self._alerts_key:
                self._alerts_key, self._alerts_rev = key, self._alerts_rev + 1
            silent = silent_sensors(alerts)
            now = self.view.now
            status = "ok" if self._connected and self.ready.is_set() else ("degraded" if self._reader_error
                                                                            else "starting")
            self._builds += 1
            live = LiveFigures(status, self._rate.per_s(wall), self.view.readings, dict(self._dead), {},
                               self._records, self._builds, None)
            self._snapshot = self._display.build(now=now if math.isfinite(now) else wall, wall=wall, core=self.view,
                                                 silent=silent, last_value=self.view.last_value,
                                                 score=np.nan_to_num(self.view.score), alerts=alerts,
                                                 alerts_rev=self._alerts_rev, live=live)
            self._built_at = wall
            return self._snapshot

    def _alerts_shown(self) -> list[Routed]:
        unresolved = self.store.alerts(["open", "acknowledged"], limit=5000)
        return unresolved + self.store.alerts(["resolved"], limit=RECENT_RESOLVED)

    # ------------------------------------------------------------------ the past (with a history)
    def _past_view(self) -> Any:
        if self.history_store is None:
            raise LookupError("no history kept on this node (ioc dashboard --history-dir)")
        if self._past is None:
            from ioc.time_travel import PastView
            self._past = PastView(self.registry, self.history_store, self.service, extras=self.extras, clock=self.clock)
        return self._past

    def history_extent(self) -> tuple[float, float] | None:
        """The first and last reading time this node keeps (None: none, or no history)."""
        return None if self.history_store is None else self.history_store.extent()

    def history(self, sensor_id: str, t0: float, t1: float, points: int = 500) -> Any:
        """One sensor's kept readings of ``[t0, t1]``, downsampled; LookupError without a history."""
        if self.history_store is None:
            raise LookupError("no history kept on this node")
        return self.history_store.sensor_history(sensor_id, t0, t1, points)

    def snapshot_at(self, t: float) -> Snapshot:
        """The city at ``t``, from this node's history and the shared alert store."""
        return self._past_view().snapshot_at(t)

    def recent_at(self, t: float, sensor: int) -> dict[str, np.ndarray]:
        return self._past_view().recent_at(t, sensor)

    def stored_alerts(self, limit: int = 200) -> list[Alert]:
        """The newest ``limit`` alerts of the store, resolved ones included (an incident to replay)."""
        return [r.alert for r in self.store.alerts(None, limit)]

    def recent(self, sensor: int) -> dict[str, np.ndarray]:
        if not 0 <= sensor < len(self.registry):
            raise IndexError(f"no sensor {sensor}")
        with self._lock:
            return self.view.recent(sensor)

    def acknowledge(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = "") -> Alert:
        return self._command("acknowledge", alert_id, comment, by, role, address)

    def resolve(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = "") -> Alert:
        return self._command("resolve", alert_id, comment, by, role, address)

    def assign(self, alert_id: int, officer_id: str, by: str, *, role: str = "", address: str = "") -> Alert:
        return self._command("assign", alert_id, officer_id, by, role, address)

    def _command(self, action: str, alert_id: int, arg: str, by: str, role: str, address: str) -> Alert:
        """Queue the action for the alerting owner and wait for its outcome (AlertError: refused or not applied)."""
        if self.store.alert(alert_id) is None:
            raise AlertError(f"no alert {alert_id}")
        cid = self.store.queue_command(by.strip(), action, alert_id, arg, self.clock(), role=role, address=address)
        deadline = time.monotonic() + self.command_wait_s
        while time.monotonic() < deadline:
            st = self.store.command(cid)
            if st is not None and st[0] == "error":
                raise AlertError(st[1])
            if st is not None and st[0] == "done":
                with self._lock:
                    self._built_at = -math.inf             # the next read shows it
                stored = self.store.alert(alert_id)
                assert stored is not None
                return stored.alert
            time.sleep(0.1)
        raise AlertError(f"{action} of alert {alert_id} is queued, but the alerting owner has not applied it in "
                         f"{self.command_wait_s:.0f} s: is 'ioc alerting' running?")

    def deliveries(self, alert_ids: list[int]) -> dict[int, list[dict[str, object]]]:
        return deliveries_of(self.store, alert_ids)

    def audit_log(self, limit: int = 200) -> list[Any]:
        return self.store.audit_log(limit)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """None kept here: the workers send theirs to the dead-letter topic."""
        return []

    def cap_xml(self, alert_id: int) -> str:
        stored = self.store.alert(alert_id)
        if stored is None:
            raise AlertError(f"no alert {alert_id}")
        return self.service.cap_for(stored)
