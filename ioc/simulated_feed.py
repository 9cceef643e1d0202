"""The simulated city as a live feed for :meth:`ioc.pipeline.Pipeline.run`, and the stream a
warm start resumes it with.

* :class:`SimulatedFeed`: a producer task advances the simulator every ``tick_s`` (of the
  injected sleep) to the simulated time of the injected wall clock, onto a bounded queue,
  until ``stop``; simulating the next tick overlaps scoring this one.  Nothing to commit, no
  position (a checkpoint's simulated time is the position).
* :class:`ResumedStream`: the simulator's readings newer than a checkpoint, with the anomaly
  schedule of the run that began the city.

Everything it needs is passed in; it knows nothing of the pipeline.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Protocol

import numpy as np

from ingest.sources import Delivery, FeedItem
from processing.batch import ReadingBatch
from simulators.city import CitySimulator

__all__ = ["ResumedStream", "SimulatedFeed", "wait_or_stop"]


class Stream(Protocol):
    def advance(self, now: float) -> tuple[ReadingBatch, list]: ...


async def wait_or_stop(sleep: Callable[[float], Awaitable[Any]], stop: asyncio.Event, seconds: float) -> None:
    """``sleep(seconds)``, cut short by ``stop``."""
    sleeper = asyncio.ensure_future(sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class SimulatedFeed:
    """The simulated city as a live feed (see the module docstring).  :meth:`aclose` stops the
    producer; an error in it ends the iteration with that error.

    ``sim_time_at(wall)``: the simulated time of a wall-clock instant; ``on_advance(seconds,
    labels)``: told how long each advance took and which anomalies it injected."""

    def __init__(self, stream: Stream, stop: asyncio.Event, *, clock: Callable[[], float],
                 sim_time_at: Callable[[float], float], sleep: Callable[[float], Awaitable[Any]], tick_s: float,
                 queue_size: int, on_advance: Callable[[float, list], None] = lambda seconds, labels: None) -> None:
        self._stream, self._stop = stream, stop
        self._clock, self._sim_time_at, self._sleep, self._tick_s = clock, sim_time_at, sleep, tick_s
        self._on_advance = on_advance
        self._queue: asyncio.Queue[FeedItem] = asyncio.Queue(queue_size)
        self._producer: asyncio.Task | None = None

    def __aiter__(self) -> "SimulatedFeed":
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce())
        return self

    async def __anext__(self) -> FeedItem:
        producer = self._producer
        assert producer is not None, "iterate with 'async for'"
        while self._queue.empty():
            if producer.done():
                producer.result()                      # its error, if it failed
                raise StopAsyncIteration
            getter = asyncio.ensure_future(self._queue.get())
            await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                return getter.result()
            getter.cancel()                            # the producer ended: take what it left
            await asyncio.gather(getter, return_exceptions=True)
        return self._queue.get_nowait()

    async def _produce(self) -> None:
        while not self._stop.is_set():
            sim_now = self._sim_time_at(self._clock())
            start = time.perf_counter()
            batch, labels = self._stream.advance(sim_now)
            self._on_advance(time.perf_counter() - start, labels)
            wall = self._clock()
            await self._queue.put(FeedItem(batch, (), 0, sim_now, wall, time.perf_counter(), Delivery((), wall)))
            if self._stop.is_set():
                break
            await wait_or_stop(self._sleep, self._stop, self._tick_s)

    async def commit(self, item: FeedItem) -> None:
        """Nothing to acknowledge."""

    async def positions(self) -> dict[str, int]:
        return {}

    async def aclose(self) -> None:
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
            await asyncio.gather(self._producer, return_exceptions=True)


class ResumedStream:
    """The simulator's stream of readings newer than ``after``, with the anomaly schedule of the run
    that began the city (no anomaly before ``anomalies_from``), so it continues that run exactly.

    A :class:`~simulators.city.CityStream` places no anomaly before its start plus its warm-up;
    it starts here at ``anomalies_from`` when that lies in the generation chunk of ``after`` (else
    at the chunk's start, which places the same anomalies), and what it returns up to ``after``
    is dropped."""

    def __init__(self, sim: CitySimulator, after: float, anomalies_from: float) -> None:
        t_next = float(np.nextafter(after, np.inf))
        chunk = sim.chunk_start(sim.chunk_of(t_next))
        t0 = min(t_next, max(anomalies_from, chunk))
        self._stream = sim.stream(t0, warmup_s=max(0.0, anomalies_from - t0))
        self._after = after

    def advance(self, now: float) -> tuple[ReadingBatch, list]:
        batch, labels = self._stream.advance(now)
        if len(batch) and batch.ts.min() <= self._after:
            batch = batch.take(batch.ts > self._after)
        return batch, labels
