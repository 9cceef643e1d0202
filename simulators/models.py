"""Per-kind sensor models: realistic daily and weekly shape plus noise, all numpy.

:func:`expected` is the noise-free value of a sensor kind at given instants;
:func:`baseline` adds the kind's measurement noise drawn from the caller's
``numpy.random.Generator``.  Local time is a fixed UTC offset (Asia/Ho_Chi_Minh
is UTC+7, no daylight saving), passed as ``utc_offset_s``.

Slow variation -- day-to-day weather (an AR(1) over days), a river's level, a
few hours' wander of air quality -- is *not* drawn from the generator: it is a
counter-based hash of ``(weather_key, day)`` smoothly interpolated, so the same
instant gets the same slow value whatever span is generated and however it is
cut into chunks.  Sensors sharing a ``weather_key`` share the city's weather.

>>> import numpy as np
>>> ts = 1772384400.0 + np.arange(0, 86400, 300.0)   # Monday 2026-03-02 local
>>> v = baseline("vehicle_count", ts, np.random.default_rng(1))
>>> bool(v[84] > 5 * v[36])                          # 07:00 rush vs 03:00 night
True
"""
from __future__ import annotations

import functools

import numpy as np

from processing.kinds import KINDS
from processing.sun import sun_times

__all__ = [
    "DEFAULT_PLACE",
    "DIURNAL_KINDS",
    "LOCAL_UTC_OFFSET_S",
    "SPIKE_DIRECTION",
    "baseline",
    "expected",
    "finalize",
    "local_hour",
    "local_weekday",
    "sensor_scale",
]

LOCAL_UTC_OFFSET_S = 7 * 3600
#: Where a sensor is when the caller does not say: central Bắc Giang (lat, lon).
DEFAULT_PLACE: tuple[float, float] = (21.27, 106.19)
_DAY = 86400.0

#: Sign of a physically plausible spike, level shift or drift for each kind:
#: +1 up (an incident adds vehicles, pollution, load), -1 down (speed drops,
#: a burst main loses pressure), 0 either way (a sensor fault).
SPIKE_DIRECTION: dict[str, int] = {
    "vehicle_count": +1, "avg_speed": -1, "occupancy": +1, "pm25": +1, "pm10": +1,
    "noise_laeq": +1, "water_level": +1, "temperature": 0, "water_pressure": -1,
    "water_flow": +1, "feeder_load": +1, "streetlight_current": 0,
}

#: Kinds with a strong daily pattern, for which a contextual anomaly (the right
#: value at the wrong time of day) is meaningful.  A river level is not one.
DIURNAL_KINDS: frozenset[str] = frozenset(KINDS) - {"water_level"}

# Relative spread of the per-sensor scale (a main road carries more vehicles
# than a side street; a feeder's size; a lamp circuit's number of lamps).
_SCALE_SPREAD: dict[str, float] = {
    "vehicle_count": 0.4, "avg_speed": 0.15, "occupancy": 0.3, "pm25": 0.2, "pm10": 0.2,
    "noise_laeq": 0.04, "water_level": 0.12, "temperature": 0.03, "water_pressure": 0.12,
    "water_flow": 0.5, "feeder_load": 0.4, "streetlight_current": 0.25,
}

# Tags separating the slow hashed components from one another.
_TAG_TRAFFIC, _TAG_AIR, _TAG_AIR_HOURS, _TAG_HEAT, _TAG_RIVER, _TAG_WATER, _TAG_DUSK, _TAG_DAWN = range(1, 9)


# --------------------------------------------------------------------------- time

def local_hour(ts: np.ndarray, utc_offset_s: int = LOCAL_UTC_OFFSET_S) -> np.ndarray:
    """Fractional local hour of day in [0, 24)."""
    return np.mod(np.asarray(ts, dtype=np.float64) + utc_offset_s, _DAY) / 3600.0


def local_weekday(ts: np.ndarray, utc_offset_s: int = LOCAL_UTC_OFFSET_S) -> np.ndarray:
    """Local day of week, Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday)."""
    days = np.floor((np.asarray(ts, dtype=np.float64) + utc_offset_s) / _DAY).astype(np.int64)
    return np.mod(days + 3, 7)


# ------------------------------------------------------------- hashed slow noise

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash_uniform(key: int, tag: int, idx: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) numbers, a pure function of (key, tag, idx)."""
    head = _splitmix64(np.array([(key & 0xFFFFFFFFFFFFFFFF)], dtype=np.uint64))
    head = _splitmix64(head ^ np.uint64(tag))
    x = _splitmix64(np.asarray(idx, dtype=np.int64).astype(np.uint64) ^ head)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _hash_normal(key: int, tag: int, idx: np.ndarray) -> np.ndarray:
    """Standard normal numbers, a pure function of (key, tag, idx) (Box-Muller)."""
    idx = np.asarray(idx, dtype=np.int64)
    u1 = _hash_uniform(key, tag, 2 * idx)
    u2 = _hash_uniform(key, tag, 2 * idx + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _slow(key: int, tag: int, t: np.ndarray, period_s: float, phi: float) -> np.ndarray:
    """A smooth, unit-variance slow component: AR(1) values at knots every
    ``period_s`` (truncated moving-average form, so each knot is a pure function
    of its index), cosine-interpolated between knots."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        return np.empty(0)
    pos = t / period_s
    k = np.floor(pos).astype(np.int64)
    lo = int(k.min())
    ar = _knots(key, tag, phi, lo, int(k.max()) + 1)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - k))
    return ar[k - lo] * (1.0 - w) + ar[k - lo + 1] * w


@functools.lru_cache(maxsize=4096)
def _knots(key: int, tag: int, phi: float, lo: int, hi: int) -> np.ndarray:
    """AR(1) knot values ``lo..hi`` (memoised: every sensor of a city shares them)."""
    knots = np.arange(lo, hi + 1, dtype=np.int64)
    terms = max(1, int(np.ceil(np.log(1e-3) / np.log(phi)))) if phi > 0 else 1
    lags = np.arange(terms, dtype=np.int64)
    e = _hash_normal(key, tag, (knots[:, None] - lags[None, :]).ravel()).reshape(knots.size, terms)
    ar = np.sqrt(1.0 - phi * phi) * (e @ (phi ** lags.astype(np.float64)))
    ar.setflags(write=False)
    return ar


def _daily(key: int, tag: int, ts: np.ndarray, utc_offset_s: int, phi: float) -> np.ndarray:
    return _slow(key, tag, np.asarray(ts, dtype=np.float64) + utc_offset_s, _DAY, phi)


# ------------------------------------------------------------------ day shapes

def _bump(h: np.ndarray, center: float, width: float) -> np.ndarray:
    """Gaussian bump on the 24-hour circle."""
    d = np.mod(h - center + 12.0, 24.0) - 12.0
    return np.exp(-0.5 * (d / width) ** 2)


def _plateau(h: np.ndarray, rise: float, fall: float) -> np.ndarray:
    """Smooth daytime plateau from ``rise`` to ``fall`` (local hours)."""
    return 1.0 / (1.0 + np.exp(-(h - rise) / 0.6)) / (1.0 + np.exp(-(fall - h) / 0.9))


def _traffic_raw(h: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    work = (0.04 + 0.42 * _plateau(h, 5.5, 21.5) + 0.55 * _bump(h, 7.0, 0.8)
            + 0.60 * _bump(h, 17.5, 1.0) + 0.08 * _bump(h, 11.5, 0.8))
    rest = (0.04 + 0.38 * _plateau(h, 7.0, 22.5) + 0.25 * _bump(h, 9.0, 1.5)
            + 0.40 * _bump(h, 17.5, 1.5))
    rest = np.where(weekday == 6, 0.9 * rest, rest)
    return np.where(weekday >= 5, rest, work)


_TRAFFIC_PEAK = float(_traffic_raw(np.linspace(0, 24, 4801), np.zeros(4801, np.int64)).max())


def _traffic(h: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Traffic intensity, 1 at the working-day evening peak, ~0.04 at night."""
    return _traffic_raw(h, weekday) / _TRAFFIC_PEAK


def _demand_raw(h: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    work = _bump(h, 6.75, 1.1) + 0.95 * _bump(h, 19.0, 1.6) + 0.35 * _bump(h, 12.0, 2.5)
    rest = 0.9 * _bump(h, 8.0, 1.5) + 0.95 * _bump(h, 19.0, 1.8) + 0.45 * _bump(h, 12.5, 2.5)
    return np.where(weekday >= 5, rest, work)


_DEMAND_PEAK = float(_demand_raw(np.linspace(0, 24, 4801), np.zeros(4801, np.int64)).max())


def _demand(h: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Household water demand, 1 at the working-day morning peak, ~0 at night."""
    return _demand_raw(h, weekday) / _DEMAND_PEAK


def _air(h: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Particulate diurnal factor: morning traffic peak, evening peak and night
    inversion, low midday (mixing layer up)."""
    morning = np.where(weekday >= 5, 0.30, 0.45)
    return (0.85 + morning * _bump(h, 7.5, 1.4) + 0.55 * _bump(h, 20.5, 2.2)
            + 0.25 * _bump(h, 1.5, 2.5) - 0.30 * _bump(h, 14.0, 2.5))


def _lights_on(ts: np.ndarray, h: np.ndarray, weather_key: int, utc_offset_s: int,
               lat: float, lon: float) -> np.ndarray:
    """Photocell schedule: on from about 10 minutes after sunset to 10 minutes
    before sunrise at the sensor's coordinates (:mod:`processing.sun`), the
    switching minute varying by up to 6 minutes from day to day (clouds)."""
    day = np.floor((ts + utc_offset_s) / _DAY).astype(np.int64)
    days, inverse = np.unique(day, return_inverse=True)
    rise, sset = sun_times(days.astype(np.float64), lat, lon, utc_offset_s)
    rise_h, set_h = rise[inverse.reshape(-1)] / 3600.0, sset[inverse.reshape(-1)] / 3600.0
    dusk = set_h + 1.0 / 6.0 + 0.1 * (_hash_uniform(weather_key, _TAG_DUSK, day) - 0.5) * 2
    dawn = rise_h - 1.0 / 6.0 + 0.1 * (_hash_uniform(weather_key, _TAG_DAWN, day) - 0.5) * 2
    return (h >= dusk) | (h < dawn)


# --------------------------------------------------------------------- models

def expected(kind: str, ts: np.ndarray, *, scale: float = 1.0, utc_offset_s: int = LOCAL_UTC_OFFSET_S,
             weather_key: int = 0, place: tuple[float, float] = DEFAULT_PLACE) -> np.ndarray:
    """Noise-free value of a ``kind`` sensor at epoch seconds ``ts`` (UTC).

    ``scale`` sizes the sensor (1.0 is a typical one, see :func:`sensor_scale`);
    ``weather_key`` selects the city's slow weather/river/demand variation;
    ``place`` (lat, lon) sets sunrise and sunset for streetlights.
    """
    ts = np.asarray(ts, dtype=np.float64)
    h = local_hour(ts, utc_offset_s)
    wd = local_weekday(ts, utc_offset_s)
    key = weather_key

    if kind in ("vehicle_count", "avg_speed", "occupancy", "noise_laeq"):
        c = _traffic(h, wd) * np.exp(0.06 * _daily(key, _TAG_TRAFFIC, ts, utc_offset_s, 0.5))
        if kind == "vehicle_count":
            return 330.0 * scale * c
        if kind == "avg_speed":
            return 45.0 * scale * (1.0 - 0.55 * np.minimum(c, 1.2) ** 1.6)
        if kind == "occupancy":
            return scale * (3.0 + 37.0 * c ** 1.2)
        return scale * (47.0 + 21.0 * np.sqrt(c))
    if kind in ("pm25", "pm10"):
        weather = np.exp(0.35 * _daily(key, _TAG_AIR, ts, utc_offset_s, 0.7)
                         + 0.10 * _slow(key, _TAG_AIR_HOURS, ts, 3 * 3600.0, 0.6))
        level = 32.0 * (1.6 if kind == "pm10" else 1.0)
        return level * scale * _air(h, wd) * weather
    if kind == "temperature":
        return (28.0 * scale + 4.0 * np.cos(2 * np.pi * (h - 14.0) / 24.0)
                + 1.5 * _daily(key, _TAG_HEAT, ts, utc_offset_s, 0.8))
    if kind == "water_level":
        tide = 0.04 * np.sin(2 * np.pi * ts / 44714.0) + 0.015 * np.sin(2 * np.pi * (h - 4.0) / 24.0)
        return 2.7 * scale + 0.3 * _daily(key, _TAG_RIVER, ts, utc_offset_s, 0.92) + tide
    if kind in ("water_pressure", "water_flow"):
        d = _demand(h, wd) * np.exp(0.04 * _daily(key, _TAG_WATER, ts, utc_offset_s, 0.6))
        if kind == "water_pressure":
            return scale * (2.5 - 0.7 * d)
        return scale * (90.0 + 410.0 * d)
    if kind == "feeder_load":
        plateau = np.where(wd >= 5, np.where(wd == 5, 0.25, 0.15), 0.35) * _plateau(h, 7.5, 17.5)
        raw = 0.35 + plateau + 0.45 * _bump(h, 19.5, 1.8)
        heat = 1.0 + 0.06 * _daily(key, _TAG_HEAT, ts, utc_offset_s, 0.8)
        return 8.0 * scale * raw * heat
    if kind == "streetlight_current":
        on = _lights_on(ts, h, key, utc_offset_s, place[0], place[1])
        return np.where(on, 12.0, 0.15) * scale
    raise ValueError(f"unknown sensor kind {kind!r}; known: {', '.join(KINDS)}")


def baseline(kind: str, ts: np.ndarray, rng: np.random.Generator, *, scale: float = 1.0,
             utc_offset_s: int = LOCAL_UTC_OFFSET_S, weather_key: int = 0,
             place: tuple[float, float] = DEFAULT_PLACE) -> np.ndarray:
    """Simulated readings: :func:`expected` plus the kind's measurement noise,
    drawn from ``rng`` (one vectorised draw per call), clipped to the kind's
    possible range (:func:`finalize`)."""
    mean = expected(kind, ts, scale=scale, utc_offset_s=utc_offset_s, weather_key=weather_key, place=place)
    n = mean.shape
    if kind == "vehicle_count":
        v = rng.poisson(np.maximum(mean, 0.0)).astype(np.float64)
    elif kind == "avg_speed":
        v = mean + rng.normal(0.0, 1.0, n) * (1.5 + 0.04 * mean)
    elif kind == "occupancy":
        v = mean + rng.normal(0.0, 1.0, n) * (0.5 + 0.06 * mean)
    elif kind in ("pm25", "pm10"):
        v = mean * np.exp(rng.normal(-0.0032, 0.08, n))
    elif kind == "noise_laeq":
        v = mean + rng.normal(0.0, 1.2, n)
    elif kind == "water_level":
        v = mean + rng.normal(0.0, 0.004, n)
    elif kind == "temperature":
        v = mean + rng.normal(0.0, 0.15, n)
    elif kind == "water_pressure":
        v = mean + rng.normal(0.0, 0.02 * scale, n)
    elif kind == "water_flow":
        v = mean * (1.0 + rng.normal(0.0, 0.03, n))
    elif kind == "feeder_load":
        v = mean * (1.0 + rng.normal(0.0, 0.015, n))
    else:  # streetlight_current: ~1 % ripple when on, standby draw when off
        v = mean + rng.normal(0.0, 1.0, n) * np.where(mean > 1.0, 0.08 * scale, 0.02)
    return finalize(kind, v)


def finalize(kind: str, values: np.ndarray) -> np.ndarray:
    """Make values physically possible for ``kind``: clip to the kind's valid
    range, whole vehicles for counts.  Idempotent."""
    spec = KINDS[kind]
    v = np.clip(np.asarray(values, dtype=np.float64), spec.valid_min, spec.valid_max)
    if kind == "vehicle_count":
        v = np.round(v)
    return v


def sensor_scale(kind: str, rng: np.random.Generator) -> float:
    """A per-sensor size factor around 1 (e.g. 0.6-1.4 for road vehicle counts)."""
    spread = _SCALE_SPREAD[kind]
    return float(1.0 + rng.uniform(-spread, spread))
