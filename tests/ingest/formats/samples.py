"""What the format tests share: a small registry's sensors (ids as in the Bắc Giang registry, so
the malformed corpus in ``tests/ingest/malformed/`` fits both), times, and helpers that decode one
message and read the result back."""
from __future__ import annotations

import json
from pathlib import Path

from ingest.formats import DeadLetter, Decoded, decode
from processing.registry import Registry

MALFORMED = Path(__file__).parents[1] / "malformed"
T0 = 1772412000.0                    # 2026-03-02 00:40 UTC
RECEIVED = T0 + 300.0

SENSORS = {                          # id -> kind (ids as in config/bac_giang/sensors.geojson)
    "BG-TRF-001": "vehicle_count",
    "BG-TRF-002": "avg_speed",
    "BG-TRF-003": "occupancy",
    "BG-ENV-001": "water_level",
    "BG-ENV-012": "temperature",
    "BG-ENV-013": "noise_laeq",
    "BG-ENV-014": "pm25",
    "BG-ENV-015": "pm10",
    "BG-UTL-001": "water_pressure",
    "BG-UTL-019": "water_flow",
    "BG-UTL-030": "feeder_load",
    "BG-UTL-046": "streetlight_current",
}
ID_OF = {kind: sid for sid, kind in SENSORS.items()}


def dec(reg: Registry, payload: bytes | str, *, source: str = "test", fmt: str | None = None) -> Decoded:
    if isinstance(payload, str):
        payload = payload.encode()
    return decode(payload, source=source, registry=reg, received=RECEIVED, fmt=fmt)


def js(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def rows(out: Decoded, reg: Registry) -> list[tuple[str, float, float]]:
    return [(reg.sensors[i].id, t, v) for i, t, v in
            zip(out.batch.sensor.tolist(), out.batch.ts.tolist(), out.batch.value.tolist())]


def one_dead(out: Decoded) -> DeadLetter:
    assert len(out.dead) == 1, out.dead
    return out.dead[0]


def entity(kind: str, etype: str, attr: str, value: object, *, normalized: bool, **extra: object) -> dict:
    sid = ID_OF[kind]
    ent: dict = {"id": f"urn:ngsi-ld:{etype}:{sid}", "type": etype}
    if normalized:
        ent[attr] = {"type": "Property", "value": value, **extra}
        ent["dateObserved"] = {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-03-02T00:40:00Z"}}
        ent["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.2, 21.27]}}
        ent["@context"] = ["https://smartdatamodels.org/context.jsonld"]
    else:
        ent[attr] = value
        ent["dateObserved"] = "2026-03-02T07:40:00+07:00"
        ent["location"] = {"type": "Point", "coordinates": [106.2, 21.27]}
    return ent


def good_messages(i: int) -> list[tuple[str, bytes]]:
    t = T0 + 60 * i
    return [
        ("city/tran-phu/environment/BG-ENV-014", js({"id": "BG-ENV-014", "ts": t, "v": 30.0 + i})),
        ("city/tran-phu/traffic/BG-TRF-001", js([{"bn": "BG-TRF-00", "bt": t, "n": "1", "u": "veh", "v": 10 + i},
                                                 {"n": "2", "u": "km/h", "v": 40.0}])),
        ("ioc.readings", js(entity("noise_laeq", "NoiseLevelObserved", "LAeq", 60.0 + i, normalized=True))),
    ]
