"""Shared fixtures for the simulator tests: small registries built in code."""
from __future__ import annotations

import pytest

from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec


def make_registry(specs: list[tuple[str, str, float]]) -> Registry:
    """Registry from (id, kind, interval_s) triples."""
    return Registry(tuple(
        SensorSpec(id=sid, name=sid, domain=KINDS[kind].domain, kind=kind, unit=KINDS[kind].unit,
                   ward="Trần Phú", lon=106.19, lat=21.27, interval_s=iv)
        for sid, kind, iv in specs))


@pytest.fixture
def registry_of():
    """The :func:`make_registry` builder (test modules cannot import conftest)."""
    return make_registry


@pytest.fixture
def city_registry() -> Registry:
    """One sensor of every kind, on a mix of intervals."""
    intervals = (300.0, 600.0, 900.0)
    return make_registry([(f"BG-{kind}", kind, intervals[i % 3]) for i, kind in enumerate(KINDS)])
