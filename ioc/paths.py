"""Where the IOC finds the files it ships and where it keeps its data: one place for both.

* **The city** (``sensors.geojson``, ``wards.geojson``, ``alerting.toml``): ``$IOC_CITY_DIR``,
  else the configured city shipped with the package.  In the checkout that is the top-level
  ``config/<city>/`` folder; in a wheel the same files are package data of ``ioc.cityfiles``
  (``pyproject.toml`` maps the one onto the other), so ``pip install .`` gives an ``ioc`` that
  finds its city from any folder.
* **Broker configuration templates** (Mosquitto, Kafka, the Maven list of Kafka's jars):
  ``deploy/`` in the checkout, ``ioc.deployfiles`` in a wheel, found the same way.
* **The data folder** (alert store, core checkpoints, brokers' data): ``$IOC_DATA_DIR``; else,
  run from a source checkout, its git-ignored ``var/`` (what developers and the tests have
  always used); else, installed, ``$XDG_DATA_HOME/city-ioc`` (by default
  ``~/.local/share/city-ioc``), never a folder inside site-packages.

>>> (city_dir() / "sensors.geojson").is_file() and (deploy_dir() / "mosquitto").is_dir()
True
"""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

__all__ = ["DEFAULT_CITY", "city_dir", "data_dir", "deploy_dir", "source_checkout"]

#: The city configured when ``$IOC_CITY_DIR`` names none.
DEFAULT_CITY = "bac_giang"


def _package_dir(package: str) -> Path:
    found = importlib.resources.files(package)
    path = Path(str(found))
    if not path.is_dir():           # a zipped install: the files are not on disk
        raise FileNotFoundError(f"{package}: the package's files are not a folder on disk ({found})")
    return path


def city_dir() -> Path:
    """The configured city's folder: ``$IOC_CITY_DIR`` or the shipped ``config/bac_giang``."""
    env = os.environ.get("IOC_CITY_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    return _package_dir("ioc.cityfiles") / DEFAULT_CITY


def deploy_dir() -> Path:
    """The shipped broker configuration templates (``deploy/`` of the checkout)."""
    return _package_dir("ioc.deployfiles")


def source_checkout() -> Path | None:
    """The checkout this ``ioc`` runs from (editable install or ``PYTHONPATH``), or None when installed."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "config").is_dir() and (root / "ioc").is_dir():
        return root
    return None


def data_dir() -> Path:
    """``$IOC_DATA_DIR``, else the checkout's ``var/``, else ``$XDG_DATA_HOME/city-ioc``."""
    env = os.environ.get("IOC_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    root = source_checkout()
    if root is not None:
        return root / "var"
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "city-ioc"
