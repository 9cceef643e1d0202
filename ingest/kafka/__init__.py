"""Kafka transport (aiokafka): a consumer-group source for the pipeline and a producer sink.

* :class:`KafkaSource` (:mod:`~ingest.kafka.source`) -- reads ``ioc.readings`` in a consumer
  group, offsets committed after each scored batch (at-least-once), warm starts at given offsets;
* :class:`KafkaSink` (:mod:`~ingest.kafka.sink`) -- produces readings, alerts and dead letters;
* :class:`KafkaSettings` (:mod:`~ingest.kafka.settings`) -- the ``kafka://`` address and options;
* :mod:`~ingest.kafka.batches` -- the consumer fast path (one list of values per record batch),
  installed explicitly by :meth:`KafkaSource.start`, never by an import.

Exceptions::

    KafkaTransportError                one line naming the address or topic
"""
from __future__ import annotations

from ingest.kafka.settings import (ALERTS_TOPIC, DEADLETTER_TOPIC, READINGS_TOPIC, KafkaSettings,
                                   KafkaTransportError)
from ingest.kafka.sink import KafkaSink
from ingest.kafka.source import KafkaSource

__all__ = ["DEADLETTER_TOPIC", "KafkaTransportError", "KafkaSettings", "KafkaSink", "KafkaSource", "READINGS_TOPIC",
           "ALERTS_TOPIC"]
