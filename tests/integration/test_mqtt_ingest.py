"""MQTT ingest against the real Mosquitto (session ``brokers`` fixture), fed by ``mosquitto_pub``.

A labelled stream of the Bắc Giang city (simulator, with injected anomalies) is
published by Mosquitto's own C client -- compact JSON one reading a message, and
SenML packs -- and consumed by :class:`ingest.mqtt.MqttSource` through
:class:`ingest.sources.Feed` into an :class:`processing.core.AnomalyCore`.  Scores,
alerts and reasons must equal those of the same readings scored directly (the
embedded path), and the readings must reach ``/api/sensors/<id>`` of a pipeline fed
from the broker.  The malformed corpus and a 1 MB message land in the dead letters.

Each test uses its own topic prefix, shared-subscription group and client id.
``mosquitto_pub -l`` at QoS 1 drops its unsent backlog when its input ends, so its
standard input stays open until the consumer has everything.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from ingest.formats import encode
from ingest.mqtt import MqttError, MqttPublisher, MqttSettings, MqttSource
from ingest.sources import Feed, FileDeadLetters
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.registry import Registry
from scored_feeds import Scored, assert_same_as_embedded, city_registry, consume

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs Debian's mosquitto-clients")]

MALFORMED = Path(__file__).resolve().parents[1] / "ingest" / "malformed"
T0 = 1772412000.0            # 2026-03-02 00:40 UTC


@pytest.fixture(scope="module")
def registry() -> Registry:
    return city_registry()


@pytest.fixture(scope="module")
def stream(registry: Registry) -> ReadingBatch:
    """Four hours of the city with many labelled anomalies (about 17,000 readings)."""
    from simulators.city import CitySimulator

    batch, labels = CitySimulator(registry, seed=11, anomaly_rate=6.0).generate(T0, T0 + 4 * 3600)
    assert labels
    return batch


def _need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} not installed (Debian package mosquitto-clients)")


def _unique() -> str:
    return uuid.uuid4().hex[:8]


def mosquitto_pub_lines(port: int, topic: str) -> subprocess.Popen:
    """``mosquitto_pub -l`` at QoS 1: one message per line written to its stdin (kept open by the caller)."""
    return subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1",
                             "-l", "-t", topic], stdin=subprocess.PIPE, stderr=subprocess.PIPE)


def mosquitto_pub_file(port: int, topic: str, path: Path) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1", "-t", topic,
                    "-f", str(path)], check=True, timeout=30)


def _settings(brokers, prefix: str, **kw) -> MqttSettings:
    return MqttSettings.from_url(f"mqtt://127.0.0.1:{brokers.mqtt_port}/{prefix}/#?group=g{prefix}"
                                 f"&client_id=c{prefix}", **kw)


async def _publish_lines_and_consume(brokers, registry: Registry, payloads: list[bytes], n: int,
                                     feed: Feed, scored: Scored, prefix: str, on_item=None) -> None:
    pub = mosquitto_pub_lines(brokers.mqtt_port, f"{prefix}/all/environment/mixed")
    try:
        assert pub.stdin is not None
        pub.stdin.write(b"\n".join(payloads) + b"\n")
        pub.stdin.flush()
        await consume(feed, scored, n, timeout=60, on_item=on_item)
    finally:
        if pub.stdin:
            pub.stdin.close()
        pub.wait(timeout=20)
    assert pub.returncode == 0, pub.stderr.read().decode() if pub.stderr else ""


# ---------------------------------------------------------------------------------------------

async def test_compact_readings_from_mosquitto_pub_score_as_embedded_and_reach_the_api(brokers, registry, stream):
    """One reading per message, QoS 1, published by mosquitto_pub; results equal the embedded path's."""
    _need("mosquitto_pub")
    from flask import Flask

    from dashboard.api import register_api
    from ioc.pipeline import Pipeline, PipelineConfig

    prefix = f"t{_unique()}"
    pipeline = Pipeline(registry, PipelineConfig(preroll_hours=0), start=T0)    # fed only from the broker
    scored = Scored(registry)
    payloads = [m.payload for m in encode(stream, registry, "compact")]
    async with MqttSource(_settings(brokers, prefix)) as src:
        feed = Feed(src, registry, last_seen=scored.core.last_seen)

        def to_pipeline(item) -> None:
            pipeline.process(item.batch, item.sim_now, queued_at=item.queued_at)

        await _publish_lines_and_consume(brokers, registry, payloads, len(stream), feed, scored, prefix,
                                         on_item=to_pipeline)
        stats = feed.stats()
    assert stats.readings == len(stream) and stats.deadletters == 0 and stats.duplicates == 0
    assert_same_as_embedded(registry, stream, scored)

    app = Flask("test")
    register_api(app, pipeline)
    client = app.test_client()
    for sid in ("BG-ENV-014", "BG-TRF-001", registry.ids[-1]):
        i = registry.index_of(sid)
        rows = np.flatnonzero(stream.sensor == i)
        body = client.get(f"/api/sensors/{sid}").get_json()
        assert body["last_value"] == pytest.approx(float(stream.value[rows[-1]]))
        ts = np.array(body["recent"]["ts"], dtype=float)
        assert ts[-1] == pytest.approx(float(stream.ts[rows[-1]]), abs=1e-3)
        expected = AnomalyCore(registry).update(stream).score[rows]
        np.testing.assert_allclose(np.array(body["recent"]["score"], dtype=float), expected[-len(ts):], atol=1e-4)
    assert pipeline.snapshot().health.readings_total == len(stream)
    pipeline.close()


async def test_senml_packs_from_mosquitto_pub_score_as_embedded(brokers, registry, stream):
    """SenML packs of 25 readings of one sensor (base name/time/unit), published by mosquitto_pub."""
    _need("mosquitto_pub")
    prefix = f"t{_unique()}"
    scored = Scored(registry)
    messages = encode(stream, registry, "senml", pack=25)
    assert messages[0].payload.startswith(b'[{"bn":')
    async with MqttSource(_settings(brokers, prefix, payload_format="senml")) as src:
        feed = Feed(src, registry, last_seen=scored.core.last_seen)
        await _publish_lines_and_consume(brokers, registry, [m.payload for m in messages], len(stream), feed,
                                         scored, prefix)
        assert feed.stats().messages == len(messages)
    assert_same_as_embedded(registry, stream, scored)


async def test_malformed_corpus_and_a_1mb_message_become_dead_letters(brokers, registry, stream, tmp_path):
    """Every malformed payload lands in the dead-letter file with its reason; readings around are scored."""
    _need("mosquitto_pub")
    expected = json.loads((MALFORMED / "expected.json").read_text())
    big = tmp_path / "big.json"
    big.write_bytes(b'{"id":"BG-ENV-014","ts":1772412000.0,"v":1,"pad":"' + b"x" * 1_000_000 + b'"}')
    prefix = f"t{_unique()}"
    topic = f"{prefix}/bad/environment/BG-ENV-014"
    before, after = stream.take(slice(0, 3000)), stream.take(slice(3000, 6000))
    scored = Scored(registry)
    dead_file = tmp_path / "dead.jsonl"
    async with MqttSource(_settings(brokers, prefix)) as src:
        feed = Feed(src, registry, last_seen=scored.core.last_seen, dead_letters=FileDeadLetters(dead_file))
        await _publish_lines_and_consume(brokers, registry, [m.payload for m in encode(before, registry)],
                                         len(before), feed, scored, prefix)
        for name in expected:
            await asyncio.to_thread(mosquitto_pub_file, brokers.mqtt_port, topic, MALFORMED / name)
        await asyncio.to_thread(mosquitto_pub_file, brokers.mqtt_port, topic, big)
        await _publish_lines_and_consume(brokers, registry, [m.payload for m in encode(after, registry)],
                                         len(before) + len(after), feed, scored, prefix)
        want_dead = sum(e["dead"] for e in expected.values()) + 1
        for _ in range(100):                       # the bad messages may trail the last good ones
            if feed.stats().deadletters >= want_dead:
                break
            await asyncio.sleep(0.05)
        stats = feed.stats()
    assert stats.deadletters == want_dead, stats
    assert scored.core.readings_scored == len(before) + len(after)
    letters = FileDeadLetters(dead_file).file.read_all()
    by_payload: dict[bytes, list] = {}
    for d in letters:
        by_payload.setdefault(d.payload, []).append(d)
    for name, want in expected.items():
        got = by_payload.get((MALFORMED / name).read_bytes(), [])
        assert len(got) == want["dead"], name
        assert all(d.code == want["code"] and d.source == topic for d in got), (name, got)
        assert any(want["reason"] in d.reason for d in got), (name, got)
    huge = by_payload[big.read_bytes()]
    assert len(huge) == 1 and huge[0].code == "too_large" and "1,000,0" in huge[0].reason
    assert stats.deadletters_by_reason["too_large"] == 1


async def test_persistent_session_keeps_readings_published_while_the_consumer_is_away(brokers, registry, stream):
    """Clean start off + session expiry: what is published while we are disconnected arrives afterwards."""
    prefix = f"t{_unique()}"
    settings = _settings(brokers, prefix)
    part = stream.take(slice(0, 4000))
    async with MqttSource(settings):
        pass                                     # subscribe, then go away
    async with MqttPublisher(settings) as pub:
        await pub.publish_many((m.topic, m.payload) for m in encode(part, registry, prefix=prefix))
    scored = Scored(registry)
    async with MqttSource(settings) as src:
        await consume(Feed(src, registry, last_seen=scored.core.last_seen), scored, len(part), timeout=30)
    assert_same_as_embedded(registry, part, scored)


async def test_uncommitted_messages_are_redelivered_and_not_scored_twice(brokers, registry, stream):
    """Close without acknowledging: the broker redelivers; a consumer keeping its core drops them as duplicates."""
    prefix = f"t{_unique()}"
    settings = _settings(brokers, prefix)
    part = stream.take(slice(0, 2000))
    scored = Scored(registry)
    async with MqttSource(settings) as src:
        async with MqttPublisher(settings) as pub:
            await pub.publish_many((m.topic, m.payload) for m in encode(part, registry, prefix=prefix))
        feed = Feed(src, registry, last_seen=scored.core.last_seen)
        async for item in feed:                  # score everything but never commit
            scored.add(item.batch)
            if scored.count >= len(part):
                break
    async with MqttSource(settings) as src:      # same client id: the session comes back
        feed = Feed(src, registry, last_seen=scored.core.last_seen, idle_s=0.5)
        redelivered = 0
        async for item in feed:
            scored.add(item.batch)
            await feed.commit(item)
            redelivered += len(item.delivery.messages)
            if redelivered >= len(part) or (not item.delivery.messages and redelivered):
                break
        assert redelivered == len(part)
        assert feed.stats().duplicates == len(part) and feed.stats().readings == 0
    assert scored.core.readings_scored == len(part)


async def test_shared_subscription_splits_the_stream_between_workers(brokers, registry, stream):
    """Two workers in one group ($share/<group>/…) each get part of the stream, together all of it, once."""
    prefix = f"t{_unique()}"
    part = stream.take(slice(0, 4000))
    s1 = _settings(brokers, prefix, client_id=f"w1{prefix}")
    s2 = _settings(brokers, prefix, client_id=f"w2{prefix}")
    assert s1.subscription == f"$share/g{prefix}/{prefix}/#"
    seen: list[list[bytes]] = [[], []]
    async with MqttSource(s1) as w1, MqttSource(s2) as w2:
        async def worker(src: MqttSource, k: int) -> None:
            async for d in src.deliveries(idle_s=0.3):
                seen[k].extend(p for _, p in d.messages)
                await src.commit(d)
                if len(seen[0]) + len(seen[1]) >= len(part):
                    return

        async with MqttPublisher(s1) as pub:
            await pub.publish_many((m.topic, m.payload) for m in encode(part, registry, prefix=prefix))
        await asyncio.wait_for(asyncio.gather(worker(w1, 0), worker(w2, 1)), 30)
    assert len(seen[0]) > 0 and len(seen[1]) > 0
    assert sorted(seen[0] + seen[1]) == sorted(m.payload for m in encode(part, registry))


async def test_unreachable_broker_and_bad_addresses_are_one_line_errors(brokers):
    from ioc.brokers import free_port

    port = free_port()
    with pytest.raises(MqttError, match=rf"cannot connect to mqtt://127\.0\.0\.1:{port}"):
        async with MqttSource(MqttSettings(port=port)):
            pass
    with pytest.raises(MqttError, match="not an MQTT address"):
        MqttSettings.from_url("http://127.0.0.1:1883")
    with pytest.raises(MqttError, match="unknown option 'grp'"):
        MqttSettings.from_url("mqtt://127.0.0.1:1883?grp=x")
    with pytest.raises(MqttError, match="topic filter"):
        MqttSettings.from_url("mqtt://127.0.0.1:1883/city/#/x")
