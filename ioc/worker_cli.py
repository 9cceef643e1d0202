"""``ioc worker``: the command line of a scoring worker (:mod:`ioc.worker`).

    IOC_POSTGRES_URL=postgresql://ioc:…@db:5432/ioc \\
        ioc worker --source 'kafka://k1:9092,k2:9092?group=ioc-workers' [--name w1] [--checkpoint-every 30]

The PostgreSQL address carries a password, so it is read from ``$IOC_POSTGRES_URL`` (or
``--postgres``, visible to other users in ``ps``); it is only ever printed without it.
SIGTERM or Ctrl-C stops the worker cleanly: it checkpoints every partition it owns and
leaves the group, so the others take its partitions over at once and replay nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

__all__ = ["add_parsers"]


def cmd_worker(args: argparse.Namespace) -> int:
    from ingest.kafka.settings import KafkaSettings, KafkaTransportError
    from ioc.cli import UserError, _load_core_config, _load_registry
    from ioc.core_state import CoreStateStore
    from ingest.sources import redact
    from ioc.pg import PgError
    from ioc.worker import Worker, WorkerConfig

    url = args.postgres or os.environ.get("IOC_POSTGRES_URL", "")
    if not url:
        raise UserError("ioc worker needs PostgreSQL for the core state: set IOC_POSTGRES_URL=postgresql://… "
                        "(ioc brokers start runs one on loopback)")
    try:
        settings = KafkaSettings.from_url(args.source)
    except KafkaTransportError as exc:
        raise UserError(str(exc)) from None
    registry = _load_registry(args.registry)
    core_config = _load_core_config(args.config)
    try:
        config = WorkerConfig(name=args.name or "", checkpoint_every_s=args.checkpoint_every,
                              session_timeout_ms=args.session_timeout_ms,
                              heartbeat_ms=max(100, args.session_timeout_ms // 6))
    except ValueError as exc:
        raise UserError(f"ioc worker: {exc}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        state = CoreStateStore(url, settings.topic)
    except PgError as exc:
        raise UserError(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = Worker(registry, settings, state, core_config=core_config, config=config)
        task = asyncio.ensure_future(worker.run(stop))
        ready = asyncio.ensure_future(worker.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            print(f"worker {worker.name}: scoring {settings.url} ({len(registry)} sensors, "
                  f"{worker.map.partitions if worker.map else '?'} partitions); core state in {redact(url)}",
                  flush=True)
        else:
            ready.cancel()
        await task
        st = worker.stats
        print(f"worker {worker.name}: stopped; {st.readings} readings scored, {st.checkpoints} checkpoints "
              f"({st.checkpoint_bytes / 1e6:.1f} MB), {st.dead_letters} dead letters", flush=True)

    try:
        asyncio.run(main())
    except KafkaTransportError as exc:
        raise UserError(str(exc)) from None
    finally:
        state.close()
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
