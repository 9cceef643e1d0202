"""What each kind of city sensor measures: domain, unit and physically possible range.

The possible range is not an alert limit: a value outside it cannot be a real
measurement (a negative vehicle count, 5,000 µg/m³ of PM2.5) and is rejected at
ingest as a dead letter.  Alert limits live on each sensor in the registry.
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


def _k(name: str, domain: str, unit: str, lo: float, hi: float, vi: str, en: str) -> KindSpec:
    return KindSpec(name, domain, unit, lo, hi, vi, en)


KINDS: dict[str, KindSpec] = {k.name: k for k in (
    _k("vehicle_count", "traffic", "veh/5min", 0, 5000, "Lưu lượng xe", "Vehicle count"),
    _k("avg_speed", "traffic", "km/h", 0, 200, "Tốc độ trung bình", "Average speed"),
    _k("occupancy", "traffic", "%", 0, 100, "Độ chiếm dụng làn", "Lane occupancy"),
    _k("pm25", "environment", "µg/m³", 0, 2000, "Bụi PM2.5", "PM2.5"),
    _k("pm10", "environment", "µg/m³", 0, 3000, "Bụi PM10", "PM10"),
    _k("noise_laeq", "environment", "dB(A)", 0, 160, "Tiếng ồn LAeq", "Noise LAeq"),
    _k("water_level", "environment", "m", -10, 30, "Mực nước sông", "River water level"),
    _k("temperature", "environment", "°C", -20, 60, "Nhiệt độ", "Temperature"),
    _k("water_pressure", "utility", "bar", 0, 16, "Áp lực nước", "Water pressure"),
    _k("water_flow", "utility", "m³/h", 0, 20000, "Lưu lượng nước", "Water flow"),
    _k("feeder_load", "utility", "MW", 0, 100, "Phụ tải xuất tuyến", "Feeder load"),
    _k("streetlight_current", "utility", "A", 0, 200, "Dòng điện chiếu sáng", "Streetlight current"),
)}
