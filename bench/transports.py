"""Transport benchmarks against the real brokers, each beside the broker's own C client.

Run ``python3 -m bench.transports [--quick]``.  It starts its own Mosquitto and
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

End-to-end latency (publish -> scored -> alert received, through the whole pipeline and
its alert dispatcher) is :mod:`bench.latency`.

Figures depend on the machine: on the shared 2-core development machines broker,
publisher and consumer compete for the cores, so every comparison is made in the same
run.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import numpy as np

from ingest.formats import encode
from ingest.kafka import KafkaSettings, KafkaSource
from ingest.mqtt import MqttPublisher, MqttSettings, MqttSource
from ingest.sources import Feed
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.registry import Registry

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


async def _ioc_drain(source: MqttSource | KafkaSource, registry: Registry, n_readings: int) -> float:
    """Seconds for the IOC's ingest to connect and score ``n_readings`` from ``source``
    (decode, de-duplicate, score, acknowledge or commit each batch after scoring it)."""
    core = AnomalyCore(registry)
    start = time.perf_counter()
    async with source as src:
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
        source = MqttSource(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}/{prefix}/#?client_id={ioc_id}"))
        t_ioc = await _ioc_drain(source, registry, n * pack)
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
        settings = KafkaSettings(bootstrap=bootstrap, group=f"g{uuid.uuid4().hex[:8]}", topic=topic)
        t_ioc = await _ioc_drain(KafkaSource(settings), registry, n)
        best_ref, best_ioc = max(best_ref, n / t_ref), max(best_ioc, n / t_ioc)
        print(f"  run {r + 1}: kcat -C {n / t_ref:,.0f}/s, IOC {n / t_ioc:,.0f}/s", flush=True)
    return Rate("Kafka, 1 reading/record (readings/s)", best_ioc, best_ref, "kcat -C")


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
    from ioc.brokers import scratch_brokers

    print("starting Mosquitto and Kafka ...", flush=True)
    with scratch_brokers(say=lambda m: print(f"  [{m}]", flush=True)) as bs:
        mqtt_port, kafka_bootstrap = bs.mqtt_port, bs.kafka_bootstrap
        rates = []
        print(f"MQTT, {n_mqtt:,} messages of one reading, QoS 1:", flush=True)
        rates.append(await bench_mqtt(mqtt_port, n_mqtt, 1, repeat))
        print(f"MQTT, {n_packs:,} SenML packs of 100 readings, QoS 1:", flush=True)
        rates.append(await bench_mqtt(mqtt_port, n_packs, 100, repeat))
        print(f"Kafka, {n_kafka:,} records of one reading:", flush=True)
        rates.append(await bench_kafka(kafka_bootstrap, n_kafka, repeat))
    print()
    print(f"{'':<44} {'IOC':>12} {'C client':>12}   ratio")
    for r in rates:
        print(r.line())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.transports", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per throughput figure; the best counts")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)    # its retries while a group forms are noise here
    asyncio.run(run(args.quick, max(1, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
