"""The simulated city as a live feed, without the pipeline: one item per tick at the simulated time
of the injected clock, the advance reported, stop and errors ending the iteration."""
from __future__ import annotations

import asyncio

import pytest

from ioc.simulated_feed import SimulatedFeed, wait_or_stop
from processing.batch import ReadingBatch


class Stream:
    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[float] = []
        self.fail_at = fail_at

    def advance(self, now: float):
        self.calls.append(now)
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RuntimeError("the simulator broke")
        k = len(self.calls)
        return ReadingBatch.from_arrays([0] * k, [now] * k, [float(k)] * k), [f"label{k}"]


def make(stream: Stream, stop: asyncio.Event, seen: list) -> tuple[SimulatedFeed, list[float]]:
    wall = [1000.0]

    async def sleep(seconds: float) -> None:        # the injected sleep moves the injected clock
        wall[0] += seconds
        await asyncio.sleep(0)
    feed = SimulatedFeed(stream, stop, clock=lambda: wall[0], sim_time_at=lambda w: 60.0 * (w - 1000.0),
                         sleep=sleep, tick_s=0.5, queue_size=2, on_advance=lambda s, labels: seen.extend(labels))
    return feed, wall


async def test_one_item_per_tick_at_the_simulated_time_until_stop() -> None:
    stop, seen = asyncio.Event(), []
    stream = Stream()
    feed, _ = make(stream, stop, seen)
    items = []
    async for item in feed:
        items.append(item)
        await feed.commit(item)
        if len(items) == 4:
            stop.set()
    assert [i.sim_now for i in items[:4]] == [0.0, 30.0, 60.0, 90.0]    # ×60: 0.5 wall s = 30 simulated s
    assert [len(i.batch) for i in items[:4]] == [1, 2, 3, 4] and seen[:4] == ["label1", "label2", "label3", "label4"]
    assert await feed.positions() == {}
    await feed.aclose()


async def test_an_error_in_the_simulator_ends_the_iteration_with_it() -> None:
    stop, seen = asyncio.Event(), []
    feed, _ = make(Stream(fail_at=3), stop, seen)
    got = []
    with pytest.raises(RuntimeError, match="the simulator broke"):
        async for item in feed:
            got.append(item)
    assert len(got) == 2


async def test_aclose_stops_the_producer_and_wait_or_stop_returns_at_stop() -> None:
    stop, seen = asyncio.Event(), []
    feed, _ = make(Stream(), stop, seen)
    it = feed.__aiter__()
    await it.__anext__()
    await feed.aclose()
    assert feed._producer is not None and feed._producer.done()

    async def forever(seconds: float) -> None:
        await asyncio.sleep(3600)
    stop.set()
    await asyncio.wait_for(wait_or_stop(forever, stop, 3600.0), 5.0)      # cut short by the stop
