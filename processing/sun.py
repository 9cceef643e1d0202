"""Sunrise and sunset from a place's coordinates and the date, no network (NOAA's
low-precision solar formulas, good to about a minute between the polar circles).

Streetlights switch on photocells or astronomical timers: at dusk and dawn, which
move by a few minutes a week.  The anomaly core uses :func:`solar_phase` to put
such a sensor's time of day on a clock whose 06:00 is sunrise and 18:00 sunset
every day, so a time-of-day baseline keeps the switching in the same slots all
year; the simulator uses :func:`sun_times` to switch its lamps.

>>> rise, set_ = sun_times(np.array([20514.0]), 21.27, 106.19, 7 * 3600)   # 2026-03-02
>>> [f"{int(x // 3600):02d}:{int(x % 3600 // 60):02d}" for x in (rise[0], set_[0])]
['06:15', '17:59']
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["solar_phase", "sun_day", "sun_times"]

_DEG = math.pi / 180.0
_SUN_ALTITUDE = -0.833 * _DEG     # refraction and the sun's radius: the upper limb at the horizon


@numba.njit(cache=True, nogil=True)
def sun_day(local_day: float, lat: float, lon: float, utc_offset_s: float) -> tuple[float, float]:
    """Local seconds after midnight of sunrise and sunset on local day number ``local_day``
    (days since 1970-01-01 in local time).  Polar day/night clamp to 0 / 86400."""
    noon_utc = local_day * 86400.0 + 43200.0 - utc_offset_s
    d = noon_utc / 86400.0 - 10957.5                       # days since J2000.0
    g = (357.529 + 0.98560028 * d) * _DEG
    q = 280.459 + 0.98564736 * d
    ecl = (q + 1.915 * math.sin(g) + 0.020 * math.sin(2.0 * g)) * _DEG
    eps = (23.439 - 0.00000036 * d) * _DEG
    ra_h = math.atan2(math.cos(eps) * math.sin(ecl), math.cos(ecl)) / _DEG / 15.0
    eqt_h = (q / 15.0 - ra_h) % 24.0
    if eqt_h > 12.0:
        eqt_h -= 24.0
    decl = math.asin(math.sin(eps) * math.sin(ecl))
    phi = lat * _DEG
    cos_w = (math.sin(_SUN_ALTITUDE) - math.sin(phi) * math.sin(decl)) / (math.cos(phi) * math.cos(decl) + 1e-12)
    cos_w = min(max(cos_w, -1.0), 1.0)
    half_day_s = math.acos(cos_w) / _DEG / 15.0 * 3600.0
    noon_local_s = (12.0 - lon / 15.0 - eqt_h) * 3600.0 + utc_offset_s
    return noon_local_s - half_day_s, noon_local_s + half_day_s


@numba.njit(cache=True, nogil=True)
def solar_phase(sod: float, rise: float, set_: float) -> float:
    """Seconds of day ``sod`` on the solar clock: sunrise at 06:00, sunset at 18:00,
    day and night each stretched linearly between them."""
    if set_ - rise <= 1.0 or set_ - rise >= 86399.0:
        return sod
    if rise <= sod < set_:
        return 21600.0 + (sod - rise) / (set_ - rise) * 43200.0
    night = 86400.0 - (set_ - rise)
    u = (sod - set_) % 86400.0
    return (64800.0 + u / night * 43200.0) % 86400.0


def sun_times(local_day: np.ndarray, lat: float, lon: float, utc_offset_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`sun_day`: sunrise and sunset (local seconds after midnight) per day."""
    days = np.asarray(local_day, dtype=np.float64).reshape(-1)
    rise = np.empty(days.shape)
    set_ = np.empty(days.shape)
    for k in range(days.size):
        rise[k], set_[k] = sun_day(float(days[k]), float(lat), float(lon), float(utc_offset_s))
    return rise, set_
