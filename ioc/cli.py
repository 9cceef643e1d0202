"""The ``ioc`` command line: one entry point, one subcommand per job.

User errors (a bad file, a bad setting) end in one line on stderr and exit
code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from types import ModuleType
from pathlib import Path

from processing.errors import IocError

__all__ = ["main"]


class UserError(IocError):
    """An error the user can fix; printed as one line."""


def _load_core_config(path: Path | None):
    from processing.config import ConfigError, CoreConfig

    if path is None:
        return CoreConfig()
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    try:
        return CoreConfig.from_mapping(data.get("core", data), source=str(path))
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _load_registry(path: Path | None):
    from ioc.citydata import default_city_dir, load_registry
    from processing.registry import RegistryError

    try:
        return load_registry(path or default_city_dir() / "sensors.geojson")
    except RegistryError as exc:
        raise UserError(str(exc)) from None


def cmd_detect(args: argparse.Namespace) -> int:
    from ioc.detect import detect, print_report

    config = _load_core_config(args.config)
    missing = [p for p in args.paths if not p.exists()]
    for p in missing:
        print(f"error: {p}: no such file or directory", file=sys.stderr)
    start = time.perf_counter()
    report = detect([p for p in args.paths if p.exists()], args.out, config)
    print_report(report, time.perf_counter() - start)
    return 1 if (report.errors or missing) else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.to:
        from ioc.transport_cli import simulate_to

        return simulate_to(args)
    if args.out is None:
        raise UserError("ioc simulate: give --out DIR (a labelled corpus) or --to URL (a live feed)")
    from simulators.corpus import write_corpus

    registry = _load_registry(args.registry)
    start = time.perf_counter()
    summary = write_corpus(args.out, registry, days=args.days, seed=args.seed, anomaly_rate=args.anomaly_rate)
    kinds = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    print(f"wrote {summary.rows:,} readings of {summary.sensors} sensors over {summary.days:g} days (seed "
          f"{summary.seed}) and {summary.labels} labelled anomalies ({kinds}) to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ioc.evaluate import evaluate, format_report

    registry = _load_registry(args.registry)
    config = _load_core_config(args.config)
    start = time.perf_counter()
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds: want comma-separated integers, got {args.seeds!r}") from None
    try:
        results = [evaluate(registry, config, days=args.days, learn_days=args.learn_days, seed=seed,
                            anomaly_rate=args.anomaly_rate) for seed in seeds]
    except ValueError as exc:
        raise UserError(f"evaluate: {exc}") from None
    print(format_report(results))
    print(f"\n({sum(r.readings for r in results):,} readings from {len(registry)} sensors, {args.days:g} days "
          f"({args.learn_days:g} clean to learn) per seed, seeds {args.seeds}, "
          f"in {time.perf_counter() - start:.1f} s)")
    return 0


def _bench(name: str) -> ModuleType:
    """``bench.<name>`` of the source checkout: benchmarks are not part of the installed package."""
    import importlib

    from ioc.paths import source_checkout

    root = source_checkout()
    if root is None:
        raise UserError(f"benchmarks run from a source checkout (python -m bench.{name} there); "
                        "this ioc is installed without them")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"bench.{name}")


def cmd_bench(args: argparse.Namespace) -> int:
    core = _bench("core")
    print(core.report(core.run(sensors=args.sensors, ticks=args.ticks, single=args.single)))
    return 0


def cmd_control_room_day(args: argparse.Namespace) -> int:
    from ioc.control_room_day import format_day, run_day
    from processing.registry import RegistryError

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds: want comma-separated integers, got {args.seeds!r}") from None
    if not (args.hours > 0 and args.speed > 0 and args.anomaly_rate >= 0):
        raise UserError("control-room-day: --hours and --speed must be > 0, --anomaly-rate >= 0")
    start = time.perf_counter()
    try:
        reports = [run_day(seed=seed, speed=args.speed, hours=args.hours, preroll_hours=args.preroll_hours,
                           anomaly_rate=args.anomaly_rate, registry_path=args.registry) for seed in seeds]
    except (RegistryError, ValueError) as exc:
        raise UserError(f"control-room-day: {exc}") from None
    print(format_day(reports))
    r = reports[0]
    print(f"\n(ioc run's pipeline at --speed {r.speed:g}: {r.preroll_hours:g} h pre-roll, then {r.hours:g} simulated "
          f"hours a seed; {sum(x.readings for x in reports):,} readings, seeds {args.seeds}, "
          f"in {time.perf_counter() - start:.1f} s)")
    return 0


def cmd_bench_checkpoint(args: argparse.Namespace) -> int:
    if args.sensors < 1 or args.runs < 1:
        raise UserError("bench-checkpoint: --sensors and --runs must be >= 1")
    checkpoint_bench = _bench("checkpoint")
    print(checkpoint_bench.report(checkpoint_bench.run(sensors=args.sensors, runs=args.runs, folder=args.dir)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ioc.run import RunError, RunOptions, serve

    try:
        return serve(RunOptions(host=args.host, port=args.port, speed=args.speed, anomaly_rate=args.anomaly_rate,
                                seed=args.seed, preroll_hours=args.preroll_hours, registry=args.registry,
                                data_dir=args.data_dir, source=args.source,
                                checkpoint_every_s=args.checkpoint_every, cold=args.cold, history_days=args.history_days,
                                tiles=args.tiles, tiles_attribution=args.tiles_attribution,
                                postgres_store=args.postgres_store,
                                loopback_open=not args.no_loopback_open))
    except RunError as exc:
        raise UserError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ioc", description="City IOC: an operations center for a city's control room")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="score timestamp,value CSV files through the anomaly core")
    p.add_argument("paths", nargs="+", type=Path, help="CSV files, or directories (every CSV below them)")
    p.add_argument("--out", type=Path, required=True, help="output directory (same relative paths)")
    p.add_argument("--config", type=Path, help="TOML file with a [core] table of settings")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("simulate", help="write a labelled simulated corpus (--out), or publish a live feed (--to)")
    p.add_argument("--out", type=Path, help="write a labelled corpus to this directory")
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--anomaly-rate", type=float, default=0.5, help="anomalies per sensor per day")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("evaluate", help="simulate the city, score it, report recall and false alarms per anomaly kind")
    p.add_argument("--days", type=float, default=21.0, help="simulated days per seed (default 21)")
    p.add_argument("--learn-days", type=float, default=7.0,
                   help="first days without anomalies, not measured: the core learns the city (default 7)")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated simulator seeds (default 1,2,3)")
    p.add_argument("--anomaly-rate", type=float, default=0.5, help="anomalies per sensor per day")
    p.add_argument("--registry", type=Path)
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("control-room-day", help="simulated day(s) of the embedded control room: alerts per hour "
                                                "per team, share matching an injected anomaly")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated simulator seeds (default 1,2,3)")
    p.add_argument("--hours", type=float, default=24.0, help="simulated live hours per seed (default 24)")
    p.add_argument("--speed", type=float, default=60.0, help="as ioc run --speed: sets the tick (default 60)")
    p.add_argument("--anomaly-rate", type=float, default=0.5, help="anomalies per sensor per day (default 0.5)")
    p.add_argument("--preroll-hours", type=float, help="as ioc run (default: ioc run's)")
    p.add_argument("--registry", type=Path)
    p.set_defaults(func=cmd_control_room_day)

    p = sub.add_parser("bench", help="throughput of the anomaly core beside pandas")
    p.add_argument("--sensors", type=int, default=10_000)
    p.add_argument("--ticks", type=int, default=200)
    p.add_argument("--single", type=int, default=200_000, help="readings of the one-sensor run")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("run", help="run simulators, pipeline and the control-room dashboard in one process")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port to serve on (default 8050)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument("--anomaly-rate", type=float, default=0.5, help="anomalies per sensor per day (default 0.5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--preroll-hours", type=float, default=84.0,
                   help="hours of history simulated quickly at a cold start, so the time-of-day baselines "
                        "are learned (default 84: 3.5 days)")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.add_argument("--data-dir", type=Path,
                   help="data folder; the alert store is <data-dir>/alerts (default: $IOC_DATA_DIR, var/ of "
                        "a source checkout, or ~/.local/share/city-ioc when installed)")
    p.add_argument("--source", metavar="URL",
                   help="read readings from mqtt://HOST:1883[/topic] or kafka://HOST:9092 instead of the simulator")
    p.add_argument("--checkpoint-every", type=float, default=60.0, metavar="SECONDS",
                   help="wall seconds between checkpoints of the core's state in <data-dir>/checkpoint, "
                        "restored at the next start (default 60; 0: no checkpoints)")
    p.add_argument("--cold", action="store_true", help="start cold: ignore the checkpoint (replaced at the next one)")
    p.add_argument("--postgres-store", action="store_true",
                   help="keep the alerts in PostgreSQL ($IOC_POSTGRES_URL) instead of SQLite in the data folder: "
                        "the store a cluster's ioc alerting and ioc dashboard share")
    p.add_argument("--tiles", metavar="URL", help="raster map tiles under the city's layers, e.g. "
                   "'https://tiles.example.vn/{z}/{x}/{y}.png' (default: none, the map works offline)")
    p.add_argument("--tiles-attribution", default="", metavar="TEXT", help="the tiles' attribution, shown on the map")
    p.add_argument("--history-days", type=float, default=30.0, metavar="DAYS",
                   help="days of readings and scores kept in <data-dir>/history for the time slider and "
                        "/api/sensors/ID/history (default 30; 0: none)")
    p.add_argument("--no-loopback-open", action="store_true",
                   help="ask for sign-in or a token on /api/health and /metrics from loopback too "
                        "(by default they answer local monitoring without one)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench-checkpoint", help="size and time of a core checkpoint: encode+write, read+restore")
    p.add_argument("--sensors", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5, help="runs; the median is reported (default 5)")
    p.add_argument("--dir", type=Path, help="folder for the checkpoint file (default: a temporary one)")
    p.set_defaults(func=cmd_bench_checkpoint)
    from ioc.alerting.cli import add_parsers as add_alerting_parsers
    from ioc.auth.cli import add_parsers as add_auth_parsers
    from ioc.brokers import add_parser as add_brokers_parser
    from ioc.transport_cli import add_parsers as add_transport_parsers
    from ioc.transport_cli import add_simulate_to_arguments
    from ioc.roles_cli import add_parsers as add_role_parsers

    add_simulate_to_arguments(sub.choices["simulate"])
    add_brokers_parser(sub)
    add_alerting_parsers(sub)
    add_auth_parsers(sub)
    add_transport_parsers(sub)
    add_role_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except IocError as exc:           # UserError, and whatever a command let through: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
