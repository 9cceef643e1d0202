"""Benchmark of the control room's live refresh: server time and bytes per refresh.

    python3 -m bench.refresh --sensors 2000
    python3 -m bench.refresh --sensors 10000

A synthetic city of N sensors (the Bắc Giang mix of kinds, placed at random
inside the city's box) runs through the real pipeline: ``--preroll-hours`` of
history, then one pipeline step per refresh (``--speed`` simulated seconds per
wall second, one refresh per ``--refresh-ms``).  Each refresh is the browser's
own request -- a POST to Dash's ``/_dash-update-component`` with the
``view-state`` the previous response returned -- sent through Flask's test
client, so the time measured is the whole server side: routing, the
callback, and JSON encoding of the response.  The first few refreshes after
the page load are skipped (the steady state is what a browser left open all
shift sees).

It reports figures; it does not pass or fail (targets: <= 50 ms and <= 50 kB
per steady-state refresh at 2,000 sensors).  Measured on the 2-core
development machine (medians of 60 refreshes, one per second):

===========  =====  ==========  ===========  ====================
sensors      speed  server ms   response kB  first page load
===========  =====  ==========  ===========  ====================
2,000        ×1     1.9         0.6          371 kB
10,000       ×1     2.3         0.8          1.7 MB
2,000        ×60    4.3         3.8          (p95 7.7 ms, 9.1 kB)
10,000       ×60    19.4        29.4         (p95 23.4 ms, 36.4 kB)
===========  =====  ==========  ===========  ====================
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BenchResult", "main", "run", "synthetic_city"]

# city box (lon, lat) and the kind mix of the Bắc Giang registry, with interval seconds
_BOX = (106.13, 106.27, 21.22, 21.33)
_MIX = (("vehicle_count", 26, 300), ("avg_speed", 24, 300), ("occupancy", 14, 300), ("pm25", 24, 300),
        ("pm10", 24, 300), ("noise_laeq", 19, 300), ("water_level", 9, 600), ("temperature", 16, 600),
        ("water_pressure", 18, 60), ("water_flow", 11, 60), ("feeder_load", 16, 60),
        ("streetlight_current", 17, 300))


def synthetic_city(n: int, seed: int = 7):
    """A registry of ``n`` sensors inside the city box, kinds in the Bắc Giang proportions."""
    from processing.kinds import KINDS
    from processing.registry import Registry, SensorSpec

    rng = np.random.default_rng(seed)
    weights = np.array([w for _, w, _ in _MIX], dtype=float)
    picks = rng.choice(len(_MIX), size=n, p=weights / weights.sum())
    lon = rng.uniform(_BOX[0], _BOX[1], n)
    lat = rng.uniform(_BOX[2], _BOX[3], n)
    wards = [f"P{k:02d}" for k in range(16)]
    limits = {"pm25": (None, 150.0), "pm10": (None, 350.0), "water_level": (None, 6.3),
              "water_pressure": (1.0, None), "feeder_load": (None, 10.0)}
    sensors = []
    for i in range(n):
        kind, _, interval = _MIX[int(picks[i])]
        spec = KINDS[kind]
        lo, hi = limits.get(kind, (None, None))
        sensors.append(SensorSpec(id=f"SYN-{i:05d}", name=f"{spec.label_vi} {i}", domain=spec.domain, kind=kind,
                                  unit=spec.unit, ward=wards[i % len(wards)], lon=float(lon[i]), lat=float(lat[i]),
                                  interval_s=float(interval), limit_low=lo, limit_high=hi))
    return Registry(tuple(sensors))


@dataclass(frozen=True)
class BenchResult:
    sensors: int
    speed: float
    layout_bytes: int
    refreshes: int
    unchanged: int                 # refreshes answered with "nothing new" (HTTP 204)
    ms_median: float
    ms_p95: float
    ms_max: float
    bytes_median: float
    bytes_p95: float
    bytes_max: int
    gzip_median: float
    detail_ms_median: float
    detail_bytes_median: float
    pipeline_ms_median: float      # the pipeline step between refreshes (for scale, not counted)


def _callback_key(app, needle: str) -> str:
    for key in app.callback_map:
        if needle in key:
            return key
    raise KeyError(needle)


def _outputs(key: str) -> list[dict[str, str]]:
    parts = key.strip(".").split("...")
    out = []
    for part in parts:
        cid, prop = part.rsplit(".", 1)
        out.append({"id": cid, "property": prop})
    return out


def run(sensors: int = 2000, *, speed: float = 1.0, refreshes: int = 60, warm: int = 5, preroll_hours: float = 1.0,
        refresh_ms: int = 1000, anomaly_rate: float = 0.5, seed: int = 1) -> BenchResult:
    from dashboard.app import create_app, load_wards_geojson
    from ioc.auth.store import AuthStore
    from ioc.citydata import default_city_dir
    from ioc.pipeline import Pipeline, PipelineConfig

    registry = synthetic_city(sensors)
    clock_now = [1_772_420_400.0]
    pipeline = Pipeline(registry, PipelineConfig(speed=speed, anomaly_rate=anomaly_rate, seed=seed,
                                                 preroll_hours=preroll_hours),
                        clock=lambda: clock_now[0], start=clock_now[0])
    pipeline.preroll()
    auth = AuthStore.in_folder(tempfile.mkdtemp(prefix="ioc-bench-auth-"))
    secret, _ = auth.add_token("bench-wall", "read", time.time())      # as a wall screen reads: a read token
    app = create_app(pipeline, auth=auth, wards=load_wards_geojson(default_city_dir() / "wards.geojson"),
                     refresh_ms=refresh_ms)
    client = app.server.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    layout = client.get("/_dash-layout")
    layout_bytes = len(layout.data)
    page = json.loads(layout.data)

    def find(node: Any, cid: str) -> dict | None:
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == cid:
                return node
            for v in node.get("props", {}).values():
                found = find(v, cid)
                if found:
                    return found
        elif isinstance(node, list):
            for v in node:
                found = find(v, cid)
                if found:
                    return found
        return None

    state = find(page, "view-state")["props"]["data"]
    refresh_key = _callback_key(app, "sensor-map.figure")
    detail_key = _callback_key(app, "detail-graph.figure")
    outputs = _outputs(refresh_key)
    detail_outputs = _outputs(detail_key)
    step = speed * refresh_ms / 1000.0
    times: list[float] = []
    sizes: list[int] = []
    gz: list[int] = []
    unchanged = 0
    pipe_ms: list[float] = []
    detail_times: list[float] = []
    detail_sizes: list[int] = []
    detail_state = None
    probe = int(np.flatnonzero(registry.kind_code == registry.kind_code[0])[0])
    for k in range(warm + refreshes):
        clock_now[0] += refresh_ms / 1000.0
        t0 = time.perf_counter()
        pipeline.step(pipeline.sim_now + step)
        pipe_ms.append((time.perf_counter() - t0) * 1000)
        body = {"output": refresh_key, "outputs": outputs,
                "inputs": [{"id": "tick", "property": "n_intervals", "value": k + 1},
                           {"id": "lang-switch", "property": "value", "value": "vi"}],
                "state": [{"id": "view-state", "property": "data", "value": state}],
                "changedPropIds": ["tick.n_intervals"]}
        t0 = time.perf_counter()
        resp = client.post("/_dash-update-component", json=body)
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status_code == 200:
            data = json.loads(resp.data)
            state = data["response"]["view-state"]["data"]
        elif resp.status_code != 204:
            raise RuntimeError(f"refresh failed: HTTP {resp.status_code}: {resp.data[:300]!r}")
        # the drill-down, open on one sensor
        dbody = {"output": detail_key, "outputs": detail_outputs,
                 "inputs": [{"id": "selected-sensor", "property": "data", "value": probe},
                            {"id": "tick", "property": "n_intervals", "value": k + 1},
                            {"id": "lang-switch", "property": "value", "value": "vi"}],
                 "state": [{"id": "detail-state", "property": "data", "value": detail_state}],
                 "changedPropIds": ["tick.n_intervals"]}
        t1 = time.perf_counter()
        dresp = client.post("/_dash-update-component", json=dbody)
        delapsed = (time.perf_counter() - t1) * 1000
        if dresp.status_code == 200:
            detail_state = json.loads(dresp.data)["response"]["detail-state"]["data"]
        if k < warm:
            continue
        times.append(elapsed)
        sizes.append(len(resp.data))
        gz.append(len(gzip.compress(resp.data)) if resp.data else 0)
        unchanged += resp.status_code == 204
        detail_times.append(delapsed)
        detail_sizes.append(len(dresp.data))

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    return BenchResult(
        sensors=sensors, speed=speed, layout_bytes=layout_bytes, refreshes=refreshes, unchanged=unchanged,
        ms_median=statistics.median(times), ms_p95=pct(times, 95), ms_max=max(times),
        bytes_median=statistics.median(sizes), bytes_p95=pct(sizes, 95), bytes_max=max(sizes),
        gzip_median=statistics.median(gz), detail_ms_median=statistics.median(detail_times),
        detail_bytes_median=statistics.median(detail_sizes), pipeline_ms_median=statistics.median(pipe_ms))


def report(r: BenchResult) -> str:
    return "\n".join([
        f"sensors {r.sensors:,}, speed ×{r.speed:g}, {r.refreshes} steady-state refreshes "
        f"({r.unchanged} with nothing new)",
        f"  refresh server time   median {r.ms_median:6.1f} ms   p95 {r.ms_p95:6.1f} ms   max {r.ms_max:6.1f} ms",
        f"  refresh response      median {r.bytes_median / 1000:6.2f} kB   p95 {r.bytes_p95 / 1000:6.2f} kB   "
        f"max {r.bytes_max / 1000:6.2f} kB   (gzip median {r.gzip_median / 1000:.2f} kB)",
        f"  drill-down refresh    median {r.detail_ms_median:6.1f} ms, {r.detail_bytes_median / 1000:.2f} kB",
        f"  first page layout     {r.layout_bytes / 1000:,.0f} kB (once per page load)",
        f"  (pipeline step between refreshes: median {r.pipeline_ms_median:.1f} ms, not counted)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.refresh", description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=2000)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    parser.add_argument("--refreshes", type=int, default=60)
    parser.add_argument("--preroll-hours", type=float, default=1.0)
    parser.add_argument("--anomaly-rate", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.sensors < 1 or args.refreshes < 1:
        print("error: --sensors and --refreshes must be >= 1", file=sys.stderr)
        return 2
    start = time.perf_counter()
    r = run(args.sensors, speed=args.speed, refreshes=args.refreshes, preroll_hours=args.preroll_hours,
            anomaly_rate=args.anomaly_rate)
    print(report(r))
    print(f"  (whole benchmark {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
