"""Kafka ingest against the real single-node Kafka (session ``brokers`` fixture), fed by ``kcat``.

A labelled stream of the Bắc Giang city is produced by Debian's ``kcat -P`` (librdkafka),
keyed by sensor id, and consumed by :class:`ingest.kafka.KafkaSource` in a consumer
group through :class:`ingest.sources.Feed` into an :class:`processing.core.AnomalyCore`:
scores, alerts and reasons must equal the embedded path's.  The malformed corpus and a
1 MB message go to the dead-letter topic with their reasons in headers.  The CLI's
``ioc simulate --to kafka://``, ``ioc replay`` and ``ioc bridge`` are run here too.

Each test creates topics of its own (``auto.create.topics.enable`` is off) so tests
never see each other's records.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from ingest.formats import encode
from ingest.kafka import KafkaTransportError, KafkaSettings, KafkaSink, KafkaSource
from ingest.sources import Feed
from processing.batch import ReadingBatch
from processing.registry import Registry
from live import make_topics
from scored_feeds import Scored, assert_same_as_embedded, city_registry, consume

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("kcat") is None or shutil.which("mosquitto_pub") is None,
                                 reason="needs Debian's kcat and mosquitto-clients")]

MALFORMED = Path(__file__).resolve().parents[1] / "ingest" / "malformed"
T0 = 1772412000.0


@pytest.fixture(scope="module")
def registry() -> Registry:
    return city_registry()


@pytest.fixture(scope="module")
def stream(registry: Registry) -> ReadingBatch:
    from simulators.city import CitySimulator

    batch, labels = CitySimulator(registry, seed=12, anomaly_rate=6.0).generate(T0, T0 + 4 * 3600)
    assert labels
    return batch


def kafka_settings(brokers, uid: str, **kw) -> KafkaSettings:
    return KafkaSettings(bootstrap=brokers.kafka_bootstrap, group=f"g{uid}", topic=f"r{uid}",
                         deadletter_topic=f"d{uid}", alerts_topic=f"a{uid}", **kw)


async def fresh(brokers) -> tuple[str, KafkaSettings]:
    uid = uuid.uuid4().hex[:8]
    await make_topics(brokers.kafka_bootstrap, (f"r{uid}", 6), (f"d{uid}", 1), (f"a{uid}", 1))
    return uid, kafka_settings(brokers, uid)


def kcat_produce(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    """``kcat -P`` keyed records (``key<TAB>value`` lines), placed by Java's murmur2 partitioner."""
    if shutil.which("kcat") is None:
        pytest.skip("kcat not installed (Debian package kcat)")
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "partitioner=murmur2_random",
                    "-X", "enable.idempotence=true"], input=b"\n".join(lines) + b"\n", check=True, timeout=60)


def keyed_lines(registry: Registry, batch: ReadingBatch, fmt: str = "compact", pack: int = 1) -> list[bytes]:
    return [m.key.encode() + b"\t" + m.payload for m in encode(batch, registry, fmt, pack=pack)]


# ---------------------------------------------------------------------------------------------

async def test_readings_from_kcat_score_as_embedded_and_offsets_are_committed(brokers, registry, stream):
    uid, settings = await fresh(brokers)
    await asyncio.to_thread(kcat_produce, brokers.kafka_bootstrap, settings.topic, keyed_lines(registry, stream))
    scored = Scored(registry)
    async with KafkaSource(settings) as src:
        feed = Feed(src, registry, last_seen=scored.core.last_seen)
        await consume(feed, scored, len(stream), timeout=60)
        committed = await src.committed()
    assert_same_as_embedded(registry, stream, scored)
    assert sum(v or 0 for v in committed.values()) == len(stream)          # at-least-once: all committed
    assert sum(1 for v in committed.values() if v) == 6                      # keys spread over the partitions


async def test_one_sensor_stays_in_one_partition_whoever_produces(brokers, registry, stream):
    """kcat (murmur2_random) and KafkaSink (aiokafka's default) put a sensor's records in the same partition."""
    from aiokafka import AIOKafkaConsumer

    uid, settings = await fresh(brokers)
    part = stream.take(slice(0, 2000))
    await asyncio.to_thread(kcat_produce, brokers.kafka_bootstrap, settings.topic, keyed_lines(registry, part))
    packs = encode(part, registry, "senml", pack=10)
    async with KafkaSink(settings) as sink:
        await sink.send_readings(packs)
    consumer = AIOKafkaConsumer(settings.topic, bootstrap_servers=brokers.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    partitions: dict[bytes, set[int]] = {}
    seen = 0
    try:
        while seen < len(part) + len(packs):
            data = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for tp, records in data.items():
                for r in records:
                    partitions.setdefault(r.key, set()).add(tp.partition)
                    seen += 1
    finally:
        await consumer.stop()
    assert len(partitions) == len(np.unique(part.sensor))
    assert all(len(p) == 1 for p in partitions.values()), {k: p for k, p in partitions.items() if len(p) > 1}


async def test_malformed_corpus_and_a_1mb_message_go_to_the_deadletter_topic(brokers, registry, stream):
    from aiokafka import AIOKafkaConsumer

    expected = json.loads((MALFORMED / "expected.json").read_text())
    uid, settings = await fresh(brokers)
    before, after = stream.take(slice(0, 2000)), stream.take(slice(2000, 4000))
    big = b'{"id":"BG-ENV-014","ts":1772412000.0,"v":1,"pad":"' + b"x" * 999_900 + b'"}'   # 1 MB
    async with KafkaSink(settings) as sink:            # good, bad, 1 MB, good -- in one partition's order
        await sink.send_readings(encode(before, registry))
        for name in expected:
            await sink.send(settings.topic, (MALFORMED / name).read_bytes(), b"BG-ENV-014")
        await sink.send(settings.topic, big, b"BG-ENV-014")
        await sink.send_readings(encode(after, registry))
    scored = Scored(registry)
    async with KafkaSource(settings) as src, KafkaSink(settings) as dead_sink:
        feed = Feed(src, registry, last_seen=scored.core.last_seen, dead_letters=dead_sink)
        await consume(feed, scored, len(before) + len(after), timeout=60)
        want_dead = sum(e["dead"] for e in expected.values()) + 1
        async for item in feed:                        # until the dead letters are through too
            await feed.commit(item)
            if feed.stats().deadletters >= want_dead:
                break
        stats = feed.stats()
    assert stats.deadletters == want_dead and scored.core.readings_scored == len(before) + len(after)

    consumer = AIOKafkaConsumer(settings.deadletter_topic, bootstrap_servers=brokers.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None, max_partition_fetch_bytes=2 ** 21)
    await consumer.start()
    records = []
    try:
        while len(records) < want_dead:
            data = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for recs in data.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    letters = [(r.value, {k: v.decode() for k, v in r.headers}) for r in records]
    for name, want in expected.items():
        got = [h for v, h in letters if v == (MALFORMED / name).read_bytes()]
        assert len(got) == want["dead"], name
        assert all(h["code"] == want["code"] and h["source"] == settings.topic for h in got), (name, got)
        assert any(want["reason"] in h["reason"] for h in got), (name, got)
    huge = [(v, h) for v, h in letters if h["code"] == "too_large"]
    assert len(huge) == 1
    value, headers = huge[0]
    assert big.startswith(value) and int(headers.get("truncated", len(value))) == len(big)


async def test_cli_simulate_replay_and_bridge_deliver_every_reading(brokers, registry, tmp_path):
    """``ioc simulate --to kafka``, ``ioc replay --to kafka`` and ``ioc bridge mqtt -> kafka``.

    The three feeds overlap in time (live simulation, a recorded corpus, a fixed day), so
    each is consumed on its own, by a fresh core, as the group's next stretch of the topic:
    one core fed all three would rightly drop the older feeds' readings as late.
    """
    from ioc import transport_cli as T
    from simulators.corpus import write_corpus

    uid, settings = await fresh(brokers)

    async def consume_next(n: int) -> None:
        scored = Scored(registry)
        async with KafkaSource(settings) as src:
            await consume(Feed(src, registry), scored, n, timeout=60)
        assert scored.core.readings_scored == n

    url = f"kafka://{brokers.kafka_bootstrap}?topic={settings.topic}"
    out = io.StringIO()
    args = argparse.Namespace(to=url, rate=3000.0, duration=1.5, payload_format="ngsi-ld", pack=1,
                              labels=tmp_path / "labels.csv", warmup_hours=0.0, seed=4, anomaly_rate=2.0,
                              registry=None)
    assert await asyncio.to_thread(T.simulate_to, args, out) == 0
    simulated = int(out.getvalue().split("published ")[1].split(" readings")[0].replace(",", ""))
    assert simulated > 1000
    await consume_next(simulated)

    write_corpus(tmp_path / "corpus", registry, days=0.05, seed=5, anomaly_rate=0.0)
    out = io.StringIO()
    args = argparse.Namespace(paths=[tmp_path / "corpus" / "environment"], to=url, speed=0.0, retime=False,
                              payload_format="senml", pack=7, registry=None)
    assert await asyncio.to_thread(T.replay, args, out) == 0
    replayed = int(out.getvalue().split("replayed ")[1].split(" readings")[0].replace(",", ""))
    await consume_next(replayed)

    # the bridge, as its own process, from MQTT into the same topic
    prefix = f"b{uid}"
    bridge = subprocess.Popen(
        [sys.executable, "-c", BRIDGE_MAIN, f"mqtt://127.0.0.1:{brokers.mqtt_port}/{prefix}/#?group=g{prefix}", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "bridging" in await asyncio.to_thread(bridge.stdout.readline)
        part = ReadingBatch.from_arrays(np.arange(300) % len(registry), T0 + 60.0 * (np.arange(300) // len(registry)),
                                        np.full(300, 5.0))
        lines = b"\n".join(m.payload for m in encode(part, registry, "compact")) + b"\n"
        pub = await asyncio.to_thread(subprocess.run, ["mosquitto_pub", "-p", str(brokers.mqtt_port), "-q", "1",
                                                       "-l", "-t", f"{prefix}/x/environment/y"],
                                      input=lines, timeout=30)
        assert pub.returncode == 0
        await consume_next(len(part))
    finally:
        bridge.terminate()
        bridge.wait(timeout=30)
    assert bridge.returncode == 0, bridge.stderr.read()


# `ioc bridge` exactly as the command line runs it (the handler registered by add_parsers)
BRIDGE_MAIN = """
import argparse, sys
from ioc import transport_cli
from ioc.cli import UserError
parser = argparse.ArgumentParser(prog="ioc")
transport_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(["bridge", *sys.argv[1:]])
try:
    sys.exit(args.func(args))
except UserError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


async def test_unreachable_broker_missing_topic_and_bad_addresses_are_one_line_errors(brokers):
    from ioc.brokers import free_port

    port = free_port()
    with pytest.raises(KafkaTransportError, match=rf"cannot connect to kafka://127\.0\.0\.1:{port}"):
        async with KafkaSource(KafkaSettings(bootstrap=f"127.0.0.1:{port}")):
            pass
    with pytest.raises(KafkaTransportError, match="topic 'no.such.topic' does not exist"):
        async with KafkaSource(KafkaSettings(bootstrap=brokers.kafka_bootstrap, topic="no.such.topic")):
            pass
    with pytest.raises(KafkaTransportError, match="not a Kafka address"):
        KafkaSettings.from_url("mqtt://127.0.0.1:9092")
    with pytest.raises(KafkaTransportError, match="unknown option 'grp'"):
        KafkaSettings.from_url("kafka://127.0.0.1:9092?grp=x")
