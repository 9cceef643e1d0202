"""Alerting I/O: the durable store, delivery channels, the dispatcher and the alert service.

:func:`load_config` is the I/O half of ``config/<city>/alerting.toml`` (tomllib);
validation is :func:`processing.alerting.config.parse_config`.  The city the file belongs
to is the ``city.toml`` beside it, else the configured city's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from processing.alerting.config import AlertingConfig, parse_config
from processing.city import CityProfile

__all__ = ["load_config"]


def load_config(path: str | Path, *, city: CityProfile | None = None, wards: Sequence[str] | None = None,
                sensor_ids: Sequence[str] | None = None) -> AlertingConfig:
    """Read and validate an alerting TOML file of ``city`` (default: the ``city.toml`` beside it, else
    the configured city's); every problem is one :class:`ConfigError` line."""
    from ioc.citydata import city_of, read_toml

    obj = read_toml(path)
    return parse_config(obj, str(Path(path)), city=city or city_of(path), wards=wards, sensor_ids=sensor_ids)

