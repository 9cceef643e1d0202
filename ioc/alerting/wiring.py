"""The alerting service assembled for a city: its configuration, its store, and the delivery
channels the environment sets up.

:func:`build_alerting` is what ``ioc run`` (and the tools that run the same pipeline) call:
``config/<city>/alerting.toml`` validated against the registry, the SQLite store in the data
folder, CAP areas from the ward polygons, and :func:`delivery_channels` from environment
variables.  A channel with no receiver configured is an :class:`UnconfiguredChannel`: its
deliveries fail at once as "not configured", which the dashboard shows as such.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ioc.alerting import load_config as load_alerting_config
from ioc.alerting.channels import Channel, DeliveryError, EmailChannel, SmtpSettings, WebhookChannel
from ioc.alerting.dispatcher import AlertService, Dispatcher
from ioc.alerting.store import AlertStore, Delivery
from processing.alerting.config import AlertingConfig, DeliverySettings
from processing.registry import Registry

__all__ = ["NOT_CONFIGURED", "UnconfiguredChannel", "build_alerting", "deliveries_of", "delivery_channels"]

log = logging.getLogger(__name__)

#: What a delivery's error says when its channel has no receiver configured (see :class:`UnconfiguredChannel`).
NOT_CONFIGURED = "not configured"


class UnconfiguredChannel:
    """A channel with no receiver set up: every delivery fails at once, not retried, saying how to set it up."""

    def __init__(self, how: str) -> None:
        self.how = how

    def send(self, delivery: Delivery) -> None:
        raise DeliveryError(f"{NOT_CONFIGURED}: {self.how}", retriable=False)


def delivery_channels(settings: DeliverySettings, environ: Mapping[str, str], *,
                      sender: str) -> dict[str, Channel]:
    """The channels the embedded pipeline can send on, from the environment.

    * webhook: signed with the secret in ``settings.webhook_secret_env`` (default ``IOC_WEBHOOK_SECRET``);
    * e-mail: ``IOC_SMTP_HOST`` (required), ``IOC_SMTP_PORT`` (587), ``IOC_SMTP_USER``, ``IOC_SMTP_PASSWORD``,
      ``IOC_SMTP_SENDER`` (default ``sender``: the city's), ``IOC_SMTP_STARTTLS`` (1; 0 turns it off), ``IOC_SMTP_CAFILE``;
    * MQTT and Kafka topics: none here (no broker in the embedded pipeline).

    What is not set up becomes an :class:`UnconfiguredChannel`."""
    channels: dict[str, Channel] = {}
    env = settings.webhook_secret_env
    if environ.get(env):
        channels["webhook"] = WebhookChannel.from_env(env, environ, timeout_s=settings.timeout_s)
    else:
        channels["webhook"] = UnconfiguredChannel(f"set {env} to sign and send webhooks")
    host = environ.get("IOC_SMTP_HOST", "").strip()
    if host:
        try:
            port = int(environ.get("IOC_SMTP_PORT", "") or 587)
        except ValueError:
            raise ValueError(f"IOC_SMTP_PORT must be a port number, got {environ.get('IOC_SMTP_PORT')!r}") from None
        channels["email"] = EmailChannel(SmtpSettings(
            host=host, port=port, sender=environ.get("IOC_SMTP_SENDER", "") or sender,
            username=environ.get("IOC_SMTP_USER", ""), password=environ.get("IOC_SMTP_PASSWORD", ""),
            starttls=environ.get("IOC_SMTP_STARTTLS", "1").strip().lower() not in ("0", "false", "no", "off"),
            timeout_s=settings.timeout_s, cafile=environ.get("IOC_SMTP_CAFILE", "")))
    else:
        channels["email"] = UnconfiguredChannel("set IOC_SMTP_HOST to send e-mail")
    channels["mqtt"] = UnconfiguredChannel("no MQTT broker in the embedded pipeline")
    channels["kafka"] = UnconfiguredChannel("no Kafka broker in the embedded pipeline")
    return channels


def deliveries_of(store: AlertStore, alert_ids: list[int]) -> dict[int, list[dict[str, object]]]:
    """Each alert's deliveries, ``{channel, address, status, attempts, last_error}``, as the dashboard
    shows them: status ``not_configured`` for a channel without a receiver."""
    out: dict[int, list[dict[str, object]]] = {int(i): [] for i in alert_ids}
    for aid, channel, address, status, attempts, error in store.delivery_status(alert_ids):
        if status == "failed" and NOT_CONFIGURED in error:
            status = "not_configured"
        out[int(aid)].append({"channel": channel, "address": address, "status": status,
                              "attempts": int(attempts), "last_error": error})
    return out


def build_alerting(registry: Registry, data_dir: str | Path | None, *, config: AlertingConfig | None = None,
                   config_path: str | Path | None = None, wards_path: str | Path | None = None,
                   environ: Mapping[str, str] | None = None, channels: Mapping[str, Channel] | None = None,
                   clock: Callable[[], float] = time.time,
                   store: AlertStore | None = None) -> tuple[AlertService, Dispatcher]:
    """The alerting service and its dispatcher for ``registry``.

    The store is ``store`` if given (e.g. the PostgreSQL one of ``ioc alerting``; left open on an
    error), else ``<data_dir>/alerts.sqlite3`` (None: in memory); the configuration
    ``config_path`` (default ``config/<city>/alerting.toml``, validated against the
    registry's wards and sensor ids); CAP areas are the ward polygons of
    ``wards_path`` (default the city's ``wards.geojson``; a circle when missing);
    ``channels`` default to :func:`delivery_channels` of ``environ`` (default ``os.environ``).
    Raises :class:`~processing.alerting.config.ConfigError` or :class:`~ioc.alerting.store.StoreError`."""
    from ioc.citydata import default_city_dir, load_wards
    from processing.registry import RegistryError

    city = default_city_dir()
    acfg = config or load_alerting_config(config_path or city / "alerting.toml", wards=registry.wards,
                                          sensor_ids=registry.ids)
    rings: dict[str, np.ndarray] = {}
    try:
        wards = load_wards(wards_path or city / "wards.geojson")
        rings = {w: wards.ring(w) for w in wards.names}
    except (RegistryError, OSError) as exc:
        log.warning("CAP areas will be circles: %s", exc)
    given = store is not None
    if store is None:
        store = AlertStore(":memory:") if data_dir is None else AlertStore.in_folder(data_dir)
    try:
        chans = dict(channels) if channels is not None else delivery_channels(
            acfg.delivery, os.environ if environ is None else environ, sender=acfg.cap.sender)
        dispatcher = Dispatcher(store, chans, acfg.delivery, clock=clock)
        service = AlertService(registry, acfg, store, ward_rings=rings, on_queued=dispatcher.wake, clock=clock)
    except BaseException:
        if not given:
            store.close()
        raise
    return service, dispatcher
