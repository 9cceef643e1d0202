"""Alerting I/O: the durable store, delivery channels, the dispatcher and the alert service.

:func:`load_config` is the I/O half of ``config/<city>/alerting.toml`` (tomllib);
validation is :func:`processing.alerting.config.parse_config`.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Sequence

from processing.alerting.config import AlertingConfig, ConfigError, parse_config

__all__ = ["load_config"]


def load_config(path: str | Path, *, wards: Sequence[str] | None = None,
                sensor_ids: Sequence[str] | None = None) -> AlertingConfig:
    """Read and validate an alerting TOML file; every problem is one :class:`ConfigError` line."""
    source = str(Path(path))
    try:
        with open(path, "rb") as fh:
            obj = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_config(obj, source, wards=wards, sensor_ids=sensor_ids)
