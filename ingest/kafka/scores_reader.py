"""Read the scored stream (``ioc.scores`` or ``ioc.alert-events``) that the scoring workers publish.

Any node can read it -- a dashboard, the alerting owner, a benchmark -- without joining the
workers' group: :class:`ScoresReader` reads every partition from the start (or the end) and
yields each record decoded (:mod:`ingest.formats.scores`) with the broker's timestamp::

    async with ScoresReader(settings, settings.scores_topic) as reader:
        async for at, rec in reader.records(stop):
            ...   # rec.sensor, rec.score, ...; keep one per (sensor, ts): a hand-over publishes a range again

A record that cannot be decoded is logged with its partition and offset and skipped.
"""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from aiokafka import AIOKafkaConsumer

from ingest.formats.scores import Scored, ScoresFormatError, decode
from ingest.kafka.settings import KafkaSettings, quiet_stop

__all__ = ["ScoresReader"]

log = logging.getLogger("ingest.kafka")


class ScoresReader:
    """A group-less consumer of one scored-stream topic."""

    def __init__(self, settings: KafkaSettings, topic: str, *, from_start: bool = True) -> None:
        self.settings = settings
        self.topic = topic
        self.from_start = from_start
        self.skipped = 0
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "ScoresReader":
        s = self.settings
        self._consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=s.bootstrap, group_id=None,
                                          enable_auto_commit=False,
                                          auto_offset_reset="earliest" if self.from_start else "latest",
                                          client_id=s.effective_client_id("scores-reader"), **s.security_options())
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await quiet_stop(consumer)

    async def records(self, stop: asyncio.Event | None = None) -> AsyncIterator[tuple[float, Scored]]:
        """``(broker time in epoch seconds, record)`` until ``stop`` is set."""
        assert self._consumer is not None, "use 'async with ScoresReader(...)'"
        while stop is None or not stop.is_set():
            data = await self._consumer.getmany(timeout_ms=200)
            for records in data.values():
                for m in records:
                    try:
                        rec = decode(m.value)
                    except ScoresFormatError as exc:
                        self.skipped += 1
                        log.warning("%s:%d offset %d: %s", self.topic, m.partition, m.offset, exc)
                        continue
                    yield m.timestamp / 1000.0, rec
