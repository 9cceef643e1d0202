"""The history store on this machine: write rate, disk per million readings, query times, retention.

Run ``python3 -m bench.history [--days 7] [--sensors 0]``.  It simulates the city (or a synthetic
city of ``--sensors`` sensors) for ``--days`` days, scores every reading with the anomaly core,
and reports for :class:`ioc.history.HistoryStore`:

1. **write** -- readings/s through ``add`` + ``flush`` in 10-minute batches (the pipeline's hand-over
   and the writer thread's work), then the daily merge; bytes on disk per million readings;
   beside the same readings as gzip CSV (pandas), the usual export, written in the same run;
2. **query** -- one sensor over a week (raw and downsampled to 500 points), and the whole city at
   one instant (:meth:`ioc.time_travel.PastView.snapshot_at`: the readings of the day before,
   newest per sensor, the tiles and the alerts then), median of 5 runs at random instants;
3. **retention** -- the time to delete the days past a 3-day retention, and what is left.

A benchmark reports figures; it does not pass or fail.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

T0 = 1772409600.0        # 2026-03-02 00:00 UTC


def _median_ms(fn, runs: int = 5) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--sensors", type=int, default=0, help="a synthetic city of N sensors (0: Bắc Giang's)")
    args = parser.parse_args(argv)

    from ioc.alerting.wiring import build_alerting
    from ioc.citydata import default_city_dir, load_registry
    from ioc.history import HistoryStore
    from ioc.time_travel import PastView
    from processing.core import AnomalyCore
    from processing.registry import Registry
    from simulators.city import CitySimulator

    registry = (Registry.synthetic(args.sensors, "pm25", 60.0) if args.sensors
                else load_registry(default_city_dir() / "sensors.geojson"))
    t_end = T0 + args.days * 86400
    t = time.perf_counter()
    batch, _ = CitySimulator(registry, seed=7, anomaly_rate=1.0).generate(T0, t_end)
    scores = AnomalyCore(registry).update(batch)
    order = np.argsort(batch.ts, kind="stable")                  # as they arrive: in time order
    sensor, ts, value = batch.sensor[order], batch.ts[order], batch.value[order]
    score, alert, reasons = scores.score[order], scores.alert[order], scores.reasons[order]
    n = ts.size
    print(f"machine: {os.cpu_count()} cores; {len(registry)} sensors, {args.days:g} days, {n:,} readings "
          f"(simulated and scored in {time.perf_counter() - t:.1f} s)", flush=True)

    with tempfile.TemporaryDirectory(prefix="ioc-bench-history-") as tmp:
        folder = Path(tmp) / "history"
        h = HistoryStore(folder, registry.ids, retention_days=3650)
        bounds = np.searchsorted(ts, np.arange(T0, t_end + 600, 600.0))
        t = time.perf_counter()
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b > a:
                h.add(sensor[a:b], ts[a:b], value[a:b], score[a:b], alert[a:b], reasons[a:b])
                h.flush()
        write_s = time.perf_counter() - t
        parts = len(list(folder.glob("day=*/part-*.parquet")))
        t = time.perf_counter()
        h.compact(keep_parts=1)
        merge_s = time.perf_counter() - t
        disk = h.disk_bytes()
        print(f"write: {n / write_s:,.0f} readings/s in 10-minute flushes ({parts} files), then the daily merge "
              f"{merge_s:.1f} s ({n / (write_s + merge_s):,.0f} readings/s both); "
              f"{disk / n * 1e6 / 2**20:.1f} MiB per million readings ({disk / n:.1f} bytes/reading)", flush=True)
        import pandas as pd

        names = np.array(registry.ids, dtype=object)
        frame = pd.DataFrame({"sensor_id": names[sensor], "ts": ts, "value": value, "score": score, "alert": alert,
                              "reasons": reasons})
        csv = Path(tmp) / "readings.csv.gz"
        t = time.perf_counter()
        with gzip.open(csv, "wt", compresslevel=6) as f:
            frame.to_csv(f, index=False)
        csv_s = time.perf_counter() - t
        print(f"baseline: gzip CSV (pandas) {n / csv_s:,.0f} readings/s, {csv.stat().st_size / n * 1e6 / 2**20:.1f} "
              f"MiB per million readings: Parquet is {csv.stat().st_size / disk:.1f}x smaller, "
              f"{(n / write_s) / (n / csv_s):.1f}x faster to write", flush=True)

        rng = np.random.default_rng(1)
        sid = registry.ids[int(rng.integers(len(registry)))]
        week0 = max(T0, t_end - 7 * 86400)
        raw = h.sensor_history(sid, week0, t_end, points=10**7)
        q_raw = _median_ms(lambda: h.sensor_history(sid, week0, t_end, points=10**7))
        q_500 = _median_ms(lambda: h.sensor_history(sid, week0, t_end, points=500))
        print(f"query: one sensor, one week ({len(raw):,} readings): {q_raw:.0f} ms raw, {q_500:.0f} ms downsampled "
              f"to 500 points", flush=True)
        service, _ = build_alerting(registry, None, channels={})
        past = PastView(registry, h, service)
        instants = rng.uniform(T0 + 86400, t_end, 5)
        city = []
        for at in instants:
            t = time.perf_counter()
            snap = past.snapshot_at(float(at))
            city.append((time.perf_counter() - t) * 1000)
        shown = int((~np.isnan(snap.last_ts)).sum())
        one_day = len(h.readings(float(instants[-1]) - 86400, float(instants[-1])))
        print(f"query: the whole city at one instant ({shown} sensors, from the {one_day:,} readings of the day "
              f"before): {statistics.median(city):.0f} ms median of 5 instants (max {max(city):.0f} ms)", flush=True)

        h.retention_days = 3.0
        before = sorted(p.name for p in folder.glob("day=*"))
        t = time.perf_counter()
        gone = h.expire(now=t_end)
        expire_ms = (time.perf_counter() - t) * 1000
        left = sorted(p.name for p in folder.glob("day=*"))
        print(f"retention: 3 days at {time.strftime('%Y-%m-%d', time.gmtime(t_end))}: {len(gone)} of {len(before)} "
              f"day folders deleted in {expire_ms:.0f} ms; left {', '.join(x[4:] for x in left)}; "
              f"{h.disk_bytes() / 2**20:.1f} MiB kept", flush=True)


if __name__ == "__main__":
    main()
