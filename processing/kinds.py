"""What each kind of city sensor measures: domain, unit, physically possible range and
rate of change, and the shape of its day.

The possible range is not an alert limit: a value outside it cannot be a real
measurement (a negative vehicle count, 5,000 µg/m³ of PM2.5) and is rejected at
ingest as a dead letter.  Alert limits live on each sensor in the registry.  A step
faster than the kind's possible rate (a river rising two metres in five minutes) is a
faulty sensor or a real emergency either way: the core alerts on it at once, from the
first readings, before any baseline is learned.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOMAINS", "KINDS", "KindSpec"]

DOMAINS: tuple[str, ...] = ("traffic", "environment", "utility")


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    domain: str
    unit: str
    valid_min: float
    valid_max: float
    label_vi: str
    label_en: str
    # follows the sun (photocell or astronomical timer): its day is read on the solar clock
    solar: bool = False
    # how its measurement noise grows with its level: 0 not at all, 1 in proportion
    # (particulates, flows, loads), 0.5 as the square root (counts)
    noise_power: float = 0.0
    # the fastest a real reading can change, in units per hour (0: no physical bound; counts,
    # particulates, loads and flows can jump)
    max_rate_per_h: float = 0.0


def _k(name: str, domain: str, unit: str, lo: float, hi: float, vi: str, en: str, *, solar: bool = False,
       noise: float = 0.0, rate: float = 0.0) -> KindSpec:
    return KindSpec(name, domain, unit, lo, hi, vi, en, solar, noise, rate)


KINDS: dict[str, KindSpec] = {k.name: k for k in (
    _k("vehicle_count", "traffic", "veh/5min", 0, 5000, "Lưu lượng xe", "Vehicle count", noise=0.5),
    _k("avg_speed", "traffic", "km/h", 0, 200, "Tốc độ trung bình", "Average speed"),
    _k("occupancy", "traffic", "%", 0, 100, "Độ chiếm dụng làn", "Lane occupancy"),
    _k("pm25", "environment", "µg/m³", 0, 2000, "Bụi PM2.5", "PM2.5", noise=1.0),
    _k("pm10", "environment", "µg/m³", 0, 3000, "Bụi PM10", "PM10", noise=1.0),
    _k("noise_laeq", "environment", "dB(A)", 0, 160, "Tiếng ồn LAeq", "Noise LAeq"),
    # the Thương and Cầu rivers rise some decimetres an hour in a typhoon flood; 2 m/h is none
    _k("water_level", "environment", "m", -10, 30, "Mực nước sông", "River water level", rate=2.0),
    # a cold front drops the air by a few degrees in an hour; 12 °C/h is a sensor in the sun or broken
    _k("temperature", "environment", "°C", -20, 60, "Nhiệt độ", "Temperature", rate=12.0),
    _k("water_pressure", "utility", "bar", 0, 16, "Áp lực nước", "Water pressure"),
    _k("water_flow", "utility", "m³/h", 0, 20000, "Lưu lượng nước", "Water flow", noise=1.0),
    _k("feeder_load", "utility", "MW", 0, 100, "Phụ tải xuất tuyến", "Feeder load", noise=1.0),
    _k("streetlight_current", "utility", "A", 0, 200, "Dòng điện chiếu sáng", "Streetlight current", solar=True),
)}
