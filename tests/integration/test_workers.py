"""Three ``ioc worker`` processes in one Kafka group, one SIGKILLed mid-stream: the real Kafka and PostgreSQL.

What the duty officer needs of a scoring cluster: losing a worker loses no reading and
changes no score.  The others take the dead worker's partitions from its last checkpoint
in PostgreSQL and score the rest of the stream as one uninterrupted worker would have.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer
import pytest

from ingest.formats import encode as encode_readings
from ingest.formats.scores import Scored
from ingest.kafka import KafkaSettings, KafkaSink
from ingest.kafka.partitions import partition_of
from ingest.kafka.scores_reader import ScoresReader
from live import make_topics, wait_for
from processing.core import AnomalyCore
from scored_feeds import city_registry

pytestmark = pytest.mark.integration

T0 = 1772412000.0
HOURS = 12
CHUNKS = 40


class ScoresSeen:
    """Everything published to the scores topic: one result per (sensor, ts), with every copy checked."""

    def __init__(self) -> None:
        self.first: dict[tuple[int, float], tuple[float, bool, int]] = {}
        self.copies = 0
        self.differing: list[tuple[int, float]] = []
        self.by_worker: dict[str, set[int]] = defaultdict(set)      # worker -> partitions it published
        self.first_seen: list[tuple[float, str, int]] = []         # (broker time, worker, partition) per record

    def add(self, at: float, rec: Scored) -> None:
        self.by_worker[rec.worker].add(rec.partition)
        self.first_seen.append((at, rec.worker, rec.partition))
        for s, t, sc, a, r in zip(rec.sensor.tolist(), rec.ts.tolist(), rec.score.tolist(), rec.alert.tolist(),
                                  rec.reasons.tolist()):
            got = (sc, a, r)
            old = self.first.setdefault((s, t), got)
            if old is not got:
                self.copies += 1
                if old != got:
                    self.differing.append((s, t))


async def _collect(settings: KafkaSettings, seen: ScoresSeen, want: int, stop: asyncio.Event) -> None:
    async with ScoresReader(settings, settings.scores_topic) as reader:
        async for at, rec in reader.records(stop):
            seen.add(at, rec)
            if len(seen.first) >= want:
                return


def _worker(brokers, source: str, name: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "IOC_POSTGRES_URL": brokers.postgres_url}     # the password stays off the command line
    return subprocess.Popen([sys.executable, "-m", "ioc.cli", "worker", "--source", source, "--name", name,
                             "--checkpoint-every", "1"], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


async def test_three_workers_one_killed_score_like_one_worker(brokers, tmp_path):
    from simulators.city import CitySimulator

    registry = city_registry()
    batch, labels = CitySimulator(registry, seed=21, anomaly_rate=6.0).generate(T0, T0 + HOURS * 3600)
    assert labels
    expected = AnomalyCore(registry).update(batch)       # the single, uninterrupted reference

    uid = uuid.uuid4().hex[:8]
    topics = {"topic": f"r{uid}", "scores": f"s{uid}", "events": f"e{uid}", "deadletter": f"d{uid}"}
    await make_topics(brokers.kafka_bootstrap, (topics["topic"], 6), (topics["scores"], 6), (topics["events"], 6),
                      (topics["deadletter"], 1))
    source = f"{brokers.kafka_url}?group=w{uid}&" + "&".join(f"{k}={v}" for k, v in topics.items())
    names = ["w1", "w2", "w3"]
    procs = {n: _worker(brokers, source, n, tmp_path / f"{n}.log") for n in names}
    seen = ScoresSeen()
    stop = asyncio.Event()
    settings = KafkaSettings.from_url(source)
    collector = asyncio.ensure_future(_collect(settings, seen, len(batch), stop))
    try:
        for n in names:     # each worker says when it is in the group
            wait_for(lambda n=n: b"scoring" in (tmp_path / f"{n}.log").read_bytes() or procs[n].poll() is not None,
                     60, f"worker {n} to join")
            assert procs[n].poll() is None, (tmp_path / f"{n}.log").read_text()
        bounds = np.linspace(0, len(batch), CHUNKS + 1).astype(int)
        killed_at = None
        victim = None
        async with KafkaSink(settings) as sink:
            for k in range(CHUNKS):
                part = batch.take(np.arange(bounds[k], bounds[k + 1]))
                await sink.send_readings(encode_readings(part, registry, "compact"), settings.topic)
                await sink.flush()
                if k == CHUNKS // 2:
                    # mid-stream, once every worker has published: kill the one with the most partitions
                    await asyncio.to_thread(wait_for, lambda: len(seen.by_worker) == 3, 60, "all three scoring")
                    victim = max(names, key=lambda n: len(seen.by_worker[n]))
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait(10)
                    killed_at = time.time()
                await asyncio.sleep(0.3)
        await asyncio.wait_for(collector, 120)
    finally:
        stop.set()
        collector.cancel()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(30)
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in names}

    # every reading scored at least once, and each counted once (by sensor and time)
    keys = list(zip(batch.sensor.tolist(), batch.ts.tolist()))
    assert len(seen.first) == len(set(keys)) == len(batch), "a reading was not scored"
    # copies of a re-scored range (the victim's partitions after its last checkpoint) agree exactly
    assert not seen.differing, f"{len(seen.differing)} readings scored differently twice"
    # ... and every score equals the single-worker reference, the hand-over included
    got = np.array([seen.first[k] for k in keys], dtype=object)
    np.testing.assert_array_equal(np.array([g[0] for g in got], dtype=np.float32), expected.score.astype(np.float32))
    np.testing.assert_array_equal(np.array([g[1] for g in got]), expected.alert)
    np.testing.assert_array_equal(np.array([g[2] for g in got]), expected.reasons)
    assert expected.alert.sum() > 0

    # the victim's partitions at the kill moved to the others, from checkpoints (not from the start)
    last: dict[int, str] = {}
    for t, w, p in sorted(seen.first_seen):
        if t < killed_at:
            last[p] = w
    lost = {p for p, w in last.items() if w == victim}
    assert lost, dict(seen.by_worker)
    resumed = {}
    for t, w, p in sorted(seen.first_seen):
        if p in lost and w != victim and t >= killed_at:
            resumed.setdefault(p, t)
    assert set(resumed) == lost, (lost, resumed)
    taken = "".join(logs[n] for n in names if n != victim)
    assert all(f"took partition {p} at offset" in taken for p in lost)
    assert f"checkpoint of {victim}" in taken, logs
    assert "reading again" not in "".join(logs.values())        # no record was ever skipped
    # sensors stay on their key's partition: nothing was dead-lettered as misplaced
    assert "0 dead letters" in "".join(logs[n] for n in names if n != victim)
    assert set(partition_of(registry.ids, 6).tolist()) == set(range(6))

    failover = max(resumed.values()) - killed_at
    print(f"\nworkers: {len(batch)} readings, victim {victim} owned partitions {sorted(lost)} at the kill; "
          f"{seen.copies} re-scored copies (all equal); all its partitions scored again {failover:.1f} s after the kill")
    assert failover < 30


async def test_bad_and_misplaced_readings_go_to_the_dead_letters_and_the_worker_goes_on(brokers, tmp_path):
    registry = city_registry()
    uid = uuid.uuid4().hex[:8]
    topics = {"topic": f"r{uid}", "scores": f"s{uid}", "events": f"e{uid}", "deadletter": f"d{uid}"}
    await make_topics(brokers.kafka_bootstrap, (topics["topic"], 6), (topics["scores"], 6), (topics["events"], 6),
                      (topics["deadletter"], 1))
    source = f"{brokers.kafka_url}?group=w{uid}&" + "&".join(f"{k}={v}" for k, v in topics.items())
    settings = KafkaSettings.from_url(source)
    proc = _worker(brokers, source, "solo", tmp_path / "solo.log")
    try:
        wait_for(lambda: b"scoring" in (tmp_path / "solo.log").read_bytes() or proc.poll() is not None, 60,
                 "the worker to join")
        sid = registry.ids[0]
        home = int(partition_of([sid], 6)[0])
        async with KafkaSink(settings) as sink:
            await sink.send(settings.topic, b'{"id": "%s", "ts": %d, "v": 12.5}' % (sid.encode(), int(T0)),
                            key=sid.encode(), partition=(home + 1) % 6)                      # wrong partition
            await sink.send(settings.topic, b"{not json", key=sid.encode())                    # not JSON
            await sink.send(settings.topic, b'{"id": "%s", "ts": %d, "v": 13.5}' % (sid.encode(), int(T0) + 60),
                            key=sid.encode())                                                   # good
            await sink.flush()
        dead = []
        consumer = AIOKafkaConsumer(settings.deadletter_topic, bootstrap_servers=brokers.kafka_bootstrap,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            deadline = time.monotonic() + 30
            while len(dead) < 2 and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    dead += [dict((k, v.decode()) for k, v in m.headers) for m in records]
        finally:
            await consumer.stop()
        assert sorted(d["code"] for d in dead) == ["invalid_json", "misplaced"], dead
        misplaced = next(d for d in dead if d["code"] == "misplaced")
        assert f"its key places it on partition {home}" in misplaced["reason"]
        seen = ScoresSeen()
        await asyncio.wait_for(_collect(settings, seen, 1, asyncio.Event()), 30)
        assert list(seen.first) == [(0, T0 + 60)]            # the good reading was scored, the worker went on
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert "stopped; 1 readings scored" in (tmp_path / "solo.log").read_text()
