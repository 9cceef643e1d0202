"""A dashboard node's history bookkeeping, without brokers: the offsets it holds up to, and a reading
kept once per sensor and time whatever the stream delivers twice (the Kafka side is in
test_cluster_view.py)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from ingest.formats.scores import Scored
from ingest.kafka import KafkaSettings
from ioc.alerting.store import AlertStore
from ioc.alerting.wiring import build_alerting
from ioc.cluster_view import POSITION_FILE, ClusterView
from ioc.history import HistoryStore
from processing.registry import Registry

T0 = 1772412000.0


@pytest.fixture
def node(tmp_path):
    registry = Registry.synthetic(4)
    store = AlertStore(tmp_path / "alerts.db")
    service, _ = build_alerting(registry, None, store=store)
    history = HistoryStore(tmp_path / "history", registry.ids)
    view = ClusterView(registry, KafkaSettings.from_url("kafka://127.0.0.1:9?scores=s1"), service, history=history)
    try:
        yield view
    finally:
        history.close()
        store.close()


def _rec(sensors: list[int], ts: list[float]) -> Scored:
    n = len(sensors)
    return Scored(0, 0, 1, "w1", np.array(sensors, np.int32), np.array(ts), np.arange(n, dtype=float),
                  np.full(n, 0.1, np.float32), np.zeros(n, bool), np.zeros(n, np.uint16))


def test_the_offsets_the_history_holds_up_to_are_saved_and_read_back(node) -> None:
    assert node._stored_positions() == {}                        # none yet: the window only
    node._save_positions({1: 40, 0: 12})
    assert node._stored_positions() == {0: 12, 1: 40}
    other = ClusterView(node.registry, KafkaSettings.from_url("kafka://127.0.0.1:9?scores=s2"), node.service,
                        history=node.history_store)
    assert other._stored_positions() == {}                       # another topic's offsets are not these


def test_an_unreadable_offsets_file_is_one_warning_and_the_window_only(node, caplog) -> None:
    (node.history_store.folder / POSITION_FILE).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="ioc.dashboard"):
        assert node._stored_positions() == {}
    (msg,) = [r.getMessage() for r in caplog.records]
    assert POSITION_FILE in msg and "reading back 3600 s only" in msg


def test_a_reading_is_kept_once_whatever_comes_twice(node) -> None:
    node._keep(_rec([0, 1, 0], [T0, T0, T0 + 60]))
    node._keep(_rec([0, 1, 2], [T0 + 60, T0, T0]))              # a hand-over's copies, and sensor 2 new
    node._keep(_rec([0], [T0 + 30]))                             # older than sensor 0's newest: not kept
    r = node.history_store.readings(T0 - 1, T0 + 120)
    assert sorted(zip(r.sensor.tolist(), r.ts.tolist())) == [(0, T0), (0, T0 + 60), (1, T0), (2, T0)]


def test_a_restarted_node_knows_what_its_history_holds(node, tmp_path) -> None:
    node._keep(_rec([0, 1], [T0, T0 + 60]))
    node.history_store.flush()
    again = ClusterView(node.registry, node.settings, node.service,
                        history=HistoryStore(tmp_path / "history", node.registry.ids))
    try:
        again._keep(_rec([0, 1, 1], [T0, T0 + 60, T0 + 120]))   # what the stream brings again, and one new
        r = again.history_store.readings(T0 - 1, T0 + 600)
        assert sorted(zip(r.sensor.tolist(), r.ts.tolist())) == [(0, T0), (1, T0 + 60), (1, T0 + 120)]
    finally:
        again.history_store.close()
