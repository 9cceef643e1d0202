"""The embedded city the benchmarks feed: the shipped registry in a Pipeline, pre-rolled."""
from __future__ import annotations

from ioc.citydata import default_city_dir, load_extras, load_registry
from ioc.pipeline import Pipeline, PipelineConfig

__all__ = ["START", "prerolled_city"]

START = 1_772_384_400.0          # Monday 2026-03-02 00:00 +07:00


def prerolled_city(hours: float = 24.0, seed: int = 1) -> Pipeline:
    """The 218-sensor city, ``hours`` of history pre-rolled (baselines learned), nothing sent."""
    path = default_city_dir() / "sensors.geojson"
    reg = load_registry(path)
    p = Pipeline(reg, PipelineConfig(preroll_hours=hours, seed=seed), extras=load_extras(path, reg), start=START)
    p.preroll()
    return p
