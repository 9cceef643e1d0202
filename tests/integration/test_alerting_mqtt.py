"""The cluster's alerting owner sends the teams' MQTT alert topics (``ioc alerting --mqtt``) on the real
Mosquitto, beside Kafka's ``ioc.alerts``; an edge broker that cannot be reached holds up nothing else."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from ingest.kafka import KafkaSettings
from ioc.alert_owner import AlertOwner
from ioc.alerting.store import AlertStore
from live import free_port, make_topics, wait_for
from scored_feeds import city_registry, publish_flagged

pytestmark = pytest.mark.integration

FLAGGED = 3                     # a traffic sensor: the traffic team's topic ioc/alerts/giao_thong


async def _evidence(settings: KafkaSettings, registry, t0: float) -> None:
    await publish_flagged(settings, registry, t0, steps=3, partitions=3, flagged=FLAGGED,
                          topics=(settings.events_topic,))


async def _owner_until(owner: AlertOwner, done, what: str, timeout: float = 60.0):
    stop = asyncio.Event()
    task = asyncio.ensure_future(owner.run(stop))
    try:
        return await asyncio.to_thread(wait_for, lambda: task.done() or done(), timeout, what)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)            # and it stopped cleanly (a failure raises here)


async def test_the_owner_sends_the_teams_mqtt_topics_too(brokers, pg_schema) -> None:
    registry = city_registry()
    uid = uuid.uuid4().hex[:8]
    await make_topics(brokers.kafka_bootstrap, (f"r{uid}", 3), (f"e{uid}", 3))
    settings = KafkaSettings.from_url(f"{brokers.kafka_url}?topic=r{uid}&events=e{uid}")
    got: list[tuple[str, dict]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"owner-alerts-{uid}")
    sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("ioc/alerts/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p=None: subscribed.set()
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", brokers.mqtt_port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        await _evidence(settings, registry, time.time() - 300)
        owner = AlertOwner(registry, settings, pg_schema, name="mqtt-test", environ={},
                           mqtt_url=f"mqtt://127.0.0.1:{brokers.mqtt_port}")
        with AlertStore(pg_schema) as store:
            def sent() -> list:
                return [d for d in store.deliveries() if d.channel == "mqtt" and d.status == "sent"]
            (d,) = await _owner_until(owner, lambda: got and sent(), "the alert on ioc/alerts/#")
            (alert,) = store.alerts(["open"])
        assert alert.alert.sensor == FLAGGED and d.address == "ioc/alerts/giao_thong" and d.attempts == 1
        assert [t for t, _ in got] == ["ioc/alerts/giao_thong"]
        doc = got[0][1]
        assert doc["alert"]["id"] == alert.id and doc["alert"]["sensor_id"] == registry.ids[FLAGGED]
        assert doc["idempotency_key"] == d.key and doc["msg_type"] == "Alert"
    finally:
        sub.loop_stop()
        sub.disconnect()


async def test_an_edge_broker_that_cannot_be_reached_holds_up_nothing_else(brokers, pg_schema) -> None:
    registry = city_registry()
    uid = uuid.uuid4().hex[:8]
    await make_topics(brokers.kafka_bootstrap, (f"r{uid}", 3), (f"e{uid}", 3))
    settings = KafkaSettings.from_url(f"{brokers.kafka_url}?topic=r{uid}&events=e{uid}")
    await _evidence(settings, registry, time.time() - 300)
    owner = AlertOwner(registry, settings, pg_schema, name="no-edge", environ={},
                       mqtt_url=f"mqtt://127.0.0.1:{free_port()}")           # nothing listens there
    with AlertStore(pg_schema) as store:
        def kafka_sent() -> list:
            return [d for d in store.deliveries() if d.channel == "kafka" and d.status == "sent"]
        await _owner_until(owner, kafka_sent, "the alert on Kafka's ioc.alerts")
        (alert,) = store.alerts(["open"])
        (m,) = [d for d in store.deliveries() if d.channel == "mqtt"]
    assert alert.alert.sensor == FLAGGED
    assert m.status == "pending" and "not connected" in m.last_error      # waits to be retried, not dropped
