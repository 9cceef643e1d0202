"""The command lines of the cluster roles: ``ioc worker`` (:mod:`ioc.worker`) and ``ioc alerting``
(:mod:`ioc.alert_owner`).

    IOC_POSTGRES_URL=postgresql://ioc:…@db:5432/ioc \\
        ioc worker --source 'kafka://k1:9092,k2:9092?group=ioc-workers' [--name w1] [--checkpoint-every 30]
    IOC_POSTGRES_URL=… ioc alerting --source 'kafka://k1:9092' [--name a1]     (run two: one leads, one stands by)

The PostgreSQL address carries a password, so it is read from ``$IOC_POSTGRES_URL`` (or
``--postgres``, visible to other users in ``ps``); it is only ever printed without it.
SIGTERM or Ctrl-C stops a worker cleanly: it checkpoints every partition it owns and
leaves the group, so the others take its partitions over at once and replay nothing; an
alerting owner that stops ends its PostgreSQL session, and a standby leads within a poll.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

__all__ = ["add_parsers"]


def _postgres_url(args: argparse.Namespace, role: str, what: str) -> str:
    from ioc.cli import UserError

    url = args.postgres or os.environ.get("IOC_POSTGRES_URL", "")
    if not url:
        raise UserError(f"ioc {role} needs PostgreSQL for {what}: set IOC_POSTGRES_URL=postgresql://… "
                        "(ioc brokers start runs one on loopback)")
    return url


def _kafka(args: argparse.Namespace) -> "Any":
    from ingest.kafka.settings import KafkaSettings, KafkaTransportError
    from ioc.cli import UserError

    try:
        return KafkaSettings.from_url(args.source)
    except KafkaTransportError as exc:
        raise UserError(str(exc)) from None


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _until_signalled(run: "Callable[[asyncio.Event], Awaitable[None]]") -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)
    asyncio.run(main())


async def _announced(run: "Awaitable[None]", ready: asyncio.Event, line: "Callable[[], str]") -> None:
    """Run ``run`` to its end, printing ``line()`` once ``ready`` is set (the tests and operators wait for it)."""
    task = asyncio.ensure_future(run)
    waiting = asyncio.ensure_future(ready.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        print(line(), flush=True)
    else:
        waiting.cancel()
    await task


def cmd_worker(args: argparse.Namespace) -> int:
    from ingest.kafka.settings import KafkaTransportError
    from ioc.cli import UserError, _load_core_config, _load_registry
    from ioc.core_state import CoreStateStore
    from ingest.sources import redact
    from ioc.pg import PgError
    from ioc.worker import Worker, WorkerConfig

    url = _postgres_url(args, "worker", "the core state")
    settings = _kafka(args)
    registry = _load_registry(args.registry)
    core_config = _load_core_config(args.config)
    try:
        config = WorkerConfig(name=args.name or "", checkpoint_every_s=args.checkpoint_every,
                              session_timeout_ms=args.session_timeout_ms,
                              heartbeat_ms=max(100, args.session_timeout_ms // 6))
    except ValueError as exc:
        raise UserError(f"ioc worker: {exc}") from None
    _log_to_stderr()
    try:
        state = CoreStateStore(url, settings.topic)
    except PgError as exc:
        raise UserError(str(exc)) from None

    async def main(stop: asyncio.Event) -> None:
        worker = Worker(registry, settings, state, core_config=core_config, config=config)
        await _announced(worker.run(stop), worker.ready, lambda: (
            f"worker {worker.name}: scoring {settings.url} ({len(registry)} sensors, "
            f"{worker.map.partitions if worker.map else '?'} partitions); core state in {redact(url)}"))
        st = worker.stats
        print(f"worker {worker.name}: stopped; {st.readings} readings scored, {st.checkpoints} checkpoints "
              f"({st.checkpoint_bytes / 1e6:.1f} MB), {st.dead_letters} dead letters", flush=True)

    try:
        _until_signalled(main)
    except KafkaTransportError as exc:
        raise UserError(str(exc)) from None
    finally:
        state.close()
    return 0


def cmd_alerting(args: argparse.Namespace) -> int:
    """Alert on the scoring workers' evidence with the store on PostgreSQL: one process leads, the
    others stand by and take over when it dies."""
    from ingest.kafka.settings import KafkaTransportError
    from ingest.sources import redact
    from ioc.alert_owner import AlertOwner
    from ioc.alerting.store import StoreError
    from ioc.cli import UserError, _load_registry
    from processing.alerting.config import ConfigError

    url = _postgres_url(args, "alerting", "the alert store")
    settings = _kafka(args)
    registry = _load_registry(args.registry)
    if args.quiet_older_than is not None and args.quiet_older_than < 0:
        raise UserError(f"--quiet-older-than must be >= 0 seconds, got {args.quiet_older_than}")
    _log_to_stderr()
    if args.mqtt:
        from ingest.mqtt import MqttError, MqttSettings

        try:
            MqttSettings.from_url(args.mqtt)
        except (MqttError, ValueError) as exc:
            raise UserError(f"--mqtt: {exc}") from None
    owner = AlertOwner(registry, settings, url, name=args.name or "", config_path=args.alerting,
                       quiet_older_than_s=None if args.notify_history else args.quiet_older_than, mqtt_url=args.mqtt)

    async def main(stop: asyncio.Event) -> None:
        print(f"alerting {owner.name}: alert store {redact(url)}; evidence from {settings.events_topic} on "
              f"{settings.url}", flush=True)
        await _announced(owner.run(stop), owner.leading, lambda: f"alerting {owner.name}: leading")
        st = owner.stats
        print(f"alerting {owner.name}: stopped; {st.records} evidence records, {st.rows} rows taken, "
              f"{st.copies} copies dropped, {st.dead_letters} dead letters", flush=True)

    try:
        _until_signalled(main)
    except (KafkaTransportError, StoreError, ConfigError) as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the control room of a cluster: the scores from Kafka, the alerts from the shared
    PostgreSQL store; any number of nodes, none of them holding state that matters."""
    import signal as _signal
    import threading
    import time

    from werkzeug.serving import make_server

    from dashboard.app import create_app, load_wards_geojson
    from dashboard.figures import TileSource
    from ingest.sources import redact
    from ioc.alerting.store import AlertStore, StoreError
    from ioc.alerting.wiring import build_alerting
    from ioc.auth.store import AuthStore
    from ioc.citydata import default_city_dir, load_admin_units, load_extras, load_layers
    from ioc.cli import UserError, _load_registry
    from ioc.cluster_view import ClusterView
    from ioc.run import RunError, _listen
    from processing.alerting.config import ConfigError
    from processing.errors import StateError

    url = _postgres_url(args, "dashboard", "the alert store")
    settings = _kafka(args)
    registry = _load_registry(args.registry)
    path = args.registry or default_city_dir() / "sensors.geojson"
    wards = load_wards_geojson(Path(path).with_name("wards.geojson") if Path(path).with_name("wards.geojson").exists()
                               else default_city_dir() / "wards.geojson")
    _log_to_stderr()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        store = AlertStore(url)
        service, _ = build_alerting(registry, None, config_path=args.alerting, store=store)
    except (StoreError, ConfigError, ValueError) as exc:
        raise UserError(str(exc)) from None
    try:
        tiles = TileSource(args.tiles, args.tiles_attribution) if args.tiles else None
    except ValueError as exc:
        store.close()
        raise UserError(str(exc)) from None
    history = None
    if args.history_dir is not None:
        from ioc.history import HistoryStore

        if not (math.isfinite(args.history_days) and 0 < args.history_days <= 3660):
            store.close()
            raise UserError(f"--history-days must be more than 0 and at most 3660, got {args.history_days:g}")
        if not (math.isfinite(args.history_backfill) and args.history_backfill >= 0):
            store.close()
            raise UserError(f"--history-backfill must be 0 or more hours, got {args.history_backfill:g}")
        try:
            history = HistoryStore(args.history_dir, registry.ids, retention_days=args.history_days)
        except (StateError, ConfigError) as exc:
            store.close()
            raise UserError(str(exc)) from None
    view = ClusterView(registry, settings, service, extras=load_extras(path, registry), window_s=args.window,
                       history=history, backfill_s=args.history_backfill * 3600.0)
    try:
        auth = AuthStore.in_folder(args.data) if args.data else AuthStore(url)   # shared by every node
    except StateError as exc:
        store.close()
        raise UserError(str(exc)) from None
    try:
        first_password = auth.first_admin(time.time())
        city_files = Path(path).parent if (Path(path).parent / "layers").is_dir() else default_city_dir()
        app = create_app(view, auth=auth, wards=wards, refresh_ms=args.refresh_ms, layers=load_layers(city_files),
                         map_style=tiles, admin_units=load_admin_units(city_files))
        try:
            sock = _listen(args.host, args.port)
        except RunError as exc:
            raise UserError(str(exc)) from None
        try:
            server = make_server(args.host, args.port, app.server, threaded=True, fd=sock.fileno())
        finally:
            sock.close()
        view.start()
        stopping = threading.Event()

        def shutdown(*_: object) -> None:
            if not stopping.is_set():
                stopping.set()
                threading.Thread(target=server.shutdown, daemon=True).start()

        for sig in (_signal.SIGTERM, _signal.SIGINT):
            _signal.signal(sig, shutdown)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"dashboard: http://{host}:{server.port}/  (scores from {settings.scores_topic} on {settings.url}, "
              f"alerts from {redact(url)})", flush=True)
        if history is not None:
            print(f"dashboard: history in {history.folder} ({args.history_days:g} days kept; a restart reads on "
                  f"where it stopped, up to {args.history_backfill:g} h back)", flush=True)
        if first_password is not None:
            print(f"First start: sign in as 'admin' with the password {first_password} (shown this once; add "
                  f"users with 'ioc users add NAME --role viewer|operator|duty|admin "
                  f"{'--data ' + str(args.data) if args.data else '--cluster'}')", flush=True)
        server.serve_forever(poll_interval=0.2)
        print("dashboard: stopped", flush=True)
    finally:
        view.close()
        auth.close()
        store.close()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="score the partitions of the readings topic this process gets in a Kafka "
                                      "consumer group, with the core state handed over through PostgreSQL",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, metavar="URL",
                   help="kafka://HOST:9092[,HOST:9092]?group=G[&topic=…&scores=…&events=…] (default topics "
                        "ioc.readings, ioc.scores, ioc.alert-events)")
    p.add_argument("--postgres", metavar="URL", help="postgresql://… for the core state (default $IOC_POSTGRES_URL)")
    p.add_argument("--name", help="this worker's name in logs and records (default HOST-PID)")
    p.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                   help="wall seconds between checkpoints of each partition's core (default 30)")
    p.add_argument("--session-timeout-ms", type=int, default=6000,
                   help="how long the group waits for a silent worker before moving its partitions (default 6000)")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.add_argument("--config", type=Path, help="TOML file with a [core] table of settings")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("alerting", help="turn the workers' alert evidence into alerts and notifications: one "
                                        "active owner, the others stand by (PostgreSQL advisory lock)",
                       description=cmd_alerting.__doc__)
    p.add_argument("--source", required=True, metavar="URL",
                   help="kafka://HOST:9092[,…][?topic=…&events=…] (default topics ioc.readings, ioc.alert-events)")
    p.add_argument("--postgres", metavar="URL", help="postgresql://… for the alert store (default $IOC_POSTGRES_URL)")
    p.add_argument("--name", help="this owner's name in logs and the store (default HOST-PID)")
    p.add_argument("--alerting", type=Path, help="alerting TOML (default config/<city>/alerting.toml)")
    p.add_argument("--mqtt", metavar="URL", help="mqtt://HOST:1883: send the teams' MQTT alert topics "
                                                  "(ioc/alerts/<team>) there too (default: Kafka's ioc.alerts only)")
    p.add_argument("--quiet-older-than", type=float, default=3600.0, metavar="SECONDS",
                   help="evidence older than this (wall clock) is recorded but pages nobody (default 3600)")
    p.add_argument("--notify-history", action="store_true",
                   help="page for evidence of any age (replaying a recorded day through a test cluster)")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.set_defaults(func=cmd_alerting)

    p = sub.add_parser("dashboard", help="serve the control room of a cluster: scores from Kafka, alerts from the "
                                         "shared PostgreSQL store (run any number)", description=cmd_dashboard.__doc__)
    p.add_argument("--source", required=True, metavar="URL",
                   help="kafka://HOST:9092[,…][?scores=…] (default topic ioc.scores)")
    p.add_argument("--postgres", metavar="URL", help="postgresql://… of the alert store (default $IOC_POSTGRES_URL)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050; 0: any free one)")
    p.add_argument("--window", type=float, default=3600.0, metavar="SECONDS",
                   help="how much of the scored stream to read back at start (broker time; default 3600)")
    p.add_argument("--refresh-ms", type=int, default=1000, help="display refresh period (default 1000)")
    p.add_argument("--history-dir", type=Path, metavar="DIR",
                   help="keep every reading read in DIR (Parquet by day), for the time slider, the drill-down "
                        "ranges and incident replay on this node (default: none)")
    p.add_argument("--history-days", type=float, default=30.0, help="days of history kept (default 30)")
    p.add_argument("--history-backfill", type=float, default=24.0, metavar="HOURS",
                   help="after a restart, read the stream on from where the history stopped, up to this far back "
                        "(default 24)")
    p.add_argument("--tiles", metavar="URL", help="raster map tiles ({z}/{x}/{y}) under the layers (default: offline)")
    p.add_argument("--tiles-attribution", default="", metavar="TEXT", help="the tiles' attribution, shown on the map")
    p.add_argument("--data", type=Path, help="a folder of this node's own users and sessions (default: those of "
                                             "the cluster, in PostgreSQL, shared by every dashboard node)")
    p.add_argument("--alerting", type=Path, help="alerting TOML (default config/<city>/alerting.toml)")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.set_defaults(func=cmd_dashboard)
