"""Scoring workers against the real Kafka and PostgreSQL: scaling with 1, 2, 3 workers, and failover times.

Run ``python3 -m bench.cluster [--readings 300000] [--kills 5]``.  It starts its own Kafka and
PostgreSQL (:func:`ioc.brokers.scratch_brokers`) and ``ioc worker`` processes, and reports:

1. **Scaling** -- ``N`` readings of the simulated city (compact JSON, keyed by sensor) are in
   a fresh 6-partition topic before the workers start; then 1, 2 or 3 workers (a new group
   each time) score them all.  The figure is readings per second between the first and the
   last score record the workers produced (broker timestamps), so it measures fetch + decode +
   score + publish, not the producer or the reader; and from the start of the processes
   (Python start-up and joining the group included).
2. **Failover** -- 3 workers score a stream published at a steady rate; again and again the
   worker holding the most partitions is killed (SIGKILL) and started again.  The time from
   the kill until each of its partitions is scored again by another worker, p50 and p99 over
   the kills; then the same with SIGTERM (a clean hand-over: the worker checkpoints and leaves
   the group, nobody waits for a session timeout).
3. **Alert-owner failover** -- 2 workers score the same steady stream and 2 ``ioc alerting``
   processes share the PostgreSQL alert store; again and again the leading owner is killed
   (SIGKILL, then SIGTERM) and started again as the standby.  The time from the kill until the
   standby leads -- holds the advisory lock, has restored the open alerts and seeked to the
   store's horizon -- p50 and p99 over the kills.
4. **Model** -- the state bytes per sensor of this core (measured) and what follows for 100,000
   sensors at one reading per 10 s on N machines (memory per worker, checkpoint bandwidth).

A benchmark reports figures; it does not pass or fail.  On the 2-core development machines
the broker, PostgreSQL, the publisher, the reader and every worker share two cores, so more
workers cannot give much more throughput here; the figure says what one worker costs.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from ingest.formats import encode as encode_readings
from ingest.kafka import KafkaSettings, KafkaSink
from ingest.kafka.scores_reader import ScoresReader
from processing.checkpoint import encode as encode_checkpoint
from processing.config import CoreConfig
from processing.core import AnomalyCore
from processing.registry import Registry

T0 = 1772412000.0
PARTITIONS = 6
RATE = 1500.0          # readings per second of the failover stream: steady, well below one worker's capacity


def _registry() -> Registry:
    from ioc.citydata import default_city_dir, load_registry

    return load_registry(default_city_dir() / "sensors.geojson")


async def _topics(bootstrap: str) -> dict[str, str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    uid = uuid.uuid4().hex[:8]
    names = {"topic": f"r{uid}", "scores": f"s{uid}", "events": f"e{uid}", "deadletter": f"d{uid}"}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, 1 if k == "deadletter" else PARTITIONS, 1) for k, n in names.items()])
    finally:
        await admin.close()
    await asyncio.sleep(1.0)
    return names


def _source(brokers, names: dict[str, str], group: str) -> str:
    return f"{brokers.kafka_url}?group={group}&" + "&".join(f"{k}={v}" for k, v in names.items())


def _start_worker(brokers, source: str, name: str, folder: Path, every: float = 2.0) -> subprocess.Popen:
    env = {**os.environ, "IOC_POSTGRES_URL": brokers.postgres_url}
    log = open(folder / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "ioc.cli", "worker", "--source", source, "--name", name,
                             "--checkpoint-every", str(every)], env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


async def _publish(settings: KafkaSettings, registry: Registry, batch, *, chunk: int = 5000,
                   rate: float | None = None, stop: asyncio.Event | None = None) -> None:
    async with KafkaSink(settings) as sink:
        start = time.monotonic()
        for i in range(0, len(batch), chunk):
            if stop is not None and stop.is_set():
                return
            part = batch.take(np.arange(i, min(i + chunk, len(batch))))
            await sink.send_readings(encode_readings(part, registry, "compact"), settings.topic)
            await sink.flush()
            if rate:
                ahead = (i + chunk) / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)


async def scaling(brokers, registry: Registry, batch, workers: int, folder: Path) -> tuple[float, float]:
    names = await _topics(brokers.kafka_bootstrap)
    settings = KafkaSettings.from_url(_source(brokers, names, "pub"))
    await _publish(settings, registry, batch)
    source = _source(brokers, names, f"scale{workers}")
    seen = 0
    first = last = float("nan")
    async with ScoresReader(settings, names["scores"]) as reader:
        started = time.time()
        procs = [_start_worker(brokers, source, f"s{workers}-{i}", folder, every=30.0) for i in range(workers)]
        try:
            stop = asyncio.Event()
            async for at, rec in reader.records(stop):    # at: when the worker produced the record
                first = min(first, at) if seen else at
                last = max(last, at) if seen else at
                seen += len(rec)
                if seen >= len(batch):
                    break
                dead = [p for p in procs if p.poll() is not None]
                if dead or time.time() - started > 600:
                    raise RuntimeError(f"only {seen} of {len(batch)} scored; a worker exited (see its log)"
                                       if dead else f"only {seen} of {len(batch)} scored in 600 s")
        finally:
            _stop(procs)
    return seen / max(last - first, 1e-9), seen / (last - started)


async def failover(brokers, registry: Registry, batch, kills: int, how: signal.Signals,
                   folder: Path) -> list[float]:
    names = await _topics(brokers.kafka_bootstrap)
    settings = KafkaSettings.from_url(_source(brokers, names, "pub"))
    source = _source(brokers, names, f"fail{how.name}")
    procs = {f"f{i}": _start_worker(brokers, source, f"f{i}", folder) for i in range(3)}
    stop = asyncio.Event()
    last_by: dict[int, tuple[float, str]] = {}      # partition -> (time, worker) of its newest record
    waiting: dict[int, float] = {}                  # partition of the victim -> when it was killed
    times: list[float] = []
    resumed = asyncio.Event()

    async def read() -> None:
        async with ScoresReader(settings, names["scores"], from_start=False) as reader:
            async for _at, rec in reader.records(stop):
                now = time.time()
                last_by[rec.partition] = (now, rec.worker)
                if rec.partition in waiting and rec.worker != victim_name[0]:
                    times.append(now - waiting.pop(rec.partition))
                    if not waiting:
                        resumed.set()

    victim_name = [""]
    publisher = asyncio.ensure_future(_publish(settings, registry, batch, chunk=500, rate=RATE, stop=stop))
    reader = asyncio.ensure_future(read())
    per_kill: list[float] = []
    try:
        await asyncio.sleep(15)                      # all three in the group and scoring
        for _ in range(kills):
            recent = {p: w for p, (t, w) in last_by.items() if time.time() - t < 3}
            counts: dict[str, int] = {}
            for w in recent.values():
                counts[w] = counts.get(w, 0) + 1
            victim = max(counts, key=counts.get)
            victim_name[0] = victim
            resumed.clear()
            times.clear()
            killed_at = time.time()
            waiting.update({p: killed_at for p, w in recent.items() if w == victim})
            procs[victim].send_signal(how)
            procs[victim].wait(30)
            await asyncio.wait_for(resumed.wait(), 60)
            per_kill.append(max(times))
            procs[victim] = _start_worker(brokers, source, victim, folder)
            await asyncio.sleep(12)                  # back in the group, partitions settled
    finally:
        stop.set()
        publisher.cancel()
        reader.cancel()
        _stop(list(procs.values()))
    return per_kill


def _start_owner(brokers, source: str, name: str, folder: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "IOC_POSTGRES_URL": brokers.postgres_url}
    log = folder / f"{name}.{uuid.uuid4().hex[:6]}.log"
    return subprocess.Popen([sys.executable, "-m", "ioc.cli", "alerting", "--source", source, "--name", name],
                            env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT), log


def _wait_text(log: Path, text: bytes, timeout: float) -> float:
    """Poll ``log`` every 10 ms until it holds ``text``; the wall time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_bytes():
            return time.time()
        time.sleep(0.01)
    raise TimeoutError(f"{log.name}: no {text!r} after {timeout:.0f} s")


async def owner_failover(brokers, registry: Registry, batch, kills: int, how: signal.Signals,
                         folder: Path) -> list[float]:
    names = await _topics(brokers.kafka_bootstrap)
    settings = KafkaSettings.from_url(_source(brokers, names, "pub"))
    source = _source(brokers, names, f"own{how.name}")
    workers = [_start_worker(brokers, source, f"o{i}", folder) for i in range(2)]
    stop = asyncio.Event()
    publisher = asyncio.ensure_future(_publish(settings, registry, batch, chunk=500, rate=RATE, stop=stop))
    owners: dict[str, tuple[subprocess.Popen, Path]] = {}
    per_kill: list[float] = []
    try:
        owners["A"] = _start_owner(brokers, source, "A", folder)
        await asyncio.to_thread(_wait_text, owners["A"][1], b": leading", 60)
        owners["B"] = _start_owner(brokers, source, "B", folder)
        await asyncio.to_thread(_wait_text, owners["B"][1], b"standing by", 60)
        await asyncio.sleep(10)                      # workers in the group, evidence flowing
        leader, standby = "A", "B"
        for _ in range(kills):
            proc, _log = owners[leader]
            killed_at = time.time()
            proc.send_signal(how)
            seen = asyncio.ensure_future(asyncio.to_thread(_wait_text, owners[standby][1], b": leading", 60))
            await asyncio.to_thread(proc.wait, 30)
            per_kill.append(await seen - killed_at)
            owners[leader] = _start_owner(brokers, source, leader, folder)
            await asyncio.to_thread(_wait_text, owners[leader][1], b"standing by", 60)
            await asyncio.sleep(3)                   # the new leader reads on for a while
            leader, standby = standby, leader
    finally:
        stop.set()
        publisher.cancel()
        _stop([p for p, _ in owners.values()] + workers)
    return per_kill


def model(registry: Registry) -> dict[str, float]:
    config = CoreConfig()
    core = AnomalyCore(Registry.synthetic(1000, "pm25", 10.0), config)
    per_sensor = core.state_bytes() / 1000
    ckpt = len(encode_checkpoint(core.state_arrays(), {}, core.registry, config)) / 1000
    return {"state_bytes_per_sensor": per_sensor, "checkpoint_bytes_per_sensor": ckpt}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def main_async(args: argparse.Namespace) -> None:
    from ioc.brokers import scratch_brokers
    from simulators.city import CitySimulator

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    registry = _registry()
    per_hour = len(CitySimulator(registry, seed=5, anomaly_rate=2.0).generate(T0, T0 + 3600)[0])
    batch, _ = CitySimulator(registry, seed=5, anomaly_rate=2.0).generate(T0, T0 + 3600 * (args.readings / per_hour + 1))
    batch = batch.take(np.arange(min(len(batch), args.readings)))
    print(f"machine: {os.cpu_count()} cores; {len(registry)} sensors, {len(batch):,} readings, "
          f"{PARTITIONS} partitions", flush=True)
    with tempfile.TemporaryDirectory(prefix="ioc-bench-cluster-") as tmp, scratch_brokers() as brokers:
        folder = Path(tmp)
        if not args.skip_scaling:
            for n in (1, 2, 3):
                steady, overall = await scaling(brokers, registry, batch, n, folder)
                print(f"scaling: {n} worker(s): {steady:,.0f} readings/s first-to-last score "
                      f"({overall:,.0f}/s from process start)", flush=True)
        if args.kills:
            stream = CitySimulator(registry, seed=6, anomaly_rate=2.0).generate(T0, T0 + 3600 * (
                RATE * (40 + 20 * args.kills) / per_hour))[0]
            for how in () if args.skip_workers else (signal.SIGKILL, signal.SIGTERM):
                per = await failover(brokers, registry, stream, args.kills, how, folder)
                print(f"failover ({how.name}): partitions scored again after {statistics.median(per):.2f} s p50, "
                      f"{_pct(per, 99):.2f} s p99 over {len(per)} kills ({', '.join(f'{x:.1f}' for x in per)})",
                      flush=True)
            for how in (signal.SIGKILL, signal.SIGTERM):
                per = await owner_failover(brokers, registry, stream, args.kills, how, folder)
                print(f"alert-owner failover ({how.name}): the standby leads after {statistics.median(per):.2f} s "
                      f"p50, {_pct(per, 99):.2f} s p99 over {len(per)} kills "
                      f"({', '.join(f'{x:.2f}' for x in per)})", flush=True)
    m = model(registry)
    sensors, interval = 100_000, 10.0
    print(f"model: core state {m['state_bytes_per_sensor']:,.0f} bytes/sensor, checkpoint "
          f"{m['checkpoint_bytes_per_sensor']:,.0f} bytes/sensor")
    for machines in (1, 2, 4, 8):
        per = sensors / machines
        mem = per * m["state_bytes_per_sensor"] / 2 ** 30
        bw = per * m["checkpoint_bytes_per_sensor"] / 30.0 / 1e6
        print(f"model: 100k sensors at 1/{interval:.0f} s = {sensors / interval:,.0f} readings/s on {machines} "
              f"machine(s): {mem:.2f} GiB of core state per worker, checkpoints {bw:.1f} MB/s per worker "
              f"(every 30 s), {sensors / interval / machines:,.0f} readings/s per worker")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-workers", action="store_true", help="only the alert-owner failover of the kills")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
