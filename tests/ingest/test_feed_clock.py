"""The feed's event-time clock: it follows the readings, and an idle tick never starts it at
today's wall clock while a backlog of old records is still to come (a restart replaying a topic)."""
from __future__ import annotations

from typing import AsyncIterator

import numpy as np
import pytest

from ingest.formats import encode
from ingest.sources import Delivery, Feed
from processing.batch import ReadingBatch
from processing.registry import Registry

T_DATA = 1_772_384_400.0        # the records' time: a day before the wall clock below
WALL = T_DATA + 86_400.0


class FakeSource:
    """Deliveries as a scripted broker hands them out (a unit-test stand-in, not an integration fake)."""

    name = "fake://topic"
    formats = None

    def __init__(self, deliveries: list[Delivery]) -> None:
        self._deliveries = deliveries

    async def deliveries(self, idle_s: float | None = None) -> AsyncIterator[Delivery]:
        for d in self._deliveries:
            yield d

    async def commit(self, delivery: Delivery) -> None:
        return None


def _record(reg: Registry, i: int, ts: float) -> tuple[str, bytes]:
    (msg,) = encode(ReadingBatch.from_arrays([i], [ts], [1.0]), reg)
    return msg.topic, msg.payload


async def _clocks(feed: Feed) -> list[tuple[float, bool, int]]:
    return [(item.sim_now, item.behind, len(item.batch)) async for item in feed.items()]


@pytest.mark.asyncio
async def test_an_idle_tick_while_behind_does_not_start_the_clock_at_the_wall() -> None:
    reg = Registry.synthetic(2)
    src = FakeSource([Delivery((), WALL, {}, behind=True),          # the first fetch has not answered yet
                      Delivery([_record(reg, 0, T_DATA)], WALL, {}, behind=True),
                      Delivery([_record(reg, 1, T_DATA + 60)], WALL, {}, behind=False),
                      Delivery((), WALL, {}, behind=False)])         # caught up: the idle heartbeat
    wall = iter([WALL, WALL + 1.0, WALL + 2.0, WALL + 3.0])
    got = await _clocks(Feed(src, reg, clock=lambda: next(wall)))   # type: ignore[arg-type]
    assert got == [(T_DATA, True, 1), (T_DATA + 60, False, 1), (T_DATA + 61, False, 0)]


@pytest.mark.asyncio
async def test_an_idle_start_resumes_from_the_newest_reading_the_core_holds() -> None:
    reg = Registry.synthetic(3)
    held = np.array([T_DATA - 60, np.nan, T_DATA])                   # restored from a checkpoint
    src = FakeSource([Delivery((), WALL, {}, behind=False)])
    got = await _clocks(Feed(src, reg, last_seen=lambda: held, clock=lambda: WALL))   # type: ignore[arg-type]
    assert got == [(T_DATA, False, 0)]


@pytest.mark.asyncio
async def test_a_cold_idle_start_is_live_it_starts_at_the_wall_clock() -> None:
    reg = Registry.synthetic(1)
    src = FakeSource([Delivery((), WALL, {}, behind=False)])
    held = np.full(1, np.nan)
    got = await _clocks(Feed(src, reg, last_seen=lambda: held, clock=lambda: WALL))   # type: ignore[arg-type]
    assert got == [(WALL, False, 0)]
