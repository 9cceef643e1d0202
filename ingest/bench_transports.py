"""Transport benchmarks against the real brokers, each beside the broker's own C client.

Run ``python3 -m ingest.bench_transports [--quick]``.  It starts its own Mosquitto and
Kafka (:class:`ioc.brokers.BrokerSet`, free loopback ports, a temporary folder, the
shared Kafka jar cache) and stops them at the end.  A benchmark reports figures; it
does not pass or fail.

1. **MQTT ingest, one reading per message, QoS 1** -- ``N`` compact messages are queued
   by the broker for a persistent session (the subscriber subscribed, then went away),
   then drained: ``mosquitto_sub -c -q 1 -C N`` (output to /dev/null) and, on an
   identical backlog, the IOC's ingest path -- :class:`~ingest.mqtt.MqttSource`
   (manual acknowledgement after scoring), :class:`~ingest.sources.Feed` (decode,
   de-duplication) and :class:`~processing.core.AnomalyCore` scoring every reading.
   Each is timed from its start (connection included) to its last message; the
   figure is messages (= readings) per second and the ratio IOC / mosquitto_sub.
   Draining a backlog measures the consumers, not the publisher.
2. **MQTT ingest, SenML packs of 100 readings** -- the same, readings per second.
3. **Kafka ingest** -- ``N`` keyed compact records produced by ``kcat -P``; then
   ``kcat -C -e`` (to /dev/null) and the IOC's :class:`~ingest.kafka.KafkaSource`
   (a new consumer group, offsets committed after each scored batch) each read them
   all; records (= readings) per second and the ratio.
4. **End-to-end latency at 10,000 readings/s** over MQTT: a paced writer feeds
   ``mosquitto_pub -l`` (QoS 1) one-reading messages stamped with the wall time of
   sending, for 1,000 sensors at 10 Hz; the IOC path scores them and publishes an
   alert message (QoS 1) to ``ioc/alerts/<sensor>`` on every rise of a sensor's alert
   flag (spikes are injected after a warm-up); a third client receives the alerts.
   Latency publish -> scored (every reading) and publish -> alert received, p50/p99.

Figures depend on the machine: on the shared 2-core development machines broker,
publisher and consumer compete for the cores, so every comparison is made in the same
run.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ingest.encoders import encode
from ingest.kafka import KafkaSettings, KafkaSource
from ingest.mqtt import MqttPublisher, MqttSettings, MqttSource
from ingest.sources import Feed
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.registry import Registry

REPO = Path(__file__).resolve().parents[1]
T0 = 1772412000.0


@dataclass(frozen=True)
class Rate:
    what: str
    ioc: float          # readings/s
    reference: float    # the C client's readings/s (0: not measured)
    reference_name: str

    def line(self) -> str:
        ratio = f"{self.ioc / self.reference:5.2f}" if self.reference else "   - "
        ref = f"{self.reference:12,.0f}" if self.reference else f"{'-':>12}"
        return f"{self.what:<44} {self.ioc:12,.0f} {ref}   {ratio}  ({self.reference_name})"


@contextlib.contextmanager
def brokers() -> Iterator[tuple[int, str]]:
    from ioc.brokers import BrokerSet, free_port

    libs = REPO / "var" / "cache" / "kafka-libs"
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as tmp:
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        mqtt_port, kafka_port, controller = sorted(ports)
        bs = BrokerSet(Path(tmp), mqtt_port=mqtt_port, kafka_port=kafka_port, kafka_controller_port=controller,
                       kafka_libs=libs, say=lambda m: print(f"  [{m}]", flush=True))
        print("starting Mosquitto and Kafka ...", flush=True)
        with bs:
            yield mqtt_port, bs.kafka_bootstrap


def readings(registry: Registry, n: int, *, seed: int = 1, spacing: float = 60.0) -> ReadingBatch:
    k = np.arange(n)
    rng = np.random.default_rng(seed)
    return ReadingBatch.from_arrays(k % len(registry), T0 + spacing * (k // len(registry)),
                                    30.0 + 3.0 * rng.standard_normal(n))


# --------------------------------------------------------------------------------- MQTT

async def _queue_for_session(port: int, topic_filter: str, client_ids: list[str], messages: list[tuple[str, bytes]]
                             ) -> None:
    """Subscribe each client id (persistent session) and leave; then publish ``messages`` for them."""
    for cid in client_ids:
        if cid.startswith("ms-"):
            subprocess.run(["mosquitto_sub", "-p", str(port), "-V", "mqttv5", "-q", "1", "-c", "-i", cid,
                            "-x", "3600", "-t", topic_filter, "-E"], check=True, timeout=30)
        else:
            async with MqttSource(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}/{topic_filter}?client_id={cid}")):
                pass
    async with MqttPublisher(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}")) as pub:
        await pub.publish_many(messages)
        await pub.flush(timeout=300)


def _mosquitto_sub_drain(port: int, topic_filter: str, cid: str, n: int) -> float:
    start = time.perf_counter()
    subprocess.run(["mosquitto_sub", "-p", str(port), "-V", "mqttv5", "-q", "1", "-c", "-i", cid, "-x", "3600",
                    "-t", topic_filter, "-C", str(n)], check=True, stdout=subprocess.DEVNULL, timeout=300)
    return time.perf_counter() - start


async def _ioc_mqtt_drain(port: int, topic_filter: str, cid: str, registry: Registry, n_readings: int) -> float:
    core = AnomalyCore(registry)
    start = time.perf_counter()
    async with MqttSource(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}/{topic_filter}?client_id={cid}")) as src:
        feed = Feed(src, registry, last_seen=core.last_seen, idle_s=None)
        async for item in feed:
            core.update(item.batch)
            await feed.commit(item)
            if core.readings_scored >= n_readings:
                break
        took = time.perf_counter() - start
    if core.readings_scored != n_readings:
        raise RuntimeError(f"scored {core.readings_scored} of {n_readings}")
    return took


async def bench_mqtt(port: int, n: int, pack: int, repeat: int) -> Rate:
    registry = Registry.synthetic(1000)
    batch = readings(registry, n * pack)
    fmt = "compact" if pack == 1 else "senml"
    best_ref = best_ioc = 0.0
    for r in range(repeat):
        prefix = f"b{uuid.uuid4().hex[:8]}"
        messages = [(m.topic, m.payload) for m in encode(batch, registry, fmt, pack=pack, prefix=prefix)]
        assert len(messages) == n
        ms_id, ioc_id = f"ms-{prefix}", f"ioc-{prefix}"
        await _queue_for_session(port, f"{prefix}/#", [ms_id, ioc_id], messages)
        t_ref = await asyncio.to_thread(_mosquitto_sub_drain, port, f"{prefix}/#", ms_id, n)
        t_ioc = await _ioc_mqtt_drain(port, f"{prefix}/#", ioc_id, registry, n * pack)
        best_ref = max(best_ref, n * pack / t_ref)
        best_ioc = max(best_ioc, n * pack / t_ioc)
        print(f"  run {r + 1}: mosquitto_sub {n * pack / t_ref:,.0f}/s, IOC {n * pack / t_ioc:,.0f}/s", flush=True)
    what = ("MQTT QoS 1, 1 reading/message" if pack == 1 else f"MQTT QoS 1, SenML packs of {pack}")
    return Rate(what + " (readings/s)", best_ioc, best_ref, "mosquitto_sub -q 1")


# -------------------------------------------------------------------------------- Kafka

async def bench_kafka(bootstrap: str, n: int, repeat: int) -> Rate:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    registry = Registry.synthetic(1000)
    batch = readings(registry, n)
    topic = f"bench{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
    finally:
        await admin.close()
    lines = b"\n".join(m.key.encode() + b"\t" + m.payload for m in encode(batch, registry)) + b"\n"
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "partitioner=murmur2_random",
                    "-X", "linger.ms=20"], input=lines, check=True, timeout=300)
    best_ref = best_ioc = 0.0
    for r in range(repeat):
        start = time.perf_counter()
        subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"],
                       stdout=subprocess.DEVNULL, check=True, timeout=300)
        t_ref = time.perf_counter() - start
        core = AnomalyCore(registry)
        settings = KafkaSettings(bootstrap=bootstrap, group=f"g{uuid.uuid4().hex[:8]}", topic=topic)
        start = time.perf_counter()
        async with KafkaSource(settings) as src:
            feed = Feed(src, registry, last_seen=core.last_seen, idle_s=None)
            async for item in feed:
                core.update(item.batch)
                await feed.commit(item)
                if core.readings_scored >= n:
                    break
            t_ioc = time.perf_counter() - start
        best_ref, best_ioc = max(best_ref, n / t_ref), max(best_ioc, n / t_ioc)
        print(f"  run {r + 1}: kcat -C {n / t_ref:,.0f}/s, IOC {n / t_ioc:,.0f}/s", flush=True)
    return Rate("Kafka, 1 reading/record (readings/s)", best_ioc, best_ref, "kcat -C")


# ------------------------------------------------------------------------------ latency

@dataclass(frozen=True)
class Latency:
    rate: float
    readings: int
    alerts: int
    scored_p50: float
    scored_p99: float
    alert_p50: float
    alert_p99: float

    def lines(self) -> list[str]:
        return [f"end-to-end at {self.rate:,.0f} readings/s achieved ({self.readings:,} readings measured, "
                f"{self.alerts} alerts):",
                f"  publish -> scored          p50 {self.scored_p50 * 1e3:7.1f} ms   p99 {self.scored_p99 * 1e3:7.1f} ms",
                f"  publish -> alert received  p50 {self.alert_p50 * 1e3:7.1f} ms   p99 {self.alert_p99 * 1e3:7.1f} ms"]


async def bench_latency(port: int, rate: float, seconds: float, warmup: float = 5.0) -> Latency:
    sensors = 1000
    registry = Registry.synthetic(sensors, interval_s=sensors / rate)
    ids = registry.ids
    prefix = f"lat{uuid.uuid4().hex[:8]}"
    base = MqttSettings.from_url(f"mqtt://127.0.0.1:{port}/{prefix}/#?client_id=lat-{prefix}")
    alerts_settings = MqttSettings.from_url(f"mqtt://127.0.0.1:{port}/ioc/alerts/{prefix}/#?client_id=al-{prefix}")
    scored_lat: list[np.ndarray] = []
    alert_lat: list[float] = []
    stop_writing = threading.Event()
    total = int(rate * seconds)
    measured_from = time.time() + warmup + 1.0

    def writer(proc: subprocess.Popen) -> None:
        """One compact message per line, ``rate`` a second, stamped with the time of writing."""
        rng = np.random.default_rng(7)
        assert proc.stdin is not None
        tick = 0.01
        per_tick = int(rate * tick)
        start = time.time()
        k = 0
        while k < total and not stop_writing.is_set():
            now = time.time()
            spikes = rng.random(per_tick) < (2e-4 if now > start + warmup else 0.0)
            vals = 30.0 + rng.standard_normal(per_tick) + spikes * 400.0
            proc.stdin.write("".join(f'{{"id":"{ids[(k + j) % sensors]}","ts":{now!r},"v":{v!r}}}\n'
                                     for j, v in enumerate(vals.tolist())).encode())
            proc.stdin.flush()
            k += per_tick
            delay = start + k / rate - time.time()
            if delay > 0:
                time.sleep(delay)

    async def alert_listener(src: MqttSource, done: asyncio.Event) -> None:
        async for d in src.deliveries(idle_s=0.2):
            now = time.time()
            for _, payload in d.messages:
                ts = float(payload.split(b'"ts":')[1].split(b"}")[0])
                if ts >= measured_from:
                    alert_lat.append(now - ts)
            await src.commit(d)
            if done.is_set() and not d.messages:
                return

    core = AnomalyCore(registry)
    in_alert = np.zeros(sensors, dtype=bool)
    async with MqttSource(base) as src, MqttSource(alerts_settings) as alerts_in, \
            MqttPublisher(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}")) as alerts_out:
        done = asyncio.Event()
        listener = asyncio.create_task(alert_listener(alerts_in, done))
        pub = subprocess.Popen(["mosquitto_pub", "-p", str(port), "-V", "mqttv5", "-q", "1", "-M", "1000", "--nodelay", "-l",
                                "-t", f"{prefix}/x/environment/mixed"], stdin=subprocess.PIPE)
        thread = threading.Thread(target=writer, args=(pub,), daemon=True)
        started = time.time()
        thread.start()
        feed = Feed(src, registry, last_seen=core.last_seen, idle_s=1.0)
        try:
            async for item in feed:
                b = item.batch
                if len(b):
                    scores = core.update(b)
                    now = time.time()
                    keep = b.ts >= measured_from
                    scored_lat.append(now - b.ts[keep])
                    # an alert message on every rise of a sensor's alert flag
                    rises = []
                    for row in np.flatnonzero(scores.alert != in_alert[b.sensor]).tolist():
                        i = int(b.sensor[row])
                        if scores.alert[row] and not in_alert[i]:
                            rises.append(row)
                        in_alert[i] = bool(scores.alert[row])
                    if rises:
                        await alerts_out.publish_many(
                            (f"ioc/alerts/{prefix}/{ids[int(b.sensor[r])]}",
                             f'{{"id":"{ids[int(b.sensor[r])]}","ts":{float(b.ts[r])!r}}}'.encode())
                            for r in rises)
                await feed.commit(item)
                if core.readings_scored >= total or (not thread.is_alive() and not item.delivery.messages):
                    break
        finally:
            stop_writing.set()
            thread.join()
            if pub.stdin:
                pub.stdin.close()
            pub.wait(timeout=30)
        took = time.time() - started
        await alerts_out.flush(timeout=30)
        done.set()
        await asyncio.wait_for(listener, 30)
    lat = np.concatenate(scored_lat) if scored_lat else np.zeros(0)
    al = np.array(alert_lat) if alert_lat else np.full(1, np.nan)
    return Latency(core.readings_scored / took, int(lat.size), len(alert_lat),
                   float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                   float(np.nanpercentile(al, 50)), float(np.nanpercentile(al, 99)))


# --------------------------------------------------------------------------------- main

async def run(quick: bool, repeat: int) -> None:
    for program in ("mosquitto_sub", "mosquitto_pub", "kcat"):
        if shutil.which(program) is None:
            sys.exit(f"error: {program} not found (apt-get install -y mosquitto-clients kcat)")
    n_mqtt = 20_000 if quick else 90_000
    n_packs = 2_000 if quick else 9_000
    n_kafka = 100_000 if quick else 500_000
    # load the core's compiled kernel (numba cache) now, not inside the first timed run
    AnomalyCore(Registry.synthetic(2)).update(readings(Registry.synthetic(2), 10))
    with brokers() as (mqtt_port, kafka_bootstrap):
        rates = []
        print(f"MQTT, {n_mqtt:,} messages of one reading, QoS 1:", flush=True)
        rates.append(await bench_mqtt(mqtt_port, n_mqtt, 1, repeat))
        print(f"MQTT, {n_packs:,} SenML packs of 100 readings, QoS 1:", flush=True)
        rates.append(await bench_mqtt(mqtt_port, n_packs, 100, repeat))
        print(f"Kafka, {n_kafka:,} records of one reading:", flush=True)
        rates.append(await bench_kafka(kafka_bootstrap, n_kafka, repeat))
        print("MQTT end-to-end latency at 10,000 readings/s:", flush=True)
        latency = await bench_latency(mqtt_port, 10_000.0, 10.0 if quick else 20.0)
    print()
    print(f"{'':<44} {'IOC':>12} {'C client':>12}   ratio")
    for r in rates:
        print(r.line())
    for line in latency.lines():
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ingest.bench_transports", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per throughput figure; the best counts")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)    # its retries while a group forms are noise here
    asyncio.run(run(args.quick, max(1, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
