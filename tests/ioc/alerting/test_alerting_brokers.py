"""Alert deliveries on the real brokers: the MQTT topic (ingest's MqttPublisher) and the Kafka topic
``ioc.alerts`` (ingest's KafkaSink), through the dispatcher's topic channel adapters."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import AsyncIterator

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.kafka import KafkaSettings, KafkaSink
from ingest.mqtt import MqttPublisher, MqttSettings
from ioc.alerting.channels import KafkaTopicPublisher, MqttTopicPublisher, TopicChannel
from ioc.alerting.dispatcher import AlertService, Dispatcher
from ioc.alerting.store import AlertStore
from ioc.alerting.wiring import UnconfiguredChannel, build_alerting
from ioc.citydata import default_city_dir, load_registry
from ioc.alerting import load_config
from ioc.pipeline import Pipeline, PipelineConfig
from processing.batch import ReadingBatch
from processing.reasons import Reason

pytestmark = pytest.mark.integration
CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
CFG = load_config(CITY / "alerting.toml")
T0 = 1772413200.0          # 2026-03-02 08:00 +07:00 (Monday)


def _one_alert(svc: AlertService) -> None:
    """BG-TRF-001 far off its baseline at T0: one alert for the traffic team."""
    class S:
        alert = np.array([True])
        score = np.array([0.9])
        reasons = np.array([int(Reason.DEVIATION)], dtype=np.uint16)
    svc.step(ReadingBatch.from_arrays([0], [T0], [900.0]), S, None, T0)


@contextlib.asynccontextmanager
async def _alert_subscriber(port: int, uid: str) -> AsyncIterator[list[tuple[str, dict]]]:
    """A paho client on ``ioc/alerts/#``, subscribed (SUBACK) before this yields what it receives."""
    got: list[tuple[str, dict]] = []
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"alert-test-{uid}")
    sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("ioc/alerts/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p=None: ready.set()       # SUBACK: the subscription holds
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    try:
        assert await asyncio.to_thread(ready.wait, 10)
        yield got
    finally:
        sub.loop_stop()
        sub.disconnect()


async def test_an_alert_raised_as_the_source_stops_still_goes_out_before_its_publisher_closes(
        brokers, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:6]
    alerting, dispatcher = build_alerting(REG, tmp_path)
    pipeline = Pipeline(REG, PipelineConfig(preroll_hours=0.0), alerting=alerting, dispatcher=dispatcher)
    pipeline.start_delivery()
    try:
        async with _alert_subscriber(brokers.mqtt_port, uid) as got:
            async with contextlib.AsyncExitStack() as stack:     # what run_source holds while it runs
                await pipeline._alert_topics_on(f"mqtt://127.0.0.1:{brokers.mqtt_port}/city/#", stack)
                _one_alert(alerting)                             # ... and the source stops right after
            (d,) = [d for d in alerting.store.deliveries() if d.channel == "mqtt"]
            assert (d.status, d.attempts) == ("sent", 1)
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert [t for t, _ in got] == ["ioc/alerts/giao_thong"]
        assert isinstance(dispatcher.channels["mqtt"], UnconfiguredChannel)   # given back to the embedded one
    finally:
        pipeline.close()


async def test_an_alert_reaches_the_mqtt_topic_and_kafka_ioc_alerts(brokers, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:6]
    async with _alert_subscriber(brokers.mqtt_port, uid) as got:
        mqtt_settings = MqttSettings(host="127.0.0.1", port=brokers.mqtt_port, client_id=f"alert-pub-{uid}")
        kafka_settings = KafkaSettings(bootstrap=brokers.kafka_bootstrap)
        async with MqttPublisher(mqtt_settings) as pub, KafkaSink(kafka_settings) as sink:
            loop = asyncio.get_running_loop()
            store = AlertStore.in_folder(tmp_path)
            disp = Dispatcher(store, {"mqtt": TopicChannel(MqttTopicPublisher(pub)),
                                      "kafka": TopicChannel(KafkaTopicPublisher(sink, loop))}, CFG.delivery)
            _one_alert(AlertService(REG, CFG, store))
            await asyncio.to_thread(disp.run_once, T0)            # the Kafka adapter needs the loop free
            await sink.flush()
            counts = store.delivery_counts()
            assert counts["sent"] == 2                            # officers' webhook/e-mail have no channel here
            for _ in range(50):
                if got:
                    break
                await asyncio.sleep(0.1)
        assert [t for t, _ in got] == ["ioc/alerts/giao_thong"]
        assert got[0][1]["alert"]["sensor_id"] == "BG-TRF-001" and got[0][1]["msg_type"] == "Alert"
        consumer = AIOKafkaConsumer("ioc.alerts", bootstrap_servers=brokers.kafka_bootstrap,
                                    auto_offset_reset="earliest", group_id=f"alert-test-{uid}")
        await consumer.start()
        try:
            # the topic holds earlier tests' alerts too, and one fetch returns only part of it:
            # read to its end (an empty fetch after records), where this test's alert is the last
            mine: list[dict] = []
            seen = 0
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline:
                records = await consumer.getmany(timeout_ms=1000)
                values = [json.loads(r.value) for batch in records.values() for r in batch]
                if not values and seen:
                    break
                seen += len(values)
                mine += [v for v in values if v.get("idempotency_key", "").endswith(":kafka:ioc.alerts")
                         and v["alert"]["sensor_id"] == "BG-TRF-001"]
            assert mine and mine[-1]["cap"].startswith("<?xml")
        finally:
            await consumer.stop()


async def test_an_mqtt_alert_counts_as_sent_only_once_the_broker_acknowledged_it(tmp_path: Path) -> None:
    """A hung broker (a real Mosquitto stopped with SIGSTOP: the connection stays, no PUBACK comes)
    leaves the delivery pending with its reason; once it answers again, the retry is sent."""
    import os
    import signal

    from ioc.brokers import BrokerSet

    own = BrokerSet.on_free_ports(tmp_path / "brokers")            # a Mosquitto of this test's own
    await asyncio.to_thread(own.start, "mqtt")
    try:
        uid = uuid.uuid4().hex[:6]
        got: list[dict] = []
        subscribed = threading.Event()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hung-sub-{uid}")
        sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("ioc/alerts/#", qos=1)
        sub.on_subscribe = lambda c, u, mid, rcs, p=None: subscribed.set()
        sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
        sub.connect("127.0.0.1", own.mqtt_port)
        sub.loop_start()
        try:
            assert await asyncio.to_thread(subscribed.wait, 10)
            settings = MqttSettings(host="127.0.0.1", port=own.mqtt_port, client_id=f"hung-pub-{uid}")
            async with MqttPublisher(settings) as pub:
                store = AlertStore.in_folder(tmp_path / "alerts")
                disp = Dispatcher(store, {"mqtt": TopicChannel(MqttTopicPublisher(pub, timeout_s=1.0))},
                                  CFG.delivery)
                _one_alert(AlertService(REG, CFG, store))
                pid = own.pids()["mqtt"]
                assert pid is not None
                os.kill(pid, signal.SIGSTOP)
                try:
                    assert await asyncio.to_thread(disp.run_once, T0) == 0
                finally:
                    os.kill(pid, signal.SIGCONT)
                (d,) = [d for d in store.deliveries() if d.channel == "mqtt"]
                assert d.status == "pending" and "no PUBACK" in d.last_error and d.attempts == 1
                assert store.delivery_counts()["sent"] == 0
                assert await asyncio.to_thread(disp.run_once, T0 + 3600.0) == 1          # the retry, answered
                (d,) = [d for d in store.deliveries() if d.channel == "mqtt"]
                assert d.status == "sent" and d.attempts == 2
                deadline = time.monotonic() + 10.0
                while len(got) < 2 and time.monotonic() < deadline:   # the late first copy and the retry
                    await asyncio.sleep(0.05)
            assert {g["idempotency_key"] for g in got} == {d.key} and 1 <= len(got) <= 2
        finally:
            sub.loop_stop()
            sub.disconnect()
    finally:
        await asyncio.to_thread(own.stop, "mqtt")
