"""Three ``ioc worker`` processes in one Kafka group and two ``ioc alerting`` owners, a worker and the
leading owner SIGKILLed mid-stream: the real Kafka and PostgreSQL.

What the duty officer needs of a scoring cluster: losing a worker loses no reading and
changes no score.  The others take the dead worker's partitions from its last checkpoint
in PostgreSQL and score the rest of the stream as one uninterrupted worker would have.  And
losing the alerting owner loses no alert and pages nobody twice: the standby takes the
PostgreSQL lock, restores the alerts from the store and reads on from its horizon.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer
import pytest

from ingest.formats import encode as encode_readings
from ingest.formats.scores import Scored
from ingest.kafka import KafkaSettings, KafkaSink
from ingest.kafka.partitions import partition_of
from ingest.kafka.scores_reader import ScoresReader
from ioc.alerting.channels import verify_signature
from ioc.alerting.store import AlertStore
from ioc.citydata import default_city_dir
from live import make_topics, wait_for
from processing.alerts import AlertList
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


SECRET = "cluster-test-secret"


class Receiver:
    """The officers' webhook endpoint: every signed delivery, copies included."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lock = threading.Lock()
        box = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify_signature(SECRET.encode(), body, self.headers.get("X-IOC-Signature"))
                if ok:
                    with box.lock:
                        box.keys.append(self.headers["Idempotency-Key"])
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def _keys_since(bootstrap: str, topic: str) -> list[str]:
    """The delivery keys of every alert record of ``topic`` (one partition)."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        since = {TopicPartition(topic, 0): 0}
        consumer.assign(list(since))
        consumer.seek(TopicPartition(topic, 0), 0)
        ends = await consumer.end_offsets(list(since))
        keys: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            behind = [await consumer.position(tp) < ends[tp] for tp in since]
            if not any(behind):
                break
            for records in (await consumer.getmany(timeout_ms=500)).values():
                keys += [json.loads(m.value)["idempotency_key"] for m in records]
        return keys
    finally:
        await consumer.stop()


def _flagged_runs(registry, batch, scores) -> dict[tuple[str, str], tuple[int, int]]:
    """(sensor, kind) -> (runs of flagged readings, flagged readings) of one uninterrupted alert list;
    however the alerts are cut (auto-resolved and opened again, or re-opened), these sums are the same."""
    al = AlertList(registry)
    al.ingest(batch, scores.alert, scores.score, scores.reasons)
    return _sums(al.alerts())


def _sums(alerts) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for a in alerts:
        if a.kind != "silent":
            out[(a.sensor_id, a.kind)][0] += a.occurrences
            out[(a.sensor_id, a.kind)][1] += a.readings
    return {k: (v[0], v[1]) for k, v in out.items()}


def _owner(source: str, name: str, log: Path, env: dict[str, str], alerting: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ioc.cli", "alerting", "--source", source, "--name", name,
                             "--alerting", str(alerting), "--notify-history"], env={**os.environ, **env},
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def _worker(brokers, source: str, name: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "IOC_POSTGRES_URL": brokers.postgres_url}     # the password stays off the command line
    return subprocess.Popen([sys.executable, "-m", "ioc.cli", "worker", "--source", source, "--name", name,
                             "--checkpoint-every", "1"], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


async def test_three_workers_and_two_alerting_owners_one_of_each_killed(brokers, pg_schema, tmp_path):
    from simulators.city import CitySimulator

    registry = city_registry()
    batch, labels = CitySimulator(registry, seed=21, anomaly_rate=6.0).generate(T0, T0 + HOURS * 3600)
    assert labels
    expected = AnomalyCore(registry).update(batch)       # the single, uninterrupted reference

    uid = uuid.uuid4().hex[:8]
    topics = {"topic": f"r{uid}", "scores": f"s{uid}", "events": f"e{uid}", "deadletter": f"d{uid}"}
    alerts_topic = f"a{uid}"                  # the teams' Kafka topic of this test's alerting.toml
    await make_topics(brokers.kafka_bootstrap, (topics["topic"], 6), (topics["scores"], 6), (topics["events"], 6),
                      (topics["deadletter"], 1), (alerts_topic, 1))
    source = f"{brokers.kafka_url}?group=w{uid}&" + "&".join(f"{k}={v}" for k, v in topics.items())
    names = ["w1", "w2", "w3"]
    # the alert store in a fresh schema; the officers' webhooks point at the receiver
    store_url = pg_schema
    hooks = Receiver()
    alerting = tmp_path / "alerting.toml"
    alerting.write_text((default_city_dir() / "alerting.toml").read_text(encoding="utf-8")
                        .replace("https://hooks.example.invalid", hooks.url)
                        .replace('"kafka:ioc.alerts"', f'"kafka:{alerts_topic}"'), encoding="utf-8")
    owner_env = {"IOC_POSTGRES_URL": store_url, "IOC_WEBHOOK_SECRET": SECRET}
    owners = {"a1": _owner(source, "a1", tmp_path / "a1.log", owner_env, alerting)}
    wait_for(lambda: b": leading" in (tmp_path / "a1.log").read_bytes() or owners["a1"].poll() is not None, 60,
             "the first alerting owner to lead")
    assert owners["a1"].poll() is None, (tmp_path / "a1.log").read_text()
    owners["a2"] = _owner(source, "a2", tmp_path / "a2.log", owner_env, alerting)
    wait_for(lambda: b"standing by" in (tmp_path / "a2.log").read_bytes() or owners["a2"].poll() is not None, 60,
             "the second owner to stand by")
    assert owners["a2"].poll() is None, (tmp_path / "a2.log").read_text()
    took_over: list[float] = []
    threading.Thread(target=lambda: (wait_for(lambda: b": leading" in (tmp_path / "a2.log").read_bytes(), 120,
                                              "the standby to lead", every=0.02), took_over.append(time.time())),
                     daemon=True).start()

    # a dashboard on "another node": its own process, Kafka and the store only
    dash = subprocess.Popen([sys.executable, "-m", "ioc.cli", "dashboard", "--source", source, "--port", "0",
                             "--alerting", str(alerting)],
                            env={**os.environ, **owner_env}, stdout=open(tmp_path / "dash.log", "wb"),
                            stderr=subprocess.STDOUT)
    line = wait_for(lambda: next((x for x in (tmp_path / "dash.log").read_text().splitlines()
                                  if x.startswith("dashboard: http")), None) or dash.poll() is not None, 60,
                    "the dashboard to serve")
    assert dash.poll() is None, (tmp_path / "dash.log").read_text()
    health_url = line.split()[1] + "api/health"
    samples: list[tuple[float, dict]] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            try:
                with urllib.request.urlopen(health_url, timeout=5) as r:
                    samples.append((time.time(), json.loads(r.read())))
            except OSError:
                pass
            watching.wait(0.2)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

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
                if k == CHUNKS // 4:                 # the leading alerting owner dies mid-stream
                    owners["a1"].send_signal(signal.SIGKILL)
                    owners["a1"].wait(10)
                    owner_killed_at = time.time()
                if k == CHUNKS // 2:
                    # mid-stream, once every worker has published: kill the one with the most partitions
                    await asyncio.to_thread(wait_for, lambda: len(seen.by_worker) == 3, 60, "all three scoring")
                    victim = max(names, key=lambda n: len(seen.by_worker[n]))
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait(10)
                    killed_at = time.time()
                await asyncio.sleep(0.3)
        await asyncio.wait_for(collector, 120)
        # the owner has taken every flagged reading, and delivered every notification it queued
        want = _flagged_runs(registry, batch, expected)
        store = AlertStore(store_url)
        try:
            wait_for(lambda: _sums(r.alert for r in store.alerts(limit=10**6)) == want, 90,
                     "the alerting owner to take every flagged reading")
            wait_for(lambda: store.delivery_counts().get("pending", 0) == 0, 90, "every delivery to be made")
            try:
                wait_for(lambda: samples and samples[-1][1]["readings_total"] == len(batch), 30,
                         "the dashboard to show every reading")
            except AssertionError:
                raise AssertionError(f"the dashboard shows {samples[-1:]} of {len(batch)} readings") from None
            alerts = [r.alert for r in store.alerts(limit=10**6)]
            deliveries = store.deliveries()
        finally:
            store.close()
    finally:
        stop.set()
        collector.cancel()
        watching.set()
        for p in [*procs.values(), *owners.values(), dash]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*procs.values(), *owners.values(), dash]:
            p.wait(30)
        hooks.server.shutdown()
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in [*names, *owners]}

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

    # no alert lost, none counted twice: every run of flagged readings of the reference is in the
    # store's alerts once (the victim's re-published evidence was dropped as copies)
    assert _sums(alerts) == want and len(want) > 5
    assert "stopped;" in logs["a2"] and " 0 dead letters" in logs["a2"], logs["a2"]
    if seen.copies:               # a re-scored range re-published evidence too: dropped by (sensor, time)
        assert "copies dropped" in logs["a2"] and " 0 copies dropped" not in logs["a2"], logs["a2"]
    # the standby took over once the leader died, from the store's horizon
    assert took_over and "leading; reading" in logs["a2"], logs["a2"]
    owner_failover = took_over[0] - owner_killed_at
    # none notified twice: each queued notification was sent once as the receiver counts by key,
    # and every one the store has for the webhooks reached the receiver
    hooks_sent = {d.key for d in deliveries if d.channel == "webhook"}
    assert {d.status for d in deliveries if d.channel == "webhook"} == {"sent"}
    with hooks.lock:
        got = Counter(hooks.keys)
    assert set(got) == hooks_sent and len(hooks_sent) > 5
    copies = sum(got.values()) - len(got)
    assert copies <= 1          # at most the one in flight at the kill, which the receiver drops by its key
    opened = {a.id for a in alerts}
    assert {int(k.split(":")[0]) for k in hooks_sent} <= opened
    print(f"alerting: {len(alerts)} alerts, {len(hooks_sent)} webhook notifications, each received once by key "
          f"({copies} re-sent copies); the standby led {owner_failover:.2f} s after the leader was killed")
    assert owner_failover < 10

    # the teams' Kafka topic got every notification queued for it, once by its key, from both owners
    on_topic = [d.key for d in deliveries if d.channel == "kafka"]
    assert on_topic and {d.status for d in deliveries if d.channel == "kafka"} == {"sent"}
    published = Counter(await _keys_since(brokers.kafka_bootstrap, alerts_topic))
    assert set(on_topic) <= set(published) and sum(published[k] for k in on_topic) - len(on_topic) <= 1
    print(f"alerting: {len(on_topic)} notifications on the teams' Kafka topic, each there once by key "
          f"({sum(published[k] for k in on_topic) - len(on_topic)} copies)")

    # the dashboard node showed every sensor from the first scores to the end, the worker's kill
    # included, and counted each reading once (the re-scored copies were not counted again)
    shown = [(t, h) for t, h in samples if h["readings_total"] > 0]
    assert shown and shown[-1][1]["readings_total"] == len(batch)
    first_all = next(t for t, h in shown if h["sensors_never_reported"] == 0)
    after = [h for t, h in shown if t >= first_all]
    assert all(h["sensors_never_reported"] == 0 and h["sensors_total"] == len(registry) for h in after)
    assert any(t < killed_at for t, h in shown if t >= first_all) and any(t > killed_at + failover for t, _ in shown)
    totals = [h["readings_total"] for h in after]
    assert totals == sorted(totals)                  # never went back
    assert after[-1]["status"] == "ok" and after[-1]["alerts_active"] == sum(
        1 for a in alerts if a.state in ("open", "acknowledged"))
    print(f"dashboard: {len(after)} samples with all {len(registry)} sensors shown, from "
          f"{first_all - shown[0][0]:.1f} s after the first scores to the end; {totals[-1]} readings counted once")


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
