"""Broker commands: ``ioc simulate --to``, ``ioc replay`` and ``ioc bridge``.

* ``ioc simulate --to mqtt://HOST:1883 | kafka://HOST:9092`` publishes the simulated
  city live (``--rate`` readings/s, ``--duration`` s, ``--anomaly-rate``, payload
  ``--format compact|senml|ngsi-ld|ngsi-ld-kv``, ``--pack`` readings per message),
  optionally writing the ground-truth anomaly labels (``--labels FILE``);
* ``ioc replay FILE... --to … --speed X`` replays recorded ``timestamp,value`` CSV
  files (``<sensor_id>.csv``, as ``ioc simulate --out`` writes them) at X times
  their recorded pace (0: as fast as the broker takes them);
* ``ioc bridge mqtt://… kafka://…`` forwards edge MQTT into the Kafka backbone,
  keyed by sensor id, with MQTT acknowledgements sent only after Kafka stored the
  records (at-least-once end to end); undecodable input goes to ``ioc.deadletter``.

MQTT messages go to ``<prefix>/<district>/<domain>/<sensor_id>`` where ``<prefix>`` is
the address's topic (``mqtt://host:1883/city``, the default); Kafka records to
``ioc.readings`` (or ``?topic=``) keyed by sensor id.

The ``ioc`` command registers these with :func:`add_parsers` and, for
``ioc simulate``, :func:`add_simulate_to_arguments` + :func:`simulate_to`.
Errors a user can cause end as one line naming the address, file or option.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Sequence, TextIO

import numpy as np

__all__ = ["add_parsers", "add_simulate_to_arguments", "bridge", "replay", "simulate_to"]

#: Wall seconds between two simulator advances while publishing live.
TICK_S = 0.1
#: Readings per publish step when replaying as fast as possible.
FAST_CHUNK = 20_000


def _quiet_libraries() -> None:
    """Client libraries log every retry; a command reports problems itself, in one line."""
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _user_error(message: str) -> Exception:
    from ioc.cli import UserError

    return UserError(message)


def _registry(path: Path | None):
    from ioc.citydata import default_city_dir, load_registry
    from processing.registry import RegistryError

    try:
        return load_registry(path or default_city_dir() / "sensors.geojson")
    except RegistryError as exc:
        raise _user_error(str(exc)) from None


# ------------------------------------------------------------------------ publishers

class _Out:
    """Messages to a broker: MQTT topics or Kafka records keyed by sensor id."""

    def __init__(self, url: str) -> None:
        from ingest.sources import SourceError, scheme_of

        try:
            self.kind = scheme_of(url)
        except SourceError as exc:
            raise _user_error(str(exc)) from None
        self.url = url
        self.prefix = "city"
        self._pub: Any = None
        self.messages = 0
        self.readings = 0

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator["_Out"]:
        if self.kind == "mqtt":
            from ingest.mqtt import MqttError, MqttPublisher, MqttSettings

            try:
                settings = MqttSettings.from_url(self.url, group=None)
            except MqttError as exc:
                raise _user_error(str(exc)) from None
            topic = settings.topic[:-2] if settings.topic.endswith("/#") else settings.topic
            if "+" in topic or "#" in topic:
                raise _user_error(f"{self.url}: give a topic prefix to publish under (e.g. /city), not a filter")
            self.prefix = topic
            self.url = settings.url
            try:
                async with MqttPublisher(settings) as pub:
                    self._pub = pub
                    yield self
            except MqttError as exc:
                raise _user_error(str(exc)) from None
        else:
            from ingest.kafka import KafkaTransportError, KafkaSettings, KafkaSink

            try:
                settings = KafkaSettings.from_url(self.url)
                async with KafkaSink(settings) as sink:
                    self._pub = sink
                    self.url = f"kafka://{settings.bootstrap} topic {settings.topic}"
                    yield self
            except KafkaTransportError as exc:
                raise _user_error(str(exc)) from None

    async def send(self, messages: Sequence[Any], readings: int) -> None:
        if self.kind == "mqtt":
            await self._pub.publish_many((m.topic, m.payload) for m in messages)
        else:
            await self._pub.send_readings(messages)
        self.messages += len(messages)
        self.readings += readings

    async def flush(self) -> None:
        await self._pub.flush()


def _stop_event() -> asyncio.Event:
    """Set on SIGINT/SIGTERM, so a publisher stops cleanly (flushing what it sent)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# ------------------------------------------------------------------ ioc simulate --to

def add_simulate_to_arguments(parser: argparse.ArgumentParser) -> None:
    """The live-publishing options of ``ioc simulate`` (``--to`` makes ``--out`` unnecessary)."""
    from ingest.formats import ENCODINGS

    g = parser.add_argument_group("publishing live to a broker (--to)")
    g.add_argument("--to", metavar="URL", help="publish live to mqtt://HOST:1883[/prefix] or kafka://HOST:9092 "
                                               "instead of writing a corpus")
    g.add_argument("--rate", type=float, default=None,
                   help="readings per second over the whole city (default: real time, each sensor at its interval)")
    g.add_argument("--duration", type=float, default=None, help="seconds to publish (default: until Ctrl-C)")
    g.add_argument("--format", dest="payload_format", choices=ENCODINGS, default="compact",
                   help="payload format (default compact)")
    g.add_argument("--pack", type=int, default=1,
                   help="readings of one sensor per message, compact arrays or SenML packs (default 1)")
    g.add_argument("--labels", type=Path, default=None, help="append the injected anomalies to this CSV")
    g.add_argument("--warmup-hours", type=float, default=1.0,
                   help="simulated hours before the first anomaly (default 1)")


def simulate_to(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``ioc simulate --to URL``: publish the simulated city live until ``--duration`` or Ctrl-C."""
    _quiet_libraries()
    if not getattr(args, "to", None):
        raise _user_error("ioc simulate: give --out DIR (a corpus) or --to URL (live)")
    registry = _registry(getattr(args, "registry", None))
    if args.pack < 1:
        raise _user_error(f"--pack must be >= 1, got {args.pack}")
    natural = float(np.sum(1.0 / registry.interval_s))              # readings/s at real time
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise _user_error(f"--rate must be a number > 0, got {args.rate}")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise _user_error(f"--duration must be a number > 0, got {args.duration}")
    speed = 1.0 if args.rate is None else args.rate / natural
    return asyncio.run(_simulate_to(args, registry, speed, out))


async def _simulate_to(args: argparse.Namespace, registry: Any, speed: float, out: TextIO) -> int:
    from ingest.formats import encode
    from ingest.topics import topics
    from ioc.citydata import city_of
    from simulators.city import CitySimulator

    try:
        sim = CitySimulator(registry, seed=args.seed, anomaly_rate=args.anomaly_rate,
                            utc_offset_s=city_of(getattr(args, "registry", None)).utc_offset_s)
    except ValueError as exc:
        raise _user_error(str(exc)) from None
    target = _Out(args.to)
    stop = _stop_event()
    labels_out = _LabelWriter(args.labels) if args.labels else None
    n_labels = 0
    async with target.open():
        names = topics(registry, target.prefix)
        wall0 = time.time()
        stream = sim.stream(wall0, warmup_s=max(0.0, args.warmup_hours) * 3600.0)
        print(f"publishing {len(registry)} sensors to {target.url} at ×{speed:.4g} real time "
              f"(≈{speed * float(np.sum(1.0 / registry.interval_s)):,.1f} readings/s), format {args.payload_format}"
              + (f", {args.duration:g} s" if args.duration else ", Ctrl-C to stop"), file=out, flush=True)
        while True:
            now = time.time()
            elapsed = now - wall0
            if args.duration is not None:
                elapsed = min(elapsed, args.duration)
            batch, labels = stream.advance(wall0 + elapsed * speed)
            if len(batch):
                await target.send(encode(batch, registry, args.payload_format, pack=args.pack, topic_names=names),
                                  len(batch))
            if labels:
                n_labels += len(labels)
                if labels_out is not None:
                    labels_out.write(labels)
            if stop.is_set() or (args.duration is not None and elapsed >= args.duration):
                break
            await _sleep_or_stop(stop, TICK_S - (time.time() - now))
        await target.flush()
    took = time.time() - wall0
    print(f"published {target.readings:,} readings in {target.messages:,} messages to {target.url} in {took:.1f} s "
          f"({target.readings / max(took, 1e-9):,.0f} readings/s); {n_labels} anomalies injected"
          + (f" (labels in {args.labels})" if args.labels else ""), file=out, flush=True)
    return 0


class _LabelWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists() or path.stat().st_size == 0
            with open(path, "a", newline="") as fh:
                if new:
                    csv.writer(fh).writerow(["sensor_id", "kind", "start", "end"])
        except OSError as exc:
            raise _user_error(f"{path}: cannot write labels: {exc.strerror or exc}") from None

    def write(self, labels: Sequence[Any]) -> None:
        with open(self.path, "a", newline="") as fh:
            w = csv.writer(fh)
            for lab in labels:
                w.writerow([lab.sensor_id, lab.kind, repr(lab.start), repr(lab.end)])


# --------------------------------------------------------------------------- ioc replay

def replay(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``ioc replay FILE... --to URL --speed X``: recorded CSV series onto a broker."""
    _quiet_libraries()
    from ingest.series_csv import SeriesFileError, read_series_csv
    from ioc.detect import collect_inputs

    if not (math.isfinite(args.speed) and args.speed >= 0):
        raise _user_error(f"--speed must be >= 0 (0: as fast as possible), got {args.speed}")
    if args.pack < 1:
        raise _user_error(f"--pack must be >= 1, got {args.pack}")
    registry = _registry(args.registry)
    series: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    problems = 0
    for p in args.paths:
        if not p.exists():
            print(f"error: {p}: no such file or directory", file=sys.stderr)
            problems += 1
    for path, _rel in collect_inputs([p for p in args.paths if p.exists()]):
        i = registry.index_of(path.stem)
        if i < 0:
            print(f"error: {path}: no sensor {path.stem!r} in the registry (files are named <sensor_id>.csv)",
                  file=sys.stderr)
            problems += 1
            continue
        try:
            series[i] = read_series_csv(path)
        except SeriesFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            problems += 1
    if not series:
        raise _user_error("nothing to replay: no readable <sensor_id>.csv among the paths given")
    code = asyncio.run(_replay(args, registry, series, out))
    return 1 if problems else code


async def _replay(args: argparse.Namespace, registry: Any, series: dict, out: TextIO) -> int:
    from ingest.formats import encode
    from ingest.topics import topics
    from simulators.replay import Replayer

    target = _Out(args.to)
    stop = _stop_event()
    async with target.open():
        names = topics(registry, target.prefix)
        start = time.time()
        if args.speed == 0:                       # as fast as possible, in time order
            from processing.batch import ReadingBatch

            whole = ReadingBatch.concat(ReadingBatch.from_arrays(np.full(ts.size, i), ts, v)
                                        for i, (ts, v) in series.items()).sorted_by_time()
            print(f"replaying {len(whole):,} readings of {len(series)} sensors to {target.url} as fast as possible",
                  file=out, flush=True)
            for k in range(0, len(whole), FAST_CHUNK):
                if stop.is_set():
                    break
                batch = whole.take(slice(k, k + FAST_CHUNK))
                await target.send(encode(batch, registry, args.payload_format, pack=args.pack, topic_names=names),
                                  len(batch))
        else:
            player = Replayer(series, args.speed, start_wall=start, retime=args.retime)
            print(f"replaying {len(player):,} readings of {len(series)} sensors to {target.url} at ×{args.speed:g}",
                  file=out, flush=True)
            while not player.done and not stop.is_set():
                batch = player.due(time.time())
                if len(batch):
                    await target.send(encode(batch, registry, args.payload_format, pack=args.pack,
                                             topic_names=names), len(batch))
                nxt = player.next_due_wall()
                if nxt is not None:
                    await _sleep_or_stop(stop, min(0.2, nxt - time.time()))
        await target.flush()
    took = time.time() - start
    print(f"replayed {target.readings:,} readings in {target.messages:,} messages to {target.url} in {took:.1f} s",
          file=out, flush=True)
    return 0


# --------------------------------------------------------------------------- ioc bridge

def bridge(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``ioc bridge mqtt://… kafka://…``: forward edge MQTT to Kafka keyed by sensor id."""
    _quiet_libraries()
    from ingest.sources import SourceError, scheme_of

    try:
        if scheme_of(args.source) != "mqtt" or scheme_of(args.sink) != "kafka":
            raise _user_error(f"ioc bridge forwards MQTT to Kafka: want mqtt://… kafka://…, "
                              f"got {args.source} {args.sink}")
    except SourceError as exc:
        raise _user_error(str(exc)) from None
    registry = _registry(args.registry)
    return asyncio.run(_bridge(args, registry, out))


async def _bridge(args: argparse.Namespace, registry: Any, out: TextIO) -> int:
    from ingest.formats import encode
    from ingest.kafka import KafkaTransportError, KafkaSettings, KafkaSink
    from ingest.mqtt import MqttError, MqttSettings, MqttSource
    from ingest.formats import decode

    try:
        msettings = MqttSettings.from_url(args.source)
        ksettings = KafkaSettings.from_url(args.sink)
    except (MqttError, KafkaTransportError) as exc:
        raise _user_error(str(exc)) from None
    ids = registry.ids
    stop = _stop_event()
    forwarded = readings = dead_total = 0
    started = time.time()
    try:
        async with MqttSource(msettings, client_id_role="bridge") as src, KafkaSink(ksettings) as sink:
            print(f"bridging {msettings.url} ({msettings.subscription}) -> kafka://{ksettings.bootstrap} "
                  f"topic {ksettings.topic}; Ctrl-C to stop", file=out, flush=True)
            async for delivery in src.deliveries(idle_s=0.5):
                if delivery.messages:
                    dead: list[Any] = []
                    for topic, payload in delivery.messages:
                        d = decode(payload, source=topic, registry=registry, received=delivery.received,
                                   fmt=src.formats)
                        dead.extend(d.dead)
                        if len(d.batch) == 0:
                            continue
                        sensors = np.unique(d.batch.sensor)
                        if not d.dead and sensors.size == 1:      # forward the original bytes
                            await sink.send(ksettings.topic, payload, ids[int(sensors[0])].encode())
                        else:                                      # split by sensor: one record per sensor
                            for m in encode(d.batch, registry, "compact", pack=len(d.batch)):
                                await sink.send(ksettings.topic, m.payload, m.key.encode())
                        readings += len(d.batch)
                        forwarded += 1
                    if dead:
                        await sink.send_dead(dead)
                        dead_total += len(dead)
                    await sink.flush()                 # stored in Kafka ...
                    await src.commit(delivery)         # ... before the broker may forget it
                if stop.is_set():
                    break
    except (MqttError, KafkaTransportError) as exc:
        raise _user_error(str(exc)) from None
    print(f"bridged {forwarded:,} messages ({readings:,} readings) in {time.time() - started:.1f} s; "
          f"{dead_total:,} dead letters to {ksettings.deadletter_topic}", file=out, flush=True)
    return 0


# ------------------------------------------------------------------------ registration

def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``ioc replay`` and ``ioc bridge`` on the ``ioc`` parser."""
    from ingest.formats import ENCODINGS

    p = subparsers.add_parser("replay", help="replay recorded timestamp,value CSV files onto MQTT or Kafka",
                              description="Replay <sensor_id>.csv files (or directories of them) onto a broker.")
    p.add_argument("paths", nargs="+", type=Path, help="CSV files named <sensor_id>.csv, or directories")
    p.add_argument("--to", required=True, metavar="URL", help="mqtt://HOST:1883[/prefix] or kafka://HOST:9092")
    p.add_argument("--speed", type=float, default=1.0,
                   help="recorded seconds per wall second (default 1; 0: as fast as possible)")
    p.add_argument("--retime", action="store_true",
                   help="stamp readings with the wall time they are sent, not the recorded time")
    p.add_argument("--format", dest="payload_format", choices=ENCODINGS, default="compact")
    p.add_argument("--pack", type=int, default=1, help="readings of one sensor per message (default 1)")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.set_defaults(func=replay)

    p = subparsers.add_parser("bridge", help="forward edge MQTT readings into Kafka, keyed by sensor id",
                              description="Subscribe to MQTT (persistent session, shared subscription) and "
                                          "produce every reading to Kafka keyed by sensor id; MQTT messages "
                                          "are acknowledged only once Kafka stored them.")
    p.add_argument("source", metavar="MQTT_URL", help="mqtt://[user:pass@]HOST:1883[/topic-filter][?group=…]")
    p.add_argument("sink", metavar="KAFKA_URL", help="kafka://HOST:9092[?topic=ioc.readings]")
    p.add_argument("--registry", type=Path, help="sensors GeoJSON (default: the configured city)")
    p.set_defaults(func=bridge)
