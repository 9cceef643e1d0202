"""The end-to-end latency benchmark: its city at a rate, and one short run over real Mosquitto."""
from __future__ import annotations

import math

import pytest

from ioc.citydata import default_city_dir, load_registry
from bench.latency import INTERVAL_S, city_at_rate, measure


def test_city_at_rate_repeats_the_city_until_it_sends_the_rate() -> None:
    city = load_registry(default_city_dir() / "sensors.geojson")
    reg = city_at_rate(10_000.0)
    assert len(reg) == 2_500 and all(s.interval_s == INTERVAL_S for s in reg.sensors)
    assert reg.ids[:len(city)] == city.ids                   # the alerting config names real sensors
    assert len(set(reg.ids)) == len(reg)
    copy = reg.sensors[len(city) + 5]
    original = city.sensors[5]
    assert copy.id == f"{original.id}-r1"
    assert (copy.kind, copy.ward, copy.lon, copy.lat) == (original.kind, original.ward, original.lon, original.lat)
    assert len(city_at_rate(100.0)) == len(city)              # never fewer than the city itself


@pytest.mark.integration
async def test_one_short_run_times_every_reading_and_every_spike_alert(brokers) -> None:
    lat = await measure(brokers, "mqtt", 2_000.0, 3.0, warmup=13.0, spike_rate=2e-3)
    assert lat.sent > 1_000 and lat.readings == lat.sent          # every reading after the warm-up scored once
    assert lat.spikes > 0 and lat.opened == lat.spikes, lat      # every spike opened its alert ...
    assert lat.alerts == lat.opened, lat.unreceived              # ... and its alert arrived on ioc/alerts/#
    for p50, p99, worst in ((lat.scored_p50, lat.scored_p99, lat.scored_max),
                            (lat.alert_p50, lat.alert_p99, lat.alert_max)):
        assert math.isfinite(p50) and math.isfinite(worst)          # the figures themselves go to the docs
    assert "spikes opened" in lat.lines()[0]
