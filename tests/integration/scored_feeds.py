"""What the ingest integration tests check a broker-fed consumer with: everything it scored,
compared with the embedded path on the same readings.

Imported as a top-level module (``pythonpath`` in pyproject.toml puts this folder on the path)."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import numpy as np
import pytest

from ingest.sources import Feed
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.registry import Registry


def city_registry() -> Registry:
    from ioc.citydata import default_city_dir, load_registry

    return load_registry(default_city_dir() / "sensors.geojson")


class Scored:
    """Everything a consumer scored, in arrival order."""

    def __init__(self, registry: Registry) -> None:
        self.core = AnomalyCore(registry)
        self.parts: list[tuple[ReadingBatch, Any]] = []

    @property
    def count(self) -> int:
        return sum(len(b) for b, _ in self.parts)

    def add(self, batch: ReadingBatch) -> None:
        if len(batch):
            self.parts.append((batch, self.core.update(batch)))

    def sorted(self) -> tuple[ReadingBatch, np.ndarray, np.ndarray, np.ndarray]:
        batch = ReadingBatch.concat(b for b, _ in self.parts)
        score = np.concatenate([s.score for _, s in self.parts])
        alert = np.concatenate([s.alert for _, s in self.parts])
        reasons = np.concatenate([s.reasons for _, s in self.parts])
        o = np.lexsort((batch.ts, batch.sensor))
        return batch.take(o), score[o], alert[o], reasons[o]


def assert_same_as_embedded(registry: Registry, sent: ReadingBatch, got: Scored) -> None:
    """The broker path scored exactly the readings sent, with the embedded path's results."""
    expected = AnomalyCore(registry).update(sent)
    o = np.lexsort((sent.ts, sent.sensor))
    batch, score, alert, reasons = got.sorted()
    assert got.core.readings_scored == len(sent), "a reading was lost or scored twice"
    np.testing.assert_array_equal(batch.sensor, sent.sensor[o])
    np.testing.assert_array_equal(batch.ts, sent.ts[o])
    np.testing.assert_array_equal(batch.value, sent.value[o])
    np.testing.assert_array_equal(score, expected.score[o])
    np.testing.assert_array_equal(alert, expected.alert[o])
    np.testing.assert_array_equal(reasons, expected.reasons[o])
    assert alert.sum() > 0, "the labelled stream should raise alerts"


async def consume(feed: Feed, scored: Scored, n: int, timeout: float,
                  on_item: Callable[[Any], None] | None = None) -> None:
    """Score and commit until ``n`` readings were scored (or fail after ``timeout`` s)."""
    async def run() -> None:
        async for item in feed:
            scored.add(item.batch)
            if on_item is not None:
                on_item(item)
            await feed.commit(item)
            if scored.count >= n:
                return
    try:
        await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"only {scored.count} of {n} readings arrived within {timeout} s; stats {feed.stats()}")


async def publish_flagged(settings: Any, registry: Registry, t0: float, *, steps: int, partitions: int,
                          flagged: int, topics: tuple[str, ...]) -> None:
    """What scoring workers publish for a city: each sensor's reading per minute step on its partition,
    as scores records on ``topics``; sensor ``flagged`` in alert from the second step."""
    from ingest.formats.scores import Scored, encode
    from ingest.kafka import KafkaSink
    from ingest.kafka.partitions import partition_of

    part = partition_of(registry.ids, partitions)
    async with KafkaSink(settings) as sink:
        for k in range(steps):
            for p in range(partitions):
                s = np.flatnonzero(part == p).astype(np.int32)
                alert = (s == flagged) & (k >= 1)
                rec = Scored(p, k, k + 1, "w1", s, np.full(s.size, t0 + 60 * k), np.full(s.size, 10.0 + k),
                             np.where(alert, 0.95, 0.1).astype(np.float32), alert,
                             np.where(alert, 1, 0).astype(np.uint16))
                for topic in topics:
                    await sink.send(topic, encode(rec), partition=p)
        await sink.flush()
