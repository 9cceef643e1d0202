"""MQTT transport (paho-mqtt 2.x, callback API v2, MQTT 5): a subscriber for the pipeline
and a publisher for simulators and alert topics.

* :class:`MqttSource` (:mod:`~ingest.mqtt.source`) -- at-least-once ingest: QoS 1 with manual
  acknowledgement after scoring, a persistent session, optional shared subscriptions
  (``?group=G``), reconnects with backoff;
* :class:`MqttPublisher` (:mod:`~ingest.mqtt.publisher`) -- QoS 1 without a round trip per
  message, :meth:`~MqttPublisher.flush` waits for every PUBACK;
* :class:`MqttSettings` (:mod:`~ingest.mqtt.settings`) -- the ``mqtt[s]://`` address and options;
* :mod:`~ingest.mqtt.fastpath` -- paho's client with a faster read path and bulk PUBACKs (on
  paho internals), made explicitly by both when they start; :mod:`~ingest.mqtt.link` -- the
  connection bookkeeping and diagnostics they share.

Exceptions::

    MqttError                 one line naming the broker address or topic
"""
from __future__ import annotations

from ingest.mqtt.publisher import MqttPublisher
from ingest.mqtt.settings import MqttError, MqttSettings
from ingest.mqtt.source import MqttSource

__all__ = ["MqttError", "MqttPublisher", "MqttSettings", "MqttSource"]
