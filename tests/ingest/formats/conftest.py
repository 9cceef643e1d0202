"""The registry the format tests decode against (sensors: :data:`samples.SENSORS`)."""
from __future__ import annotations

import pytest

from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec
from tests.ingest.formats.samples import SENSORS


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry(tuple(
        SensorSpec(id=sid, name=sid, domain=KINDS[kind].domain, kind=kind, unit=KINDS[kind].unit,
                   ward="Trần Phú", lon=106.2, lat=21.27, interval_s=60.0)
        for sid, kind in SENSORS.items()))
