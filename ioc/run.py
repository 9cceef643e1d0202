"""``ioc run``: the embedded default -- simulators, pipeline and control room in one process.

Wiring, in order:

1. load the registry (and the flood levels / feeder ratings in its properties)
   and the ward polygons of the same city;
2. build the alerting service (``alerting.toml``, the alert store in
   ``<data-dir>/alerts``, channels from the environment -- see
   :func:`ioc.alerting.wiring.delivery_channels`), the :class:`~ioc.pipeline.Pipeline`
   and the Dash app on it, and bind the HTTP server (so a busy port is
   reported before any work);
3. print the URL; restore the core's checkpoint ``<data-dir>/checkpoint/core.ckpt``
   if there is one (:mod:`ioc.checkpoints`; one ``Warm start:`` line saying from
   which position) -- one that is damaged or of another registry, core shape or
   source is one ``warning:`` line on stderr and the run starts cold; then pre-roll
   ``--preroll-hours`` of simulated history with a progress line (recorded, but
   nobody is paged for it) -- after a warm start only the time since the checkpoint;
4. start the alert dispatcher thread, run the pipeline on its own asyncio loop
   in a background thread, and serve the page and API (Flask via werkzeug,
   threaded) on the main thread until SIGINT (Ctrl-C) or SIGTERM, which stop
   all three cleanly (exit code 0), with a last checkpoint.  Checkpoints are written
   after the pre-roll and every ``--checkpoint-every`` wall seconds (default 60; 0
   turns them off, reading included); ``--cold`` ignores the one there is.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ingest.sources import redact
from processing.errors import IocError

__all__ = ["RunError", "RunOptions", "default_data_dir", "serve"]


def default_data_dir() -> Path:
    """The data folder (:func:`ioc.paths.data_dir`: ``$IOC_DATA_DIR``, the checkout's git-ignored
    ``var/``, or ``~/.local/share/city-ioc`` when installed); the alert store is
    ``<data-dir>/alerts/alerts.sqlite3``."""
    from ioc.paths import data_dir

    return data_dir()


class RunError(IocError):
    """A problem the user can fix (busy port, bad file); the message is one line."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    host: str = "127.0.0.1"
    port: int = 8050
    speed: float = 1.0
    anomaly_rate: float = 0.5
    seed: int = 1
    preroll_hours: float = 84.0
    registry: Path | None = None
    refresh_ms: int = 1000
    data_dir: Path | None = None        # None: default_data_dir()
    source: str | None = None           # mqtt://… or kafka://…; None: the built-in simulator
    checkpoint_every_s: float = 60.0    # wall seconds between core checkpoints; 0: no checkpoints
    cold: bool = False                  # ignore an existing checkpoint
    history_days: float = 30.0          # days of readings kept in <data>/history; 0: no history
    postgres_store: bool = False        # alerts in PostgreSQL ($IOC_POSTGRES_URL) instead of <data>/alerts SQLite
    tiles: str | None = None            # a raster tile URL ({z}/{x}/{y}) under the map; None: offline
    tiles_attribution: str = ""
    loopback_open: bool = True          # /api/health and /metrics answer loopback without sign-in

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise RunError(f"--port must be between 0 and 65535, got {self.port}")
        if not (math.isfinite(self.speed) and 0 < self.speed <= 10_000):
            raise RunError(f"--speed must be > 0 and at most 10000, got {self.speed}")
        if not (math.isfinite(self.anomaly_rate) and self.anomaly_rate >= 0):
            raise RunError(f"--anomaly-rate must be >= 0, got {self.anomaly_rate}")
        if self.seed < 0:
            raise RunError(f"--seed must be >= 0, got {self.seed}")
        if not 0 <= self.preroll_hours <= 336:
            raise RunError(f"--preroll-hours must be between 0 and 336, got {self.preroll_hours}")
        if self.tiles is not None:
            from dashboard.figures import TileSource
            try:
                TileSource(self.tiles, self.tiles_attribution)
            except ValueError as exc:
                raise RunError(str(exc)) from None
        if not (math.isfinite(self.history_days) and 0 <= self.history_days <= 3660):
            raise RunError(f"--history-days must be between 0 and 3660, got {self.history_days}")
        if not (math.isfinite(self.checkpoint_every_s) and self.checkpoint_every_s >= 0):
            raise RunError(f"--checkpoint-every must be a number of seconds >= 0, got {self.checkpoint_every_s}")


class _Stopped(Exception):
    """A stop signal arrived during the warm-up."""


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or a one-line RunError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise RunError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = " (is another `ioc run` already serving there? use --port)" if exc.errno == errno.EADDRINUSE else ""
        raise RunError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    return sock


class _LiveThread(threading.Thread):
    """The pipeline's asyncio loop, in a thread of its own."""

    def __init__(self, pipeline, on_exit, source: str | None = None,
                 dead_letter_file: Path | None = None) -> None:
        super().__init__(name="ioc-pipeline", daemon=True)
        self.pipeline = pipeline
        self.source = source
        self.dead_letter_file = dead_letter_file
        self.error: BaseException | None = None
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by serve(); the server is stopped
            self.error = exc
        finally:
            self._on_exit()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stopping.is_set():
            return
        if self.source:
            await self.pipeline.run_source(self.source, self._stop_event, dead_letter_file=self.dead_letter_file)
        else:
            await self.pipeline.run(self.pipeline.simulated(self._stop_event), self._stop_event)

    def stop(self) -> None:
        self._stopping.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass


def serve(opts: RunOptions, out: TextIO = sys.stdout) -> int:
    """Run until a stop signal; returns the process exit code."""
    from werkzeug.serving import make_server

    from dashboard.app import create_app, load_wards_geojson
    from ioc.alerting.store import StoreError
    from ioc.auth.store import AuthStore
    from ioc.checkpoints import Checkpointer, checkpoint_path
    from ioc.citydata import default_city_dir, load_registry
    from ioc.alerting.wiring import build_alerting
    from ioc.citydata import load_admin_units, load_extras, load_layers
    from ioc.history import HistoryStore
    from ioc.pipeline import Pipeline, PipelineConfig
    from processing.alerting.config import ConfigError
    from processing.checkpoint import CheckpointError
    from processing.registry import RegistryError

    if opts.source:
        from ingest.sources import SourceError, scheme_of

        try:
            scheme_of(opts.source)
        except SourceError as exc:
            raise RunError(str(exc)) from None
    path = opts.registry or default_city_dir() / "sensors.geojson"
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        raise RunError(str(exc)) from None
    wards_path = Path(path).with_name("wards.geojson")
    if not wards_path.exists():
        wards_path = default_city_dir() / "wards.geojson"
    try:
        wards = load_wards_geojson(wards_path)
    except ValueError as exc:
        raise RunError(f"{wards_path}: not valid JSON ({exc})") from None

    try:
        city_files = Path(path).parent if (Path(path).parent / "layers").is_dir() else default_city_dir()
        layers, admin_units = load_layers(city_files), load_admin_units(city_files)
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    config = PipelineConfig(speed=opts.speed, anomaly_rate=opts.anomaly_rate, seed=opts.seed,
                            preroll_hours=0.0 if opts.source else opts.preroll_hours)
    data_dir = opts.data_dir or default_data_dir()
    alerts_dir = data_dir / "alerts"
    try:
        store = _postgres_store() if opts.postgres_store else None
        alerting, dispatcher = build_alerting(registry, alerts_dir, wards_path=wards_path, store=store)
    except (ConfigError, StoreError, ValueError) as exc:
        raise RunError(str(exc)) from None
    config = config.on_clock_of(alerting.config.city)          # time-of-day slots in local time
    checkpointer = (Checkpointer(checkpoint_path(data_dir), registry, config.core, every_s=opts.checkpoint_every_s)
                    if opts.checkpoint_every_s > 0 else None)
    history = (HistoryStore(data_dir / "history", registry.ids, retention_days=opts.history_days)
               if opts.history_days > 0 else None)
    pipeline = Pipeline(registry, config, extras=load_extras(path, registry), alerting=alerting,
                        dispatcher=dispatcher, checkpointer=checkpointer, history=history)
    if history is not None:
        history.start()
    try:
        auth = AuthStore.in_folder(data_dir / "auth")
        first_password = auth.first_admin(time.time())
        from dashboard.figures import TileSource
        app = create_app(pipeline, auth=auth, wards=wards, refresh_ms=opts.refresh_ms, layers=layers,
                         map_style=TileSource(opts.tiles, opts.tiles_attribution) if opts.tiles else None,
                         admin_units=admin_units,
                         loopback_open=("/api/health", "/metrics") if opts.loopback_open else ())
        logging.getLogger("werkzeug").setLevel(logging.ERROR)    # no line per request
        sock = _listen(opts.host, opts.port)
        try:
            server = make_server(opts.host, opts.port, app.server, threaded=True, fd=sock.fileno())
        finally:
            sock.close()                                          # the server holds its own duplicate
    except BaseException:
        pipeline.close()
        raise
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    url = f"http://{host}:{server.port}/"

    stopping = threading.Event()
    serving = threading.Event()

    def shutdown() -> None:
        if not stopping.is_set():
            stopping.set()
            if serving.is_set():
                threading.Thread(target=server.shutdown, name="ioc-shutdown", daemon=True).start()

    previous = {sig: signal.signal(sig, lambda *_: shutdown()) for sig in (signal.SIGINT, signal.SIGTERM)}
    live = _LiveThread(pipeline, on_exit=shutdown, source=opts.source,
                       dead_letter_file=data_dir / "deadletters.jsonl" if opts.source else None)
    try:
        if opts.source:
            print(f"City IOC: {len(registry)} sensors from {path}, readings from {redact(opts.source)}", file=out)
        else:
            print(f"City IOC: {len(registry)} sensors from {path}, simulated ×{opts.speed:g}, "
                  f"{opts.anomaly_rate:g} anomalies per sensor per day, seed {opts.seed}", file=out)
        print(f"Control room: {url}  (API: {url}api/health, {url}metrics; Ctrl-C to stop)", file=out, flush=True)
        if first_password is not None:
            print(f"First start: sign in as 'admin' with the password {first_password} (shown this once; "
                  f"add users with 'ioc users add NAME --role viewer|operator|duty|admin --data {auth.path.parent}', "
                  f"change this one with 'ioc users passwd admin --data {auth.path.parent}')", file=out, flush=True)
        topics = f"; {opts.source.split(':', 1)[0]} alert topics: on the source broker" if opts.source else ""
        print(f"Alert store: {alerting.store.where} ({_channels_line(dispatcher)}{topics})", file=out, flush=True)
        if history is not None:
            print(f"History: {history.folder} ({opts.history_days:g} days kept; OGC API: {url}ogc/)", file=out,
                  flush=True)
        warm = None
        if checkpointer is not None and not opts.cold:
            try:
                warm = pipeline.warm_start(opts.source)
            except CheckpointError as exc:
                print(f"warning: {exc}; starting cold (the checkpoint is replaced at the next one)",
                      file=sys.stderr, flush=True)
        if warm is not None:
            print(_warm_line(warm, opts.source), file=out, flush=True)
        start = time.perf_counter()
        what = (f"{opts.preroll_hours:g} h of simulated history" if warm is None
                else f"{warm.catch_up_s / 60:.0f} min of simulated time since the checkpoint")

        label = f"{'Warming up' if warm is None else 'Catching up'}: {what} …"
        redraw = bool(getattr(out, "isatty", lambda: False)())   # a log file gets the line once
        shown: list[int] = []

        def progress(fraction: float) -> None:
            if stopping.is_set():
                raise _Stopped
            pct = int(fraction * 100)
            if shown and (pct == shown[-1] or not (redraw or pct == 100)):
                return
            print(f"\r{label} {pct:3d}%" if redraw or not shown else f" {pct:3d}%", end="", file=out, flush=True)
            shown.append(pct)

        try:
            if not opts.source:            # a broker brings its own history; nothing is simulated
                pipeline.preroll(progress)
        except _Stopped:
            print("\nStopped.", file=out, flush=True)
            return 0
        if config.preroll_hours > 0:
            snap = pipeline.snapshot()
            print(f" ({snap.health.readings_total:,} readings, {len(snap.alerts)} alerts, "
                  f"{time.perf_counter() - start:.1f} s)", file=out, flush=True)
        if stopping.is_set():
            print("Stopped.", file=out, flush=True)
            return 0
        pipeline.start_delivery()
        live.start()
        print(f"Live. Serving {url}", file=out, flush=True)
        serving.set()
        if not stopping.is_set():
            server.serve_forever(poll_interval=0.2)
    finally:
        live.stop()
        if live.is_alive():
            live.join(timeout=30)                               # its last checkpoint included
        server.server_close()
        pipeline.close()
        auth.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if live.error is not None:
        print(f"error: the pipeline stopped: {type(live.error).__name__}: {live.error}", file=sys.stderr)
        return 1
    print("Stopped.", file=out, flush=True)
    return 0


def _postgres_store() -> Any:
    """The PostgreSQL alert store of ``$IOC_POSTGRES_URL``, led by this process: the same advisory lock
    ``ioc alerting`` takes, so the one-process pipeline and a cluster's owner never both write it."""
    from ioc.alert_owner import lead_key
    from ioc.alerting.store import AlertStore
    from ingest.kafka.settings import EVENTS_TOPIC

    url = os.environ.get("IOC_POSTGRES_URL", "")
    if not url:
        raise RunError("--postgres-store: set IOC_POSTGRES_URL=postgresql://… (the password stays off the "
                       "command line)")
    store = AlertStore(url)
    if not store.try_lead(lead_key(EVENTS_TOPIC)):
        store.close()
        raise RunError(f"--postgres-store: another process leads the alerts of {store.where} (an 'ioc alerting' "
                       "or another 'ioc run'): stop it first")
    return store


def _warm_line(warm, source: str | None) -> str:
    """``Warm start: restored … position t=…`` -- one line saying what the run resumes from."""
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(warm.t, timezone.utc).isoformat(timespec="seconds") if math.isfinite(warm.t) else "-"
    line = (f"Warm start: restored {warm.path} ({warm.nbytes / 1e6:.1f} MB, {warm.readings_total:,} readings), "
            f"position t={warm.t!r} ({when}) of {warm.source}; ")
    if source is None:
        line += f"catching up {warm.catch_up_s / 60:.0f} simulated min, no pre-roll"
        if warm.skipped_s > 0:
            line += f" ({warm.skipped_s / 3600:.1f} h of outage not replayed: a gap for every sensor)"
    elif warm.offsets:
        line += "resuming at the checkpoint's offsets " + " ".join(f"{k}={v}" for k, v in warm.offsets.items())
    else:
        line += "resuming where the broker's session left off"
    if isinstance(warm.alerted_to, float):
        line += f"; up to t={warm.alerted_to!r} the alert store has it already (learned again, not alerted twice)"
    elif warm.alerted_to:
        line += "; up to offsets " + " ".join(f"{k}={v}" for k, v in warm.alerted_to.items()) + \
                " the alert store has it already (learned again, not alerted twice)"
    return line


def _channels_line(dispatcher) -> str:
    """``webhook, e-mail: sending; mqtt, kafka: not configured`` -- one line at start, never per delivery."""
    from ioc.alerting.wiring import UnconfiguredChannel

    on = [c for c, ch in dispatcher.channels.items() if not isinstance(ch, UnconfiguredChannel)]
    off = [c for c, ch in dispatcher.channels.items() if isinstance(ch, UnconfiguredChannel)]
    parts = ([f"{', '.join(on)}: sending"] if on else []) + ([f"{', '.join(off)}: not configured"] if off else [])
    return "; ".join(parts)
