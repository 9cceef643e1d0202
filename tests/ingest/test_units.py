"""ingest.units: one table of unit spellings; the code a writer sends is derived from it."""
from __future__ import annotations

from ingest.units import CANONICAL_CODES, UNIT_CODES, UNITS
from processing.kinds import KINDS


def test_every_unit_code_names_a_spelling_of_the_table() -> None:
    spellings = {u for table in UNITS.values() for u in table}
    assert set(UNIT_CODES.values()) <= spellings


def test_the_code_written_for_a_kind_reads_back_as_its_canonical_unit() -> None:
    assert dict(CANONICAL_CODES) == {"pm25": "GQ", "pm10": "GQ", "avg_speed": "KMH", "occupancy": "P1",
                                     "noise_laeq": "2N", "water_level": "MTR", "temperature": "CEL",
                                     "water_pressure": "BAR", "water_flow": "MQH", "feeder_load": "MAW",
                                     "streetlight_current": "AMP"}
    for kind, code in CANONICAL_CODES.items():
        assert UNITS[kind][UNIT_CODES[code]] == (1.0, 0.0)
    assert set(KINDS) - set(CANONICAL_CODES) == {"vehicle_count"}     # no UN/CEFACT code: sent without one
