"""Units on the wire: the one table of unit spellings per sensor kind, the UN/CEFACT codes, and
everything derived from them (the code a writer sends, the arrays the decoders convert with).

Units (SenML ``u``/``bu``, NGSI-LD after ``unitCode``) accepted per kind and
normalised to the registry's canonical unit (``UNITS`` is the table):

===================  ===========  ===================================================================
kind                 canonical    accepted (factor to canonical)
===================  ===========  ===================================================================
pm25, pm10           µg/m³        µg/m³ µg/m3 ug/m3 ug/m³ ug/m^3 μg/m3 (Greek mu) (1); mg/m3 (1e3);
                                  kg/m3 — SenML's primary unit (1e9)
noise_laeq           dB(A)        dB(A) dBA dB (1)
water_level          m            m (1), cm (0.01), mm (0.001)
temperature          °C           °C Cel degC ℃ (1); K (−273.15)
water_pressure       bar          bar (1), Pa (1e-5), hPa (1e-3), kPa (0.01), MPa (10)
water_flow           m³/h         m³/h m3/h (1), m3/s m³/s (3600), l/s L/s (3.6)
feeder_load          MW           MW (1), kW (1e-3), W (1e-6)
streetlight_current  A            A (1), mA (1e-3)
occupancy            %            % (1), ``/`` — SenML's ratio unit, 0..1 (100)
vehicle_count        veh/5min     veh/5min veh count (1) — a count over the sensor's interval; veh/h (1/12)
avg_speed            km/h         km/h kmh (1), m/s (3.6)
===================  ===========  ===================================================================

Anything else is a dead letter naming the record, the unit and the sensor.

``UNIT_CODES`` reads an NGSI-LD ``unitCode`` as one of these spellings; its reverse,
``CANONICAL_CODES`` (kind -> the code of its canonical unit), is derived from the same two
tables, so what a writer sends is always what the reader takes as canonical.

>>> CANONICAL_CODES["pm25"], CANONICAL_CODES["noise_laeq"], "vehicle_count" in CANONICAL_CODES
('GQ', '2N', False)
>>> UNITS["water_flow"][UNIT_CODES["MQS"]]
(3600.0, 0.0)
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

from processing.kinds import KINDS

__all__ = ["CANONICAL_CODES", "KIND_NAMES", "OFFSET", "SCALE", "UNITS", "UNIT_CODES", "UNIT_INDEX", "accepted"]


def _table(*groups: tuple[float, float, Iterable[str]]) -> Mapping[str, tuple[float, float]]:
    return MappingProxyType({name: (scale, offset) for scale, offset, names in groups for name in names})


_CONC = ["µg/m³", "ug/m3"] + [f"{mu}g/{m3}" for mu in ("µ", "μ", "u") for m3 in ("m³", "m3", "m^3")
                                if f"{mu}g/{m3}" not in ("µg/m³", "ug/m3")]

#: kind -> {unit spelling: (scale, offset)}; canonical = value * scale + offset.
UNITS: Mapping[str, Mapping[str, tuple[float, float]]] = MappingProxyType({
    "pm25": _table((1.0, 0.0, _CONC[:2]), (1e9, 0.0, ("kg/m3", "kg/m³")), (1e3, 0.0, ("mg/m3", "mg/m³")),
                   (1.0, 0.0, _CONC[2:])),
    "pm10": _table((1.0, 0.0, _CONC[:2]), (1e9, 0.0, ("kg/m3", "kg/m³")), (1e3, 0.0, ("mg/m3", "mg/m³")),
                   (1.0, 0.0, _CONC[2:])),
    "noise_laeq": _table((1.0, 0.0, ("dB(A)", "dBA", "dB"))),
    "water_level": _table((1.0, 0.0, ("m",)), (0.01, 0.0, ("cm",)), (0.001, 0.0, ("mm",))),
    "temperature": _table((1.0, 0.0, ("°C", "Cel", "degC", "℃")), (1.0, -273.15, ("K",))),
    "water_pressure": _table((1.0, 0.0, ("bar",)), (1e-5, 0.0, ("Pa",)), (1e-3, 0.0, ("hPa",)),
                             (0.01, 0.0, ("kPa",)), (10.0, 0.0, ("MPa",))),
    "water_flow": _table((1.0, 0.0, ("m³/h", "m3/h")), (3600.0, 0.0, ("m3/s", "m³/s")), (3.6, 0.0, ("l/s", "L/s"))),
    "feeder_load": _table((1.0, 0.0, ("MW",)), (1e-3, 0.0, ("kW",)), (1e-6, 0.0, ("W",))),
    "streetlight_current": _table((1.0, 0.0, ("A",)), (1e-3, 0.0, ("mA",))),
    "occupancy": _table((1.0, 0.0, ("%",)), (100.0, 0.0, ("/",))),
    "vehicle_count": _table((1.0, 0.0, ("veh/5min", "veh", "count")), (1.0 / 12.0, 0.0, ("veh/h",))),
    "avg_speed": _table((1.0, 0.0, ("km/h", "kmh")), (3.6, 0.0, ("m/s",))),
})
assert set(UNITS) == set(KINDS) and all(KINDS[k].unit in UNITS[k] for k in KINDS), "UNITS must cover KINDS"

#: UN/CEFACT common codes (NGSI-LD ``unitCode``) -> unit spelling of :data:`UNITS`.
UNIT_CODES: Mapping[str, str] = MappingProxyType({
    "GQ": "µg/m³", "GP": "mg/m³", "KMH": "km/h", "MTS": "m/s", "P1": "%", "C62": "/", "2N": "dB",
    "MTR": "m", "CMT": "cm", "MMT": "mm", "CEL": "°C", "KEL": "K", "BAR": "bar", "PAL": "Pa", "KPA": "kPa",
    "A97": "hPa", "MQH": "m³/h", "MQS": "m³/s", "MAW": "MW", "KWT": "kW", "WTT": "W", "AMP": "A", "4K": "mA",
})

#: kind -> the UN/CEFACT code whose unit is the kind's canonical one (factor 1, no offset);
#: kinds with no such code are absent and are written without a ``unitCode``.
CANONICAL_CODES: Mapping[str, str] = MappingProxyType({
    kind: code for kind in KINDS for code, unit in UNIT_CODES.items() if UNITS[kind].get(unit) == (1.0, 0.0)})
assert len(CANONICAL_CODES) == sum(
    1 for kind in KINDS for unit in UNIT_CODES.values() if UNITS[kind].get(unit) == (1.0, 0.0)), \
    "one canonical UN/CEFACT code per kind at most"

# --- the table as arrays, for the decoders' one numpy pass -------------------------------
#: kind names by ``Registry.kind_code`` (row of :data:`SCALE`).
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
# unit code 0 = "no unit given" (canonical); 1.. = every spelling in UNITS
_UNIT_NAMES: tuple[str, ...] = tuple(sorted({u for table in UNITS.values() for u in table}))
#: unit spelling (None: none given) -> column of :data:`SCALE`.
UNIT_INDEX: dict[Any, int] = {None: 0, **{u: i + 1 for i, u in enumerate(_UNIT_NAMES)}}


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _unit_arrays() -> tuple[np.ndarray, np.ndarray]:
    scale = np.full((len(KIND_NAMES), len(_UNIT_NAMES) + 1), np.nan)
    offset = np.zeros_like(scale)
    scale[:, 0] = 1.0
    for k, kind in enumerate(KIND_NAMES):
        for unit, (s, o) in UNITS[kind].items():
            scale[k, UNIT_INDEX[unit]] = s
            offset[k, UNIT_INDEX[unit]] = o
    return _frozen(scale), _frozen(offset)


#: ``[kind code, unit code]`` -> scale (NaN: the unit does not fit the kind) and offset to canonical.
SCALE, OFFSET = _unit_arrays()


def accepted(kind: str, limit: int = 8) -> str:
    """The first ``limit`` spellings ``kind`` accepts, for a reason line."""
    names = list(UNITS[kind])
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")
