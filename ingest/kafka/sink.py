"""The Kafka producer: :class:`KafkaSink` produces readings (keyed by sensor), alerts to
``ioc.alerts`` and dead letters to ``ioc.deadletter`` (value = the original bytes, the reason,
code, source and time of reception in headers).  It is idempotent (``enable_idempotence``), so
its own retries never duplicate a record."""
from __future__ import annotations

import asyncio
from typing import Any, Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kerr

from ingest.kafka.settings import (LINGER_MS, MAX_BATCH_BYTES, MAX_DEAD_PAYLOAD, ConnectCause, KafkaSettings,
                                   KafkaTransportError, explain, quiet_stop)
from ingest.lifecycle import FlushingLifecycle

__all__ = ["KafkaSink"]


class KafkaSink(FlushingLifecycle):
    """Produce readings, alerts and dead letters; ``async with`` starts and flushes/stops it.

    Sends do not wait per record: :meth:`send` enqueues, :meth:`flush` waits for every
    acknowledgement and raises :class:`KafkaTransportError` if a record could not be written.
    """

    def __init__(self, settings: KafkaSettings, *, linger_ms: int = LINGER_MS) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._futures: list[asyncio.Future] = []
        self.sent = 0

    def _started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        s = self.settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap, client_id=s.effective_client_id("producer"), acks="all",
            enable_idempotence=True, linger_ms=self.linger_ms, max_batch_size=MAX_BATCH_BYTES,
            max_request_size=1_048_576, request_timeout_ms=30_000, retry_backoff_ms=200, **s.security_options())
        try:
            with ConnectCause() as cause:
                await producer.start()
        except (kerr.KafkaError, OSError) as exc:
            await quiet_stop(producer)
            raise KafkaTransportError(f"cannot connect to kafka://{s.bootstrap}: "
                                      f"{s.explain_connect(exc, cause.text)}") from None
        self._producer = producer

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await quiet_stop(producer)

    def _need(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaTransportError(f"kafka://{self.settings.bootstrap}: the sink is not started (use 'async with')")
        return self._producer

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Sequence[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        """Enqueue one record (waits only when the producer's buffer is full); ``partition``: that
        partition rather than the key's."""
        producer = self._need()
        try:
            fut = await producer.send(topic, value, key=key, headers=list(headers) if headers else None,
                                      partition=partition)
        except kerr.KafkaError as exc:
            raise KafkaTransportError(f"kafka://{self.settings.bootstrap}: cannot send to {topic!r}: {explain(exc)}") from None
        self._futures.append(fut)
        self.sent += 1
        if len(self._futures) >= 50_000:
            await self._settle(keep_last=10_000)

    async def partitions_for(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 when it does not exist)."""
        try:
            return len(await self._need().partitions_for(topic))
        except (kerr.UnknownTopicOrPartitionError, kerr.KafkaTimeoutError):
            return 0

    async def send_readings(self, messages: Iterable[Any], topic: str | None = None) -> int:
        """Send :class:`~ingest.formats.Message` s (``.key`` = sensor id, ``.payload``) to the readings topic."""
        topic = topic or self.settings.topic
        n = 0
        for m in messages:
            await self.send(topic, m.payload, m.key.encode())
            n += 1
        return n

    async def send_dead(self, letters: Sequence[Any]) -> None:
        """Send dead letters to the dead-letter topic and wait until they are stored."""
        for d in letters:
            payload = d.payload
            headers = [("reason", d.reason.encode()), ("code", d.code.encode()), ("source", d.source.encode()),
                       ("received", repr(d.received).encode())]
            if len(payload) > MAX_DEAD_PAYLOAD:
                headers.append(("truncated", str(len(payload)).encode()))
                payload = payload[:MAX_DEAD_PAYLOAD]
            await self.send(self.settings.deadletter_topic, payload, d.source.encode()[:256], headers)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged."""
        producer = self._need()
        await producer.flush()
        await self._settle(keep_last=0)

    async def _settle(self, keep_last: int) -> None:
        done, self._futures = self._futures[:len(self._futures) - keep_last], self._futures[len(self._futures) - keep_last:]
        for fut in done:
            try:
                await fut
            except kerr.KafkaError as exc:
                raise KafkaTransportError(f"kafka://{self.settings.bootstrap}: a record could not be written: "
                                 f"{explain(exc)}") from None
