"""Decode throughput of :func:`ingest.formats.decode_many`, beside bare ``json.loads``.

Run ``python3 -m bench.decode [--messages N] [--repeat R]``.  For each
payload format it builds realistic messages for the Bắc Giang registry
(``config/bac_giang/sensors.geojson``; a synthetic one if that is missing),
decodes them in batches of 1,000 messages (SenML twice: packs of one sensor as
``ingest.formats.encode`` writes them, and gateway packs of mixed sensors with a base
name prefix and a unit on every record), and in the same run times a loop of
bare ``json.loads`` over the same bytes.  It prints readings/s for both and the
ratio (decode / json.loads; above 1 means the decoder, which also validates,
converts units and builds the batch, beats a plain parse).  Times are this
process's CPU seconds (``time.process_time``), best of ``R`` runs: both loops are
single-threaded, so on an idle core that is the wall time, and on the shared
development machines it is not inflated by other processes' time slices.
A benchmark reports figures; it does not pass or fail.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Callable, Sequence

import numpy as np

from ingest.formats import decode_many
from ingest.formats.ngsi_ld import NGSI_ATTRIBUTES
from processing.kinds import KINDS
from processing.registry import Registry

T0 = 1772412000.0
BATCH = 1000
# SenML spelling per kind (what a real gateway sends; converted to the canonical unit on decode)
SENML_UNIT = {"vehicle_count": "veh", "avg_speed": "km/h", "occupancy": "%", "pm25": "ug/m3", "pm10": "ug/m3",
              "noise_laeq": "dBA", "water_level": "m", "temperature": "Cel", "water_pressure": "bar",
              "water_flow": "m3/h", "feeder_load": "MW", "streetlight_current": "A"}


def load_registry() -> Registry:
    from ioc.paths import city_dir

    path = city_dir() / "sensors.geojson"
    if path.exists():
        return Registry.from_geojson(json.loads(path.read_text(encoding="utf-8")), str(path))
    return Registry.synthetic(240)


def _values(reg: Registry, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lo = np.array([KINDS[reg.sensors[i].kind].valid_min for i in idx])
    hi = np.array([KINDS[reg.sensors[i].kind].valid_max for i in idx])
    return np.round(lo + (hi - lo) * rng.uniform(0.05, 0.3, len(idx)), 2)


def compact_messages(reg: Registry, n: int, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    idx = rng.integers(0, len(reg), n)
    vals = _values(reg, idx, rng)
    out = []
    for k, (i, v) in enumerate(zip(idx.tolist(), vals.tolist())):
        s = reg.sensors[i]
        out.append((f"city/{s.ward}/{s.domain}/{s.id}",
                    json.dumps({"id": s.id, "ts": T0 + k, "v": v}).encode()))
    return out


def senml_messages(reg: Registry, n_packs: int, rng: np.random.Generator, size: int = 100
                   ) -> list[tuple[str, bytes]]:
    """Gateway packs: ``size`` readings of mixed sensors, names and units per record, base name/time."""
    out = []
    for p in range(n_packs):
        idx = rng.integers(0, len(reg), size)
        vals = _values(reg, idx, rng)
        pack: list[dict] = []
        for k, (i, v) in enumerate(zip(idx.tolist(), vals.tolist())):
            s = reg.sensors[i]
            rec = {"n": s.id[3:], "u": SENML_UNIT[s.kind], "v": v, "t": float(k)}
            if k == 0:
                rec = {"bn": s.id[:3], "bt": T0 + p * size, **rec}
            pack.append(rec)
        out.append((f"city/gw/{p % 8}", json.dumps(pack, ensure_ascii=False).encode()))
    return out


def senml_sensor_messages(reg: Registry, n_packs: int, rng: np.random.Generator, size: int = 100
                          ) -> list[tuple[str, bytes]]:
    """One sensor's ``size`` readings a pack, as ``ingest.formats`` writes them: ``bn``/``bt``/``bu`` in the
    first record, then relative ``t`` and ``v``."""
    out = []
    for p in range(n_packs):
        i = int(rng.integers(0, len(reg)))
        s = reg.sensors[i]
        vals = _values(reg, np.full(size, i), rng).tolist()
        pack: list[dict] = [{"bn": s.id, "bt": T0 + p * size * 60.0, "bu": SENML_UNIT[s.kind], "t": 0.0, "v": vals[0]}]
        pack += [{"t": 60.0 * k, "v": v} for k, v in enumerate(vals[1:], 1)]
        out.append((f"city/{s.ward}/{s.domain}/{s.id}", json.dumps(pack, ensure_ascii=False).encode()))
    return out


def ngsi_messages(reg: Registry, n: int, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """Normalized NGSI-LD entities (one per message), as a context broker notification would carry."""
    idx = rng.integers(0, len(reg), n)
    vals = _values(reg, idx, rng)
    out = []
    for k, (i, v) in enumerate(zip(idx.tolist(), vals.tolist())):
        s = reg.sensors[i]
        spec = NGSI_ATTRIBUTES[s.kind]
        scale, offset = {"/": (0.01, 0.0), "m³/s": (1 / 3600, 0.0)}.get(spec.unit, (1.0, 0.0))
        ent = {"id": f"urn:ngsi-ld:{spec.entity_type}:{s.id}", "type": spec.entity_type,
               "dateObserved": {"type": "Property",
                                "value": {"@type": "DateTime", "@value": f"2026-03-02T00:{k % 60:02d}:00Z"}},
               spec.names[0]: {"type": "Property", "value": v * scale + offset},
               "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [s.lon, s.lat]}},
               "@context": ["https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/"
                            "master/context.jsonld"]}
        out.append(("ioc.readings", json.dumps(ent, ensure_ascii=False).encode()))
    return out


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def measure(name: str, reg: Registry, messages: Sequence[tuple[str, bytes]], repeat: int) -> dict:
    batches = [messages[i:i + BATCH] for i in range(0, len(messages), BATCH)]
    first = [decode_many(b, registry=reg, received=T0 + 3600) for b in batches]
    readings = sum(len(d.batch) for d in first)
    dead = sum(len(d.dead) for d in first)

    def run_decode() -> None:
        for b in batches:
            decode_many(b, registry=reg, received=T0 + 3600)

    def run_loads() -> None:
        loads = json.loads
        for b in batches:
            for _, p in b:
                loads(p)

    t_dec = _best(run_decode, repeat)
    t_json = _best(run_loads, repeat)
    return {"format": name, "messages": len(messages), "readings": readings, "dead": dead,
            "decode_rps": readings / t_dec, "json_rps": readings / t_json, "ratio": t_json / t_dec,
            "decode_mps": len(messages) / t_dec}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.decode", description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=50_000, help="compact and NGSI-LD messages (default 50,000)")
    ap.add_argument("--packs", type=int, default=1_000, help="SenML packs of 100 readings (default 1,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept (default 3)")
    args = ap.parse_args(argv)
    reg = load_registry()
    rng = np.random.default_rng(8428)
    cases = [("compact, 1 reading/message", compact_messages(reg, args.messages, rng)),
             ("SenML, 100 of one sensor", senml_sensor_messages(reg, args.packs, rng)),
             ("SenML, 100 mixed (gateway)", senml_messages(reg, args.packs, rng)),
             ("NGSI-LD normalized entity", ngsi_messages(reg, args.messages, rng))]
    print(f"decode_many in batches of {BATCH:,} messages, registry of {len(reg)} sensors, "
          f"CPU time, best of {args.repeat}")
    print(f"{'format':<28} {'messages':>9} {'readings':>9} {'decode readings/s':>18} "
          f"{'json.loads readings/s':>22} {'ratio':>6}")
    for name, messages in cases:
        r = measure(name, reg, messages, args.repeat)
        if r["dead"]:
            print(f"warning: {name}: {r['dead']:,} dead letters in a clean stream")
        print(f"{r['format']:<28} {r['messages']:>9,} {r['readings']:>9,} {r['decode_rps']:>18,.0f} "
              f"{r['json_rps']:>22,.0f} {r['ratio']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
