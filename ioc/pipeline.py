"""The embedded pipeline: simulated city -> in-process bus -> anomaly core -> alerts -> snapshot.

One process, no broker::

    CityStream.advance(sim_now) ──▶ asyncio.Queue[ReadingBatch] ──▶ validate ──▶ AnomalyCore
        (producer, every tick_s)          (the bus)                 (dead letters)      │
                                                    AlertService (engine + SQLite) ◀────┘
                                                       │            └─ notices ─▶ Dispatcher thread ─▶ webhook, e-mail
                                        Snapshot (immutable) ◀── publish ┘ ──▶ dashboard, HTTP API

One live loop, :meth:`Pipeline.run`, reads a *feed*: the simulated city
(:meth:`Pipeline.simulated`, the producer above) or a broker's decoded deliveries
(:meth:`Pipeline.run_source`, an ``ingest.sources.Feed``); each item is processed, then
committed, and the feed's position goes into the checkpoints.

Alerting (:mod:`ioc.alerting`): every step goes through
:meth:`AlertService.step` -- lifecycle, routing by roster, escalation,
silences -- and the outcome is written to the alert store; notifications are
queued there and sent by the :class:`Dispatcher` on a thread of its own
(:meth:`Pipeline.start_delivery`, stopped by :meth:`Pipeline.close`).  History
replayed by the pre-roll is recorded but pages nobody.  :func:`~ioc.alerting.wiring.build_alerting`
makes the service from ``config/<city>/alerting.toml`` with its store in a data
folder; a channel with no receiver configured (no webhook secret, no SMTP host,
no broker) fails its deliveries at once as "not configured", which the
dashboard shows as such -- not an error, nothing logged.  Without an explicit
service the pipeline keeps its alerts in an in-memory store and sends nothing.

Simulated time runs ``speed`` times faster than the wall clock, from the
moment :meth:`Pipeline.run` starts; before that :meth:`Pipeline.preroll`
pushes ``preroll_hours`` of history through the same stages as fast as it can,
so baselines, charts and the hourly air-quality index have data from the
first page load.  Both clocks are injected (``clock``, ``sleep``), so tests
drive the pipeline without waiting.

Warm start (:mod:`ioc.checkpoints`): with a :class:`~ioc.checkpoints.Checkpointer`
the core's state is checkpointed between two batches -- after the pre-roll, every
``every_s`` wall seconds and when :meth:`Pipeline.run` / :meth:`Pipeline.run_source`
stop cleanly -- with a *position*: the last event time ``t`` (every reading up to
it is in the state), the source it came from, and for Kafka the consumed offset of
every partition.  :meth:`Pipeline.warm_start` (before :meth:`preroll`) restores it:

* embedded: the simulator resumes just after ``t`` with the same seed and anomaly
  schedule, so the readings that follow are those an uninterrupted run would have
  had; the pre-roll only catches up from ``t`` to now (nothing when the simulated
  clock is ahead of the wall clock), at most ``preroll_hours`` (a longer outage is
  a gap the sensors show);
* Kafka: the consumer seeks every partition of the checkpoint to its offset
  instead of the group's committed one (which may be later), so what is scored
  next follows the restored state exactly;
* MQTT: the state is restored; MQTT has no offsets, so readings acknowledged
  after the checkpoint are not learned again.

A checkpoint of another source (another simulator seed, another broker or topic)
is refused like one of another registry: :class:`~processing.checkpoint.CheckpointMismatch`.

Thread model: the pipeline's own asyncio loop (one thread) owns the core and
the alert list; the web server's threads read :meth:`Pipeline.snapshot` (an
immutable object swapped atomically) and call :meth:`Pipeline.recent`,
:meth:`Pipeline.acknowledge` and :meth:`Pipeline.resolve`, which take the
pipeline's lock.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol

import numpy as np

from dashboard.source import SensorExtras, Snapshot
from ingest.sources import FeedItem
from ioc.alerting.dispatcher import AlertService, Dispatcher
from ioc.alerting.wiring import build_alerting, deliveries_of
from ioc.citydata import extras_from_registry
from ioc.metrics import STAGES, Histogram, Rate
from ioc.simulated_feed import ResumedStream, SimulatedFeed
from ioc.snapshot import LiveFigures, SnapshotBuilder
from processing.alerting.engine import Routed
from processing.alarm_rate import FLOOD_WINDOW_S, AlarmRate, alarm_rate
from processing.alerts import Alert, AlertConfig
from processing.batch import ReadingBatch
from processing.checkpoint import Checkpoint, CheckpointMismatch
from processing.city import CityProfile
from processing.config import CoreConfig
from processing.core import AnomalyCore, Scores
from processing.kpis import CityKpis, KpiConfig
from processing.registry import Registry
from processing.validate import FAULT_CODES, OK, Limits, count_faults, faults
from simulators.anomalies import AnomalyLabel
from simulators.city import CitySimulator

__all__ = ["Pipeline", "PipelineConfig", "WarmStart", "source_key"]

log = logging.getLogger(__name__)

RECENT_DEAD_LETTERS = 100        # dead letters kept in memory for the display (all go to the file/topic)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    speed: float = 1.0                  # simulated seconds per wall second
    anomaly_rate: float = 0.5           # injected anomalies per sensor per simulated day
    seed: int = 1
    # history simulated quickly before going live: 3.5 days, so the time-of-day baselines are
    # armed (CoreConfig.arm_days) and the first live day is watched as well as any other
    preroll_hours: float = 84.0
    preroll_step_s: float = 600.0       # simulated seconds per preroll batch
    # anomalies start this far into the preroll (None: half of it), so baselines settle first
    anomaly_warmup_s: float | None = None
    tick_s: float = 0.5                 # wall seconds between simulator advances
    queue_size: int = 64                # batches the bus holds before the producer waits
    rate_window_s: float = 10.0         # readings/s over this many wall seconds
    warn_score: float = 0.5             # status 'warning' from this score
    core: CoreConfig = field(default_factory=CoreConfig)
    # unused since the alerting service took over (its [engine] table in alerting.toml); kept for callers
    alerts: AlertConfig = field(default_factory=AlertConfig)
    kpi: KpiConfig = field(default_factory=KpiConfig)

    def on_clock_of(self, city: CityProfile) -> "PipelineConfig":
        """This configuration with the core's time-of-day slots on ``city``'s local time."""
        return dataclasses.replace(self, core=dataclasses.replace(self.core, utc_offset_s=city.utc_offset_s))

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, want: str) -> None:
            if not ok:
                raise ValueError(f"pipeline setting '{name}' must be {want}, got {getattr(self, name)!r}")

        check("speed", math.isfinite(self.speed) and self.speed > 0, "a number > 0")
        check("anomaly_rate", math.isfinite(self.anomaly_rate) and self.anomaly_rate >= 0, "a number >= 0")
        check("seed", self.seed >= 0, ">= 0")
        check("preroll_hours", 0 <= self.preroll_hours <= 24 * 14, "between 0 and 336")
        check("preroll_step_s", self.preroll_step_s > 0, "> 0")
        check("tick_s", 0 < self.tick_s <= 2.0, "in (0, 2]")
        check("queue_size", self.queue_size >= 1, ">= 1")
        check("rate_window_s", self.rate_window_s > 0, "> 0")


@dataclass(frozen=True, slots=True)
class WarmStart:
    """What :meth:`Pipeline.warm_start` restored."""

    path: Path | None
    nbytes: int
    t: float                            # position: every reading up to this event time is in the state
    source: str                         # source_key of the run that took it
    catch_up_s: float                   # simulated seconds the pre-roll replays (embedded)
    skipped_s: float                    # simulated seconds of an outage longer than the pre-roll, not replayed
    offsets: Mapping[str, int]          # Kafka: "topic:partition" -> offset the consumer resumes at
    readings_total: int
    # the alert store's horizon: event time (embedded) or Kafka offsets replayed without alerting again
    alerted_to: Any = None


def source_key(source: str | None, seed: int) -> str:
    """Which stream a checkpoint belongs to: ``simulator:seed=S``, or the broker address without
    password, options or consumer group (Kafka: ``kafka://HOST:PORT/TOPIC``)."""
    if not source:
        return f"simulator:seed={seed}"
    from ingest.sources import scheme_of

    if scheme_of(source) == "kafka":
        from ingest.kafka import KafkaSettings

        k = KafkaSettings.from_url(source)
        return f"kafka://{k.bootstrap}/{k.topic}"
    from ingest.mqtt import MqttSettings

    m = MqttSettings.from_url(source)
    return f"mqtt://{m.host}:{m.port}/{m.topic}"


# ------------------------------------------------------------ warm start

# ------------------------------------------------------------------- pipeline

class LiveFeed(Protocol):
    """What :meth:`Pipeline.run` reads: items to score (``ingest.sources.FeedItem``), each committed
    once processed, and the position a checkpoint stores (``"topic:partition"`` -> next offset)."""

    def __aiter__(self) -> AsyncIterator[FeedItem]: ...

    async def commit(self, item: FeedItem) -> None: ...

    async def positions(self) -> dict[str, int]: ...


class Pipeline:
    """The embedded pipeline for one registry; see the module docstring."""

    def __init__(self, registry: Registry, config: PipelineConfig | None = None, *,
                 extras: SensorExtras | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, start: float | None = None,
                 alerting: AlertService | None = None, dispatcher: Dispatcher | None = None,
                 checkpointer: Any = None, history: Any = None) -> None:
        """``alerting``/``dispatcher``: from :func:`~ioc.alerting.wiring.build_alerting` (None: an in-memory
        store, nothing sent); its configuration's city is the pipeline's (:attr:`city`);
        ``checkpointer``: an :class:`ioc.checkpoints.Checkpointer` (None: no checkpoints);
        ``history``: an :class:`ioc.history.HistoryStore` that keeps every scored reading (None: none)."""
        self.registry = registry
        self.config = cfg = config or PipelineConfig()
        self.extras = extras or extras_from_registry(registry)
        self._clock = clock
        self._sleep = sleep
        n = len(registry)
        self.run_id = uuid.uuid4().hex[:12]
        self._lock = threading.RLock()
        if alerting is None:
            if dispatcher is not None:
                raise ValueError("a dispatcher needs the alerting service that queues its deliveries")
            alerting, _ = build_alerting(registry, None, channels={})     # in memory, nothing sent
        # one local time for the city: alert texts, roster, display, the core's time-of-day slots
        # and the simulator's rhythms (config/<city>/city.toml)
        self.city = alerting.config.city
        if cfg.core.utc_offset_s != self.city.utc_offset_s:
            raise ValueError(f"the core's utc_offset_s ({cfg.core.utc_offset_s}) is not the city's "
                             f"({self.city.offset_label}, city.toml): use PipelineConfig.on_clock_of(city)")

        self.live_start = float(start if start is not None else clock())     # simulated time going live
        preroll_s = cfg.preroll_hours * 3600.0
        self.sim_start = self.live_start - preroll_s
        warm = preroll_s / 2 if cfg.anomaly_warmup_s is None else cfg.anomaly_warmup_s
        self._sim = CitySimulator(registry, seed=cfg.seed, anomaly_rate=cfg.anomaly_rate,
                                  utc_offset_s=self.city.utc_offset_s)
        self._stream = self._sim.stream(self.sim_start, warmup_s=warm)
        # the anomalies the simulator has injected so far, newest last (engineers compare the
        # alerts against them: ioc control-room-day); room for twice a week's worth
        self.injected: deque[AnomalyLabel] = deque(maxlen=max(1000, int(2 * 7 * len(registry) * cfg.anomaly_rate)))
        self.core = AnomalyCore(registry, cfg.core)
        # the simulated city's schedule, carried from checkpoint to checkpoint: no anomaly before
        # anomalies_from; first_live_start = the live start of the run that began it cold
        self._sim_plan = {"seed": cfg.seed, "anomaly_rate": cfg.anomaly_rate,
                          "anomalies_from": self.sim_start + warm, "first_live_start": self.live_start}
        self.checkpointer = checkpointer
        self.history_store = history
        self._past_view: Any = None
        self.warm: WarmStart | None = None
        self._source: str | None = None               # the broker address of run_source
        self._offsets: dict[str, int] = {}            # Kafka: "topic:partition" -> next offset, as scored
        self._start_offsets: dict[str, int] = {}      # ... where to resume (from a checkpoint)
        self._replay_until: dict[str, int] = {}       # ... up to where the alert store has seen it (Kafka)
        self._alerted_to: float | None = None         # ... up to when (embedded): replayed, not alerted again
        self.alerting = alerting
        self.dispatcher = dispatcher
        self.alerts = alerting.engine.list         # the lifecycle records the snapshot shows
        self._dispatch_stop = threading.Event()
        self._dispatch_thread: threading.Thread | None = None
        self._sim_now = self.sim_start
        self._wall_start: float | None = None
        self._prerolled = False
        # alarm-rate log of the alerts opened live: id -> row; opened_at, first cleared_at (NaN), team
        self._live_from: float | None = None          # simulated time the live run began
        self._alarm_row: dict[int, int] = {}
        self._alarm_opened: list[float] = []
        self._alarm_cleared: list[float] = []
        self._alarm_team: list[str] = []
        self._preroll_opened: set[int] = set()        # alerts opened during the pre-roll
        self._preroll_hidden: set[int] = set()        # ... that had cleared by themselves by the live start

        self._last_value = np.full(n, np.nan)
        self._score = np.zeros(n)

        self._limits = Limits.of(registry)
        self._kpis = CityKpis.of(registry, cfg.kpi)
        self._display = SnapshotBuilder(registry, self.extras, alerting, self._kpis, run_id=self.run_id,
                                        speed=cfg.speed, warn_score=cfg.warn_score, band_k=cfg.core.z_report)

        self._readings_total = 0
        self._dead: dict[str, int] = dict.fromkeys(FAULT_CODES.values(), 0)   # dead letters by code
        self._recent_dead: deque[Any] = deque(maxlen=RECENT_DEAD_LETTERS)      # the newest, for the display
        self._hist = {s: Histogram() for s in STAGES}
        self._rate = Rate(cfg.rate_window_s)
        self.batches = 0                      # batches processed (readings or an idle tick)
        self.snapshot_builds = 1              # snapshots built, this first one included
        self._snapshot = self._build_snapshot(status="starting")
        self._dirty: str | None = None        # the status to build the next snapshot with, if one is due

    # ---------------------------------------------------------- public API
    def snapshot(self) -> Snapshot:
        """The current snapshot (immutable; safe from any thread).

        Built when a reader asks and something changed since the last one (a batch, an
        operator's action), not on every batch: the display reads once a second while a broker
        feed brings hundreds of batches, and a build copies registry-sized arrays and queries
        the alert store."""
        with self._lock:
            if self._dirty is not None:
                t0 = time.perf_counter()
                self.snapshot_builds += 1
                self._snapshot = self._build_snapshot(self._dirty)
                self._dirty = None
                self._hist["publish"].observe(time.perf_counter() - t0)
            return self._snapshot

    def _past(self) -> Any:
        if self.history_store is None:
            raise LookupError("no history store")
        if self._past_view is None:
            from ioc.time_travel import PastView
            self._past_view = PastView(self.registry, self.history_store, self.alerting, extras=self.extras,
                                       core=self.config.core, clock=self._clock)
        return self._past_view

    def snapshot_at(self, t: float) -> Snapshot:
        """The city as it stood at ``t``, from the history and the alert store (:mod:`ioc.time_travel`);
        LookupError without a history store."""
        return self._past().snapshot_at(t)

    def recent_at(self, t: float, sensor: int) -> dict[str, np.ndarray]:
        """One sensor's readings of the day before ``t`` (the drill-down of a past instant)."""
        return self._past().recent_at(t, sensor)

    def stored_alerts(self, limit: int = 200) -> list[Alert]:
        """The newest ``limit`` alerts of the store, resolved ones included (an incident to replay)."""
        return [r.alert for r in self.alerting.store.alerts(None, limit)]

    def history_extent(self) -> tuple[float, float] | None:
        """The first and last reading time in the history (None: none kept, or no history store)."""
        return None if self.history_store is None else self.history_store.extent()

    def history(self, sensor_id: str, t0: float, t1: float, points: int = 500) -> Any:
        """One sensor's stored readings of ``[t0, t1]``, downsampled (:meth:`ioc.history.HistoryStore.sensor_history`)."""
        if self.history_store is None:
            raise LookupError("no history store")
        return self.history_store.sensor_history(sensor_id, t0, t1, points)

    def recent(self, sensor: int) -> dict[str, np.ndarray]:
        if not 0 <= sensor < len(self.registry):
            raise IndexError(f"no sensor {sensor}")
        with self._lock:
            return {k: v.copy() for k, v in self.core.recent(sensor).items()}

    def acknowledge(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = "") -> Alert:
        """An officer takes the alert (escalation stops); recorded with the name and comment (and in
        the audit log with their ``role`` and ``address``)."""
        with self._lock:
            r = self.alerting.acknowledge(alert_id, by, self._sim_now, comment, role=role, address=address)
            self._publish()
            return r.alert

    def resolve(self, alert_id: int, by: str, comment: str = "", *, role: str = "", address: str = "") -> Alert:
        with self._lock:
            r = self.alerting.resolve(alert_id, by, self._sim_now, comment, role=role, address=address)
            self._publish()
            return r.alert

    def assign(self, alert_id: int, officer_id: str, by: str, *, role: str = "", address: str = "") -> Alert:
        """Give the alert to an officer of the configuration (AlertError for an unknown one)."""
        with self._lock:
            r = self.alerting.assign(alert_id, officer_id, by, self._sim_now, role=role, address=address)
            self._publish()
            return r.alert

    def routed(self, alert_id: int) -> Routed:
        """The alerting service's record of one alert (AlertError if it is not in memory)."""
        with self._lock:
            return self.alerting.engine.get(alert_id)

    def deliveries(self, alert_ids: list[int]) -> dict[int, list[dict[str, object]]]:
        """Each alert's deliveries, ``{channel, address, officer?, status, attempts, last_error}``;
        status ``not_configured`` for a channel without a receiver."""
        return deliveries_of(self.alerting.store, alert_ids)

    def dead_letters(self, limit: int = RECENT_DEAD_LETTERS) -> list[dict[str, Any]]:
        """The newest messages a broker source could not use, newest first: ``{source, code, reason,
        received, payload}`` (the payload's first 300 bytes as text).  All of them are kept in the
        dead-letter file or topic; these are for the control room's engineers."""
        with self._lock:
            newest = list(self._recent_dead)[::-1][:max(0, limit)]
        return [{"source": d.source, "code": d.code, "reason": d.reason, "received": d.received,
                 "payload": d.payload[:300].decode("utf-8", "replace")} for d in newest]

    def audit_log(self, limit: int = 200) -> list[Any]:
        """The newest recorded actions first (:class:`~ioc.alerting.store.AuditEntry`)."""
        return self.alerting.store.audit_log(limit)

    def cap_xml(self, alert_id: int) -> str:
        """The alert as OASIS CAP 1.2 XML (Alert while unresolved, Cancel once resolved)."""
        return self.alerting.cap_xml(alert_id)

    def start_delivery(self) -> None:
        """Run the dispatcher on a thread of its own (no-op without one, or if it runs already)."""
        if self.dispatcher is None or self._dispatch_thread is not None:
            return
        self._dispatch_stop.clear()
        self._dispatch_thread = threading.Thread(target=self.dispatcher.run_forever, args=(self._dispatch_stop,),
                                                 name="ioc-alert-dispatcher", daemon=True)
        self._dispatch_thread.start()

    def close(self, timeout: float = 15.0) -> None:
        """Stop the dispatcher (after its current attempt), let a checkpoint being written finish,
        write the buffered history, and close the alert store."""
        if self.checkpointer is not None:
            self.checkpointer.wait(timeout)
        if self.history_store is not None:
            self.history_store.close()                # what is buffered goes to disk
        self._dispatch_stop.set()
        if self.dispatcher is not None:
            self.dispatcher.wake()
        thread, self._dispatch_thread = self._dispatch_thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the alert dispatcher is still sending; pending deliveries resume at the next start")
                return
        with self._lock:
            self.alerting.store.close()

    # ------------------------------------------------------------ checkpoints
    def warm_start(self, source: str | None = None) -> WarmStart | None:
        """Restore the checkpointer's checkpoint, if there is one, for a run of ``source`` (None: the
        simulator); call before :meth:`preroll` / :meth:`run_source`.  None when there is none;
        :class:`~processing.checkpoint.CheckpointError` (one line, nothing changed) when it is
        damaged or belongs to another registry, core shape or source."""
        if self.checkpointer is None:
            return None
        ckpt = self.checkpointer.load()
        if ckpt is None:
            return None
        try:
            return self.restore(ckpt, source=source, path=self.checkpointer.path)
        except CheckpointMismatch as exc:
            raise CheckpointMismatch(f"{self.checkpointer.path}: {exc}") from None

    def restore(self, ckpt: Checkpoint, *, source: str | None = None, path: Path | None = None) -> WarmStart:
        """Put a decoded checkpoint's state into the core and resume from its position (see the
        module docstring).  Raises :class:`~processing.checkpoint.CheckpointMismatch`, changing nothing."""
        if self._prerolled or self.core.readings_scored:
            raise RuntimeError("restore a checkpoint before the pipeline has processed anything")
        pos = ckpt.position
        key = source_key(source, self.config.seed)
        try:
            t = float(pos["t"])
            taken_from = str(pos["source"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointMismatch("checkpoint has no position of a pipeline (keys 't', 'source')") from None
        if taken_from != key:
            raise CheckpointMismatch(f"checkpoint was taken from {taken_from}, this run reads {key}")
        self.core.restore_state(ckpt.arrays)
        cfg = self.config
        catch_up = skipped = 0.0
        offsets: dict[str, int] = {}
        # what the alert store has already seen of this stream (it is written with every outcome,
        # the checkpoint only now and then): replayed into the core, not alerted on twice
        horizon = self.alerting.store.horizon() or {}
        if horizon.get("source") != key:
            horizon = {}
        if source is None and math.isfinite(t):
            plan = pos.get("sim") if isinstance(pos.get("sim"), Mapping) else {}
            self.live_start = max(self.live_start, t)
            begin = max(t, self.live_start - cfg.preroll_hours * 3600.0)
            skipped, catch_up = begin - t, self.live_start - begin
            anomalies_from = float(plan.get("anomalies_from", begin))
            after = t if begin == t else float(np.nextafter(begin, -np.inf))  # the reading at t is in the state
            self._stream = ResumedStream(self._sim, after, anomalies_from)
            self._sim_plan = {**self._sim_plan, "anomalies_from": anomalies_from,
                              "first_live_start": float(plan.get("first_live_start", self.live_start))}
            self.sim_start = begin
            self._sim_now = t
            h = float(horizon.get("t", t))
            self._alerted_to = h if h > t else None
            if skipped == 0:
                self._watch_silence(pos)
        elif source is not None:
            raw = pos.get("offsets")
            offsets = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
            self._start_offsets = dict(offsets)
            self._offsets = dict(offsets)
            seen = horizon.get("offsets") if isinstance(horizon.get("offsets"), Mapping) else {}
            self._replay_until = {k: int(v) for k, v in seen.items() if k in offsets and int(v) > offsets[k]}
            if source_key(source, cfg.seed).startswith("kafka:"):   # what came meanwhile is in the topic
                self._watch_silence(pos)
            if math.isfinite(t):
                self._sim_now = t
        self._readings_total = int(pos.get("readings_total", 0) or 0)
        self._last_value = self.core.last_value()
        if self._kpis.pm_idx.size:                    # the hourly AQI from the restored recent readings
            idx = self._kpis.pm_idx.tolist()
            recent = [self.core.recent(i) for i in idx]
            self._kpis.add(np.concatenate([np.full(r["ts"].size, i) for i, r in zip(idx, recent)]),
                           np.concatenate([r["ts"] for r in recent]), np.concatenate([r["value"] for r in recent]))
        self.warm = WarmStart(path=path, nbytes=ckpt.nbytes, t=t, source=key, catch_up_s=catch_up,
                              skipped_s=skipped, offsets=offsets, readings_total=self._readings_total,
                              alerted_to=self._alerted_to if source is None else (self._replay_until or None))
        with self._lock:
            self._publish("starting")
        return self.warm

    def _watch_silence(self, pos: Mapping[str, Any]) -> None:
        """Measure silence as the run before did: the readings since the checkpoint are replayed
        (simulator, Kafka), so no sensor looks silent only because this process restarted."""
        since = pos.get("silence_from")
        if isinstance(since, (int, float)) and math.isfinite(since):
            self.alerting.engine.watch_from(float(since))

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of the core's state arrays and the position they correspond to (taken between batches)."""
        with self._lock:
            position: dict[str, Any] = {
                "t": self._sim_now, "source": source_key(self._source, self.config.seed),
                "readings_total": self._readings_total, "silence_from": self.alerts.watching_since}
            if self._source is None:
                position["sim"] = dict(self._sim_plan)
            else:
                position["offsets"] = dict(sorted(self._offsets.items()))
            return self.core.state_arrays(), position

    def checkpoint_now(self) -> Any:
        """Write a checkpoint now and wait for it (a clean stop); the :class:`~ioc.checkpoints.SaveInfo`,
        or None without a checkpointer or if writing failed (one warning line)."""
        if self.checkpointer is None:
            return None
        try:
            return self.checkpointer.save(*self.checkpoint_state())
        except OSError as exc:
            log.warning("checkpoint not written to %s: %s", self.checkpointer.path, exc)
            return None

    def _maybe_checkpoint(self) -> None:
        """A periodic checkpoint, if one is due: copied here, written on the checkpointer's thread."""
        if self.checkpointer is not None and self._prerolled and self.checkpointer.due():
            self.checkpointer.submit(*self.checkpoint_state())

    async def _checkpoint_feed(self, feed: LiveFeed, *, wait: bool) -> None:
        """A checkpoint of a live run, with the feed's position (Kafka: the consumed offset of every
        partition the consumer holds; the simulator and MQTT have none)."""
        if self.checkpointer is None or not self._prerolled:
            return
        self._offsets.update(await feed.positions())
        if wait:
            self.checkpoint_now()
        else:
            self.checkpointer.submit(*self.checkpoint_state())

    @property
    def sim_now(self) -> float:
        return self._sim_now

    def sim_time_at(self, wall: float) -> float:
        """Simulated time at wall-clock instant ``wall`` (live phase)."""
        if self._wall_start is None:
            return self.live_start
        return self.live_start + (wall - self._wall_start) * self.config.speed

    def preroll(self, on_progress: Callable[[float], None] | None = None) -> None:
        """Push the history up to the live start through every stage, as fast as possible."""
        if self._prerolled:
            return
        step = self.config.preroll_step_s
        total = max(self.live_start - self.sim_start, 1e-9)
        t = self.sim_start
        while True:
            t = min(t + step, self.live_start)
            start = time.perf_counter()
            batch, labels = self._stream.advance(t)
            self._hist["simulate"].observe(time.perf_counter() - start)
            self.injected.extend(labels)
            self.process(batch, t, status="warming_up")
            if on_progress is not None:
                on_progress(min(1.0, (t - self.sim_start) / total))
            if t >= self.live_start:
                break
        self._prerolled = True
        self._rate.reset(self._clock())
        with self._lock:
            self._end_preroll()
            self._publish()
        if self.checkpointer is not None:             # warm from the start: a crash now keeps the pre-roll
            self.checkpointer.submit(*self.checkpoint_state())

    def step(self, sim_now: float) -> Snapshot:
        """Advance the simulator to ``sim_now`` and process what it produced (synchronous form of one tick)."""
        start = time.perf_counter()
        batch, labels = self._stream.advance(sim_now)
        self._hist["simulate"].observe(time.perf_counter() - start)
        self.injected.extend(labels)
        self.process(batch, sim_now)
        self._maybe_checkpoint()
        return self.snapshot()

    def process(self, batch: ReadingBatch, sim_now: float, *, status: str = "ok",
                queued_at: float | None = None, replay: bool = False, behind: bool = False,
                offsets: Mapping[str, int] | None = None, checked: bool = False) -> None:
        """Validate, score and alert one batch at simulated time ``sim_now``; the snapshot is then
        out of date, and built when next read (:meth:`snapshot`).

        ``replay``: readings the run before a warm start had already alerted on (learned, not
        alerted on again); ``behind``: the source is catching up a backlog (Kafka partitions
        read unevenly), so no sensor is judged silent until it has caught up; ``offsets``: the
        Kafka position after this batch, stored with its alerts (the alert store's horizon);
        ``checked``: a decoder already checked every reading (:mod:`processing.validate`), so
        it is not checked twice."""
        with self._lock:
            if queued_at is not None:
                self._hist["queue"].observe(time.perf_counter() - queued_at)
            self._sim_now = max(self._sim_now, float(sim_now))
            now = self._sim_now
            t0 = time.perf_counter()
            if not checked:
                batch = self._validate(batch)
            batch = batch.by_sensor()                       # the one sort; later stages read this order
            t1 = time.perf_counter()
            self._hist["validate"].observe(t1 - t0)
            if len(batch):
                scores = self.core.update(batch)
                self._remember(batch, scores.score)
                self._kpis.add(batch.sensor, batch.ts, batch.value)
                if self.history_store is not None:
                    self.history_store.add(batch.sensor, batch.ts, batch.value, scores.score, scores.alert, scores.reasons)
            t2 = time.perf_counter()
            self._hist["score"].observe(t2 - t1)
            # history replayed before going live is recorded, but pages nobody
            if self._prerolled and self._live_from is None:
                self._live_from = now
            alerted = self._alerted_to
            if not replay and (alerted is None or now > alerted):
                ab, ascores = (batch, scores) if len(batch) else (None, None)
                if alerted is not None and ab is not None:            # past the alert store's horizon
                    new = batch.ts > alerted
                    if not new.all():
                        ab = batch.take(new) if new.any() else None
                        ascores = Scores(scores.score[new], scores.alert[new], scores.reasons[new])
                self._alerted_to = None
                horizon: dict[str, Any] = {"source": source_key(self._source, self.config.seed), "t": now}
                if offsets is not None:
                    horizon["offsets"] = dict(offsets)
                last_seen = None if behind else self.core.last_seen()
                outcome = self.alerting.step(ab, ascores if ab is not None else None, last_seen, now,
                                             notify=self._prerolled, horizon=horizon)
                self._log_alarms(outcome.alerts, {e.alert_id for e in outcome.events if e.type == "opened"})
            t3 = time.perf_counter()
            self._hist["alerts"].observe(t3 - t2)
            self._readings_total += len(batch)
            self.batches += 1
            self._rate.add(self._clock(), len(batch))
            self._publish(status)

    async def run(self, feed: LiveFeed, stop: asyncio.Event, *, checked: bool = False,
                  event_clock: bool = False) -> None:
        """The one live loop: score and alert each item of ``feed`` until ``stop`` is set or the
        feed ends, committing each item once processed (at-least-once), with periodic
        checkpoints (with the feed's position) and one at a clean stop (an error skips it:
        state and position may differ).

        ``feed``: :meth:`simulated` (the embedded city) or an ``ingest.sources.Feed``
        (:meth:`run_source`); ``checked``: its readings were checked by a decoder;
        ``event_clock``: the clock starts at the first item's time (a broker's replay may be
        old), else it is the pipeline's simulated clock."""
        if not self._prerolled:
            self.preroll()
        self._wall_start = self._clock()
        self._rate.reset(self._wall_start)
        first = event_clock
        try:
            async for item in feed:                       # a broker feed: an empty item at least every second
                if first:
                    self._sim_now, first = item.sim_now, False
                for d in item.dead:
                    self._dead[d.code] = self._dead.get(d.code, 0) + 1
                if item.dead:
                    with self._lock:
                        self._recent_dead.extend(item.dead)
                token = item.delivery.token
                offsets = None
                if isinstance(token, Mapping) and token:  # Kafka: TopicPartition -> next offset
                    offsets = dict(self._offsets)
                    offsets.update((f"{tp.topic}:{tp.partition}", int(o)) for tp, o in token.items())
                self.process(item.batch, item.sim_now, queued_at=item.queued_at, replay=item.replay,
                             behind=item.behind, offsets=offsets, checked=checked)
                await feed.commit(item)
                if offsets is not None:
                    self._offsets = offsets
                if self.checkpointer is not None and self.checkpointer.due():
                    await self._checkpoint_feed(feed, wait=False)
                if stop.is_set():
                    break
        finally:
            close = getattr(feed, "aclose", None)
            if close is not None:
                await close()
        await self._checkpoint_feed(feed, wait=True)

    def simulated(self, stop: asyncio.Event) -> SimulatedFeed:
        """The simulated city as a feed for :meth:`run`: a producer advancing the simulator
        every ``tick_s`` (of the injected clock) until ``stop``, onto a bounded queue."""
        hist = self._hist["simulate"]

        def simulated(seconds: float, labels: list) -> None:
            hist.observe(seconds)
            self.injected.extend(labels)
        return SimulatedFeed(self._stream, stop, clock=self._clock, sim_time_at=self.sim_time_at, sleep=self._sleep,
                             tick_s=self.config.tick_s, queue_size=self.config.queue_size, on_advance=simulated)

    async def run_source(self, url: str, stop: asyncio.Event, *,
                         dead_letter_file: str | Path | None = None) -> None:
        """Go live from a broker (``mqtt://…`` or ``kafka://…``) instead of the simulator, until
        ``stop``; a batch is acknowledged to the broker only after it was processed (at-least-once).
        Alerts also go to the broker's alert topics while it runs."""
        from ingest.sources import open_feed

        self._prerolled = True
        self._source = url
        async with contextlib.AsyncExitStack() as stack:
            await self._alert_topics_on(url, stack)
            feed = await stack.enter_async_context(open_feed(url, self.registry, last_seen=self.core.last_seen,
                                                             dead_letter_file=dead_letter_file,
                                                             start_offsets=self._start_offsets,
                                                             replay_until=self._replay_until))
            await self.run(feed, stop, checked=True, event_clock=True)   # decoded: checked there

    async def _alert_topics_on(self, url: str, stack: contextlib.AsyncExitStack) -> None:
        """Alerts go to the source broker's topics too (MQTT ``ioc/alerts/<team>``, Kafka
        ``ioc.alerts``): a publisher on this loop, handed to the dispatcher's thread as a channel,
        and taken back (not configured again) when the source stops."""
        if self.dispatcher is None:
            return
        from ioc.alerting.channels import KafkaTopicPublisher, MqttTopicPublisher, TopicChannel

        if url.startswith("mqtt"):
            from ingest.mqtt import MqttPublisher, MqttSettings

            # unique per process and host: two IOCs with one id (every container is PID 1) would
            # take the broker session from each other in turn, and their alerts would stall
            client_id = f"ioc-alerts-{uuid.uuid4().hex[:8]}-{os.getpid()}-{socket.gethostname()}"[:64]
            settings = dataclasses.replace(MqttSettings.from_url(url), client_id=client_id)
            publisher = await stack.enter_async_context(MqttPublisher(settings))
            acked = MqttTopicPublisher(publisher, timeout_s=self.dispatcher.settings.timeout_s)
            name, channel = "mqtt", TopicChannel(acked)
        else:
            from ingest.kafka import KafkaSettings, KafkaSink

            sink = await stack.enter_async_context(KafkaSink(KafkaSettings.from_url(url)))
            name, channel = "kafka", TopicChannel(KafkaTopicPublisher(sink, asyncio.get_running_loop()))
        previous = self.dispatcher.channels.get(name)
        self.dispatcher.channels[name] = channel
        stack.push_async_callback(self._drain_topic, name, channel, previous)

    async def _drain_topic(self, name: str, channel: Any, previous: Any) -> None:
        """Before the source's publisher closes: send what is due on its topic channel (an alert
        raised just before a stop or a deploy still goes out), for at most the delivery timeout;
        then give the channel back."""
        assert self.dispatcher is not None
        store, deadline = self.alerting.store, time.monotonic() + self.dispatcher.settings.timeout_s
        while time.monotonic() < deadline and (channel.sending or any(
                d.channel == name for d in store.due(self.dispatcher.clock(), 1_000))):
            self.dispatcher.wake()
            await asyncio.sleep(0.02)
        self.dispatcher.channels[name] = previous

    # ------------------------------------------------------------ private


    def _validate(self, batch: ReadingBatch) -> ReadingBatch:
        """Readings the core cannot take (:mod:`processing.validate`) are dropped, counted by fault."""
        if len(batch) == 0:
            return batch
        codes = faults(batch.sensor, batch.ts, batch.value, self._limits)
        good = codes == OK
        if good.all():
            return batch
        for code, n in count_faults(codes).items():
            self._dead[code] += n
        return batch.take(good)

    def _remember(self, batch: ReadingBatch, score: np.ndarray) -> None:
        """The newest value and score of each sensor in ``batch`` (in sensor order)."""
        s = batch.sensor
        rows = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
        idx = batch.sensor[rows]
        seen = self.core.last_seen()[idx]
        fresh = batch.ts[rows] >= seen            # late readings do not replace the newest
        self._last_value[idx[fresh]] = batch.value[rows[fresh]]
        self._score[idx[fresh]] = score[rows[fresh]]

    def _log_alarms(self, changed: tuple[Routed, ...], opened: set[int]) -> None:
        """Keep what the alarm-rate figures need: when each alert opened live, when its
        condition first cleared by itself, its team; and which alerts the pre-roll opened."""
        for r in changed:
            a = r.alert
            if r.id in opened:
                if not self._prerolled:
                    self._preroll_opened.add(r.id)
                elif r.id not in self._alarm_row:
                    self._alarm_row[r.id] = len(self._alarm_opened)
                    self._alarm_opened.append(float(a.opened_at))
                    self._alarm_cleared.append(float("nan"))
                    self._alarm_team.append(r.team)
            row = self._alarm_row.get(r.id)
            if row is not None and a.cleared_at is not None and math.isnan(self._alarm_cleared[row]):
                self._alarm_cleared[row] = float(a.cleared_at)
            if r.id in self._preroll_hidden and a.cleared_at is None and a.state != "resolved":
                self._preroll_hidden.discard(r.id)        # the condition rose again live: show it

    def _end_preroll(self) -> None:
        """Alerts the pre-roll opened that have cleared by themselves (or were resolved) by the live
        start stay in the store but leave the operator feed: history, not an ongoing condition."""
        self._preroll_hidden = {a.id for a in self.alerts.alerts() if a.id in self._preroll_opened
                                and (a.state == "resolved" or a.cleared_at is not None)}
        self._preroll_opened = set()
        if self._live_from is None:
            self._live_from = self.live_start

    def _visible_alerts(self) -> tuple[Alert, ...]:
        """The alerts the snapshot shows: all but those hidden at the end of the pre-roll."""
        alerts = self.alerts.alerts()
        hidden = self._preroll_hidden
        if not hidden:
            return alerts
        return tuple(a for a in alerts
                     if not (a.id in hidden and (a.state == "resolved" or a.cleared_at is not None)))

    def alarm_rates(self, now: float | None = None) -> tuple[AlarmRate, AlarmRate] | None:
        """Alarm-rate figures of the live run at simulated time ``now`` (default: the pipeline's):
        over the last hour (or since going live, at least 10 min) and over the whole live run
        (at least 10 min); None before going live.  See :func:`processing.alarm_rate.alarm_rate`."""
        start = self._live_from
        if start is None:
            return None
        now = self._sim_now if now is None else float(now)
        if not math.isfinite(now):
            return None
        opened = np.asarray(self._alarm_opened, dtype=np.float64)
        cleared = np.asarray(self._alarm_cleared, dtype=np.float64)
        team = np.asarray(self._alarm_team, dtype=str)
        since = max(now - start, FLOOD_WINDOW_S)
        hour = alarm_rate(opened, cleared, team, now, min(3600.0, since + 1e-6))
        run = alarm_rate(opened, cleared, team, now, since + 1e-6)
        return hour, run

    def _publish(self, status: str | None = None) -> None:
        """Mark the snapshot out of date; the next :meth:`snapshot` builds it (with ``status``)."""
        self._dirty = status or ("ok" if self._prerolled else "warming_up")

    def _build_snapshot(self, status: str) -> Snapshot:
        wall = self._clock()
        live = LiveFigures(status, self._rate.per_s(wall), self._readings_total, self._dead,
                           {k: h.frozen() for k, h in self._hist.items()}, self.batches, self.snapshot_builds,
                           self.alarm_rates(self._sim_now))
        return self._display.build(now=self._sim_now, wall=wall, core=self.core,
                                   silent=self.alerts.silent_sensors(),     # the silent alert's rule
                                   last_value=self._last_value, score=self._score, alerts=self._visible_alerts(),
                                   alerts_rev=self.alerts.rev, live=live)
