"""Delivery channels: webhook (HMAC-signed JSON), e-mail over SMTP, MQTT and Kafka topics.

Every channel has one method, ``send(delivery)``, that returns when the
receiver has accepted the message and raises :class:`DeliveryError` otherwise;
``DeliveryError.retriable`` says whether trying again can help (a 5xx, a
timeout, a refused connection: yes; a 4xx: no).  Retries, backoff and the
delivery status are the dispatcher's (:mod:`ioc.alerting.dispatcher`).

Webhook requests carry::

    Content-Type: application/json; charset=utf-8
    X-IOC-Signature: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>
    Idempotency-Key: <alert>:<event>:<channel>:<recipient>     (same on every retry)
    X-IOC-Event: <event type>

so a receiver (a Zalo/Telegram bot relay, a city system) verifies the sender
with :func:`verify_signature` and drops duplicates by the key.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Mapping, Protocol

from ioc.alerting.store import Delivery
from processing.errors import DeliveryError as IocDeliveryError

__all__ = ["Channel", "DeliveryError", "EmailChannel", "KafkaTopicPublisher", "MqttTopicPublisher",
           "SmtpSettings", "TopicChannel", "TopicPublisher", "WebhookChannel", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-IOC-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(IocDeliveryError):
    """A delivery attempt failed; ``retriable`` says whether another attempt can help."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class Channel(Protocol):
    def send(self, delivery: Delivery) -> None: ...


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-IOC-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of an ``X-IOC-Signature`` header (for receivers and tests)."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)  # type: ignore[arg-type]


def body_of(delivery: Delivery) -> bytes:
    """The JSON document every machine channel sends (the stored payload plus the delivery key)."""
    doc = dict(delivery.payload)
    doc["idempotency_key"] = delivery.key
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


class WebhookChannel:
    """POST the alert as signed JSON to the recipient's URL (``delivery.address``)."""

    def __init__(self, secret: bytes, *, timeout_s: float = 10.0, user_agent: str = "city-ioc-alerts/1") -> None:
        if not secret:
            raise ValueError("webhook: a non-empty signing secret is required")
        self.secret = secret
        self.timeout_s = timeout_s
        self.user_agent = user_agent

    @classmethod
    def from_env(cls, env_var: str, environ: Mapping[str, str], *, timeout_s: float = 10.0) -> "WebhookChannel":
        """The channel with its secret from an environment variable (``[delivery] webhook_secret_env``)."""
        secret = environ.get(env_var, "")
        if not secret:
            raise ValueError(f"webhook: set the signing secret in the environment variable {env_var}")
        return cls(secret.encode("utf-8"), timeout_s=timeout_s)

    def send(self, delivery: Delivery) -> None:
        body = body_of(delivery)
        req = urllib.request.Request(delivery.address, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", SIGNATURE_HEADER: sign(self.secret, body),
            IDEMPOTENCY_HEADER: delivery.key, "X-IOC-Event": delivery.event, "User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            retriable = exc.code >= 500 or exc.code in (408, 425, 429)
            raise DeliveryError(f"webhook {delivery.address}: HTTP {exc.code} {exc.reason}",
                                retriable=retriable) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"webhook {delivery.address}: {reason}") from exc


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 587
    sender: str = ""               # From: (wiring: IOC_SMTP_SENDER, else the city's sender)
    username: str = ""
    password: str = ""
    starttls: bool = True
    timeout_s: float = 10.0
    cafile: str = ""               # a private CA to trust for STARTTLS (default: the system's)


class EmailChannel:
    """Send the bilingual text (Vietnamese first) with the CAP XML attached, over SMTP."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def message(self, delivery: Delivery) -> EmailMessage:
        text = delivery.payload.get("text", {})
        vi, en = text.get("vi", {}), text.get("en", {})
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = delivery.address
        msg["Subject"] = vi.get("subject") or f"IOC alert {delivery.alert_id}"
        msg["Message-ID"] = make_msgid(idstring=delivery.key.replace(":", ".").replace("@", "_")[:60],
                                       domain=self.settings.sender.split("@")[-1])
        msg["X-IOC-Idempotency-Key"] = delivery.key
        parts = []
        for t in (vi, en):
            if t:
                parts.append("\n\n".join(x for x in (t.get("headline"), t.get("description"), t.get("instruction"))
                                         if x))
        msg.set_content("\n\n-----\n\n".join(parts) or json.dumps(delivery.payload, ensure_ascii=False))
        cap = delivery.payload.get("cap")
        if cap:
            msg.add_attachment(cap.encode("utf-8"), maintype="application", subtype="cap+xml",
                               filename=f"ioc-alert-{delivery.alert_id}-{delivery.event_seq}.cap.xml")
        return msg

    def send(self, delivery: Delivery) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=s.cafile or None))
                if s.username:
                    smtp.login(s.username, s.password)
                smtp.send_message(self.message(delivery))
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"e-mail to {delivery.address}: recipient refused", retriable=False) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"e-mail via {s.host}:{s.port}: authentication failed", retriable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"e-mail via {s.host}:{s.port}: {exc}") from exc


class TopicPublisher(Protocol):
    """A synchronous publish to a broker topic (see the adapters below for ingest's publishers)."""

    def publish(self, topic: str, payload: bytes, key: bytes) -> None: ...


class TopicChannel:
    """Publish the alert JSON to ``delivery.address`` (an MQTT or Kafka topic), keyed by alert id."""

    def __init__(self, publisher: TopicPublisher) -> None:
        self.publisher = publisher
        self.sending = 0          # sends in progress (the dispatcher's thread); read before closing the publisher

    def send(self, delivery: Delivery) -> None:
        self.sending += 1
        try:
            self.publisher.publish(delivery.address, body_of(delivery), str(delivery.alert_id).encode())
        except DeliveryError:
            raise
        except Exception as exc:  # a broker client's own error type: retried
            raise DeliveryError(f"{delivery.channel} topic {delivery.address}: {exc}") from exc
        finally:
            self.sending -= 1


class MqttTopicPublisher:
    """Adapter for :class:`ingest.mqtt.MqttPublisher` (started elsewhere; called from the dispatcher thread).

    ``publish`` returns once the broker has acknowledged the message (QoS 1 PUBACK), as the
    Kafka adapter does on ``acks=all``: a delivery is marked sent only when the broker has it.
    Not connected, or no PUBACK within ``timeout_s`` (a hung broker), is a :class:`DeliveryError`
    the dispatcher retries; a copy the broker took late then reaches subscribers twice, with the
    same idempotency key (at least once).  At QoS 0 there is nothing to wait for.
    """

    def __init__(self, publisher: Any, qos: int = 1, timeout_s: float = 10.0) -> None:
        self.publisher, self.qos, self.timeout_s = publisher, qos, timeout_s

    def publish(self, topic: str, payload: bytes, key: bytes) -> None:
        url = self.publisher.settings.url
        if not self.publisher.connected:       # paho would keep it for the reconnect: not sent yet
            raise DeliveryError(f"mqtt topic {topic}: not connected to {url}")
        info = self.publisher.publish(topic, payload, qos=self.qos)
        if self.qos == 0:
            return
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"mqtt topic {topic}: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"mqtt topic {topic}: no PUBACK from {url} within {self.timeout_s:g} s")


class KafkaTopicPublisher:
    """Adapter for :class:`ingest.kafka.KafkaSink` running on ``loop`` (called from the dispatcher thread).

    ``publish`` returns once the broker has acknowledged the record (``acks=all``), so a
    delivery is marked sent only when it was written; a timeout is retried like any failure.
    """

    def __init__(self, sink: Any, loop: asyncio.AbstractEventLoop, timeout_s: float = 10.0) -> None:
        self.sink, self.loop, self.timeout_s = sink, loop, timeout_s

    def publish(self, topic: str, payload: bytes, key: bytes) -> None:
        asyncio.run_coroutine_threadsafe(self._written(topic, payload, key), self.loop).result(self.timeout_s)

    async def _written(self, topic: str, payload: bytes, key: bytes) -> None:
        await self.sink.send(topic, payload, key=key)
        await self.sink.flush()
