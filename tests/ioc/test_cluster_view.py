"""A dashboard node of a cluster (:class:`ioc.cluster_view.ClusterView`) against the real Kafka and PostgreSQL:
every sensor from the scored stream, each reading once, the alerts and the operators' actions through the store."""
from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from ingest.formats.scores import Scored, encode
from ingest.kafka import KafkaSettings, KafkaSink
from ioc.alerting.store import AlertStore
from ioc.alerting.wiring import build_alerting
from ioc.cluster_view import ClusterView
from processing.alerts import AlertError
from processing.batch import ReadingBatch
from processing.core import Scores

pytestmark = pytest.mark.integration

T0 = 1772412000.0


def _rec(partition: int, sensors: list[int], ts: float, alert: bool = False, worker: str = "w1") -> Scored:
    n = len(sensors)
    return Scored(partition, 0, 1, worker, np.array(sensors, np.int32), np.full(n, ts), np.arange(n, dtype=float),
                  np.full(n, 0.9 if alert else 0.1, np.float32), np.full(n, alert), np.zeros(n, np.uint16))


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_view_shows_every_sensor_once_and_acts_through_the_alerting_owner(brokers, pg_schema):
    from live import make_topics
    from scored_feeds import city_registry

    registry = city_registry()
    n = len(registry)
    uid = uuid.uuid4().hex[:8]
    await make_topics(brokers.kafka_bootstrap, (f"r{uid}", 3), (f"s{uid}", 3))
    settings = KafkaSettings.from_url(f"{brokers.kafka_url}?topic=r{uid}&scores=s{uid}")
    half = list(range(0, n, 2)), list(range(1, n, 2))
    async with KafkaSink(settings) as sink:          # before the view starts: read back from the window
        await sink.send(settings.scores_topic, encode(_rec(0, half[0], T0)), partition=0)
        await sink.flush()
    owner_store = AlertStore(pg_schema)
    owner, _ = build_alerting(registry, None, store=owner_store)      # the alerting owner's service
    # an alert in the store, as the owner makes it from the evidence
    batch = ReadingBatch.from_arrays([3, 3], [T0, T0 + 60], [50.0, 60.0])
    owner.step(batch, Scores(np.array([0.9, 0.9]), np.array([True, True]), np.zeros(2, np.uint16)), None, T0 + 60)
    (aid,) = [r.id for r in owner.open_alerts()]
    view_store = AlertStore(pg_schema)
    service, _ = build_alerting(registry, None, store=view_store)
    view = ClusterView(registry, settings, service, command_wait_s=3.0)
    view.start()
    try:
        _wait(view.ready.is_set, 30, "the view to read back the window")
        async with KafkaSink(settings) as sink:
            await sink.send(settings.scores_topic, encode(_rec(1, half[1], T0)), partition=1)
            # a hand-over publishes a range again (same values), then new readings
            await sink.send(settings.scores_topic, encode(_rec(0, half[0], T0, worker="w2")), partition=0)
            await sink.send(settings.scores_topic, encode(_rec(1, [5, 7], T0 + 60, alert=True)), partition=1)
            await sink.send(settings.scores_topic, b"not a scores record", partition=2)
            await sink.flush()
        try:
            snap = _wait(lambda: (s := view.snapshot()).health.readings_total == n + 2 and s, 10, "every reading")
        except AssertionError:
            raise AssertionError(f"{view.snapshot().health} {view.view.readings} of {n + 2}")
        assert snap.health.readings_total == n + 2                  # the copies were not counted again
        assert snap.kpis.never == 0 and snap.kpis.total == n
        assert snap.status[5] == 2 and snap.status[7] == 2 and snap.status[0] == 0
        assert snap.metrics.deadletters_total == 1
        assert view.recent(5)["ts"].tolist() == [T0, T0 + 60]
        assert [a.id for a in snap.alerts] == [aid] and snap.alert_info[aid].team
        assert view.cap_xml(aid).startswith("<?xml")
        # an operator's action waits for the alerting owner; none running: said plainly
        with pytest.raises(AlertError, match="has not applied it"):
            view.acknowledge(aid, "Lan", "đang xử lý", role="duty", address="10.0.0.7")
        stop = threading.Event()

        def run_owner() -> None:
            while not stop.is_set():
                owner.tick(T0 + 120)
                stop.wait(0.1)
        th = threading.Thread(target=run_owner, daemon=True)
        th.start()
        try:
            a = view.acknowledge(aid, "Lan", "đang xử lý", role="duty", address="10.0.0.7")
            assert a.state == "acknowledged" and a.acknowledged_by == "Lan"
            with pytest.raises(AlertError, match="no alert 999"):
                view.resolve(999, "Lan")
        finally:
            stop.set()
            th.join(5)
        audit = [e for e in view_store.audit_log() if e.action == "acknowledge"]
        assert [(e.actor, e.role, e.address) for e in audit][0] == ("Lan", "duty", "10.0.0.7")
        assert _wait(lambda: view.snapshot().alerts[0].state == "acknowledged", 5, "the display to show it")
    finally:
        view.close()
        view_store.close()
        owner_store.close()


async def test_a_node_keeps_the_history_and_a_restart_reads_on_where_it_stopped(brokers, pg_schema, tmp_path):
    """With --history-dir a node keeps every reading it reads, once; a restarted node reads the stream on
    from the offsets its history holds, though they are older than its read-back window."""
    from ioc.history import HistoryStore
    from live import make_topics
    from scored_feeds import city_registry

    registry = city_registry()
    n = len(registry)
    t0 = float(int(time.time()) // 60 * 60 - 3600)     # recent: kept within the history's retention
    uid = uuid.uuid4().hex[:8]
    await make_topics(brokers.kafka_bootstrap, (f"r{uid}", 2), (f"s{uid}", 2))
    settings = KafkaSettings.from_url(f"{brokers.kafka_url}?topic=r{uid}&scores=s{uid}")
    half = list(range(0, n, 2)), list(range(1, n, 2))
    folder = tmp_path / "history"
    store = AlertStore(pg_schema)
    service, _ = build_alerting(registry, None, store=store)

    def node(window_s: float) -> ClusterView:
        history = HistoryStore(folder, registry.ids, flush_s=0.2)
        return ClusterView(registry, settings, service, window_s=window_s, history=history)

    async def publish(minute: int, *, again: bool = False) -> None:
        async with KafkaSink(settings) as sink:
            for p in (0, 1):
                await sink.send(settings.scores_topic, encode(_rec(p, half[p], t0 + 60 * minute, alert=minute == 3,
                                                                   worker="w2" if again else "w1")), partition=p)
            await sink.flush()

    first = node(3600.0)
    first.start()
    try:
        _wait(first.ready.is_set, 30, "the first node to read back")
        for minute in range(3):
            await publish(minute)
        await publish(2, again=True)                    # a hand-over publishes the last minute again
        _wait(lambda: first.view.readings == 3 * n, 10, "three minutes of readings")
        assert first.history_extent() == (t0, t0 + 120)
    finally:
        first.close()
    for minute in (3, 4):                               # published while no node runs
        await publish(minute)
    time.sleep(2.5)
    second = node(1.0)                                  # its window alone would not reach them
    second.start()
    try:
        _wait(second.ready.is_set, 30, "the restarted node to read back")
        _wait(lambda: second.history_extent() == (t0, t0 + 240), 10, "the history to read on")
        r = second.history_store.readings(t0 - 1, t0 + 600)
        pairs = set(zip(r.sensor.tolist(), r.ts.tolist()))
        assert len(r) == len(pairs) == 5 * n           # every reading once: none lost, none kept twice
        d = second.history(registry.ids[0], t0 - 60, t0 + 300, 100)
        assert d.ts.tolist() == [t0 + 60 * m for m in range(5)] and d.alert.tolist() == [False] * 3 + [True, False]
        past = second.snapshot_at(t0 + 180)             # the city at minute 3, from the node's history
        assert (past.status[:4] == 2).all() and past.sim_time == t0 + 180
        assert second.snapshot_at(t0 + 240).status[0] != 2
    finally:
        second.close()
        store.close()
