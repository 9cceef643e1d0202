"""The alerting owner's step, without brokers: evidence records in, alerts and the horizon out, copies dropped."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from aiokafka import TopicPartition

from ingest.formats.scores import Scored, encode
from ingest.kafka import KafkaSettings
from ingest.kafka.partitions import partition_of
from ioc.alert_owner import AlertOwner, lead_key
from ioc.alerting.store import AlertStore, StoreError
from ioc.alerting.wiring import build_alerting
from processing.alerting.evidence import EvidenceLedger
from processing.registry import Registry

T0 = 1772412000.0


@dataclass
class Msg:
    offset: int
    value: bytes


def _rec(p: int, sensors, ts: float, alert: bool) -> bytes:
    s = np.asarray(sensors, np.int32)
    return encode(Scored(p, 0, 1, "w1", s, np.full(s.size, ts), np.full(s.size, 50.0),
                         np.full(s.size, 0.95 if alert else 0.1, np.float32), np.full(s.size, alert),
                         np.full(s.size, 1 if alert else 0, np.uint16)))


@pytest.fixture
def owner():
    from ioc.citydata import default_city_dir, load_registry

    registry: Registry = load_registry(default_city_dir() / "sensors.geojson")
    o = AlertOwner(registry, KafkaSettings(topic="r", events_topic="e"), "unused", name="t", quiet_older_than_s=None)
    store = AlertStore(":memory:")
    o.service, _ = build_alerting(registry, None, channels={}, store=store)
    o.ledger = EvidenceLedger(partition_of(registry.ids, 6), partitions=6)
    yield o, registry
    store.close()


def test_evidence_opens_an_alert_and_the_horizon_says_where_the_stream_stood(owner):
    o, registry = owner
    i = 3
    p = int(partition_of([registry.ids[i]], 6)[0])
    tp = TopicPartition("e", p)
    recs, dead = o._take({tp: [Msg(0, _rec(p, [i], T0, False)), Msg(1, _rec(p, [i], T0 + 300, True)),
                              Msg(2, _rec(p, [i], T0 + 600, True))]})
    assert not dead and o.stats.rows == 0
    o._step(recs, behind=False)
    (alert,) = o.service.open_alerts()
    assert alert.alert.sensor == i and alert.alert.readings == 2 and alert.alert.opened_at == T0 + 300
    horizon = o.service.store.horizon()
    assert horizon["source"] == "kafka:e" and horizon["offsets"] == {str(p): 3} and horizon["owner"] == "t"
    back = EvidenceLedger.from_state(partition_of(registry.ids, 6), 6, horizon["ledger"])
    assert back.seen[i] == T0 + 600


def test_a_range_published_again_is_dropped_and_bad_records_are_dead_letters(owner):
    o, registry = owner
    i = 3
    p = int(partition_of([registry.ids[i]], 6)[0])
    tp = TopicPartition("e", p)
    first = [Msg(0, _rec(p, [i], T0, True)), Msg(1, _rec(p, [i], T0 + 300, True))]
    o._step(o._take({tp: first})[0], behind=False)
    # a worker's hand-over publishes both again, then a new reading; and a broken record
    again, dead = o._take({tp: [Msg(2, _rec(p, [i], T0, True)), Msg(3, _rec(p, [i], T0 + 300, True)),
                                Msg(4, _rec(p, [i], T0 + 600, True)), Msg(5, b"garbage")]})
    o._step(again, behind=False)
    assert o.stats.copies == 2
    (alert,) = o.service.open_alerts()
    assert alert.alert.readings == 3                     # each flagged reading counted once
    (letter,) = dead
    assert letter.code == "bad-evidence" and letter.source == f"e:{p}@5" and "shorter" in letter.reason
    other = _rec(p, [len(registry) + 5], T0, True)       # a sensor index this registry does not have
    _, dead = o._take({tp: [Msg(6, other)]})
    assert "another sensor registry" in dead[0].reason


def test_nothing_read_yet_means_no_step_and_sqlite_cannot_lead(owner, tmp_path):
    o, _ = owner
    o._step([], behind=False)                            # no clock yet: nothing recorded
    assert o.service.store.horizon() is None
    with AlertStore(tmp_path / "a.sqlite3") as local:
        with pytest.raises(StoreError, match="needs the PostgreSQL alert store"):
            local.try_lead(lead_key("e"))
    assert lead_key("e") != lead_key("f") and -2**63 <= lead_key("e") < 2**63
