"""Alerting benchmark: engine throughput, and reading → webhook received latency.

    python3 -m bench.alerting [--sensors 20000] [--trials 200]

1. *Engine throughput* (pure, no I/O): ``--sensors`` synthetic sensors spread over
   the city's wards and domains; every sensor's condition rises (one batch),
   continues (one batch), clears (one batch) and auto-resolves (one tick), so each
   alert goes through open → routed (rules, roster, silences, incidents) →
   updated → cleared → resolved.  Reported as alerts/s through the whole lifecycle.
2. *End-to-end latency* (real I/O): a reading enters the anomaly core, the
   engine opens and routes an alert, the service renders the bilingual text and
   CAP XML and commits to SQLite (WAL), the dispatcher thread (woken at once)
   POSTs the signed webhook to a local HTTP server, which stamps the arrival.
   Reported as p50 / p99 over ``--trials`` alerts.

Figures, not pass/fail.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from ioc.alerting import load_config
from ioc.alerting.channels import WebhookChannel
from ioc.alerting.dispatcher import AlertService, Dispatcher
from ioc.alerting.store import AlertStore
from ioc.citydata import default_city_dir, load_registry, load_wards
from processing.alerting.config import AlertingConfig
from processing.alerting.engine import AlertEngine
from processing.batch import ReadingBatch
from processing.core import AnomalyCore
from processing.reasons import Reason
from processing.registry import Registry, SensorSpec

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=7))).timestamp()


def city_like(n: int, base: Registry) -> Registry:
    """``n`` sensors cycling through the real sensors' kinds, wards and positions."""
    src = base.sensors
    return Registry(tuple(SensorSpec(id=f"B{i:06d}", name=f"bench {i}", domain=src[i % len(src)].domain,
                                     kind=src[i % len(src)].kind, unit=src[i % len(src)].unit,
                                     ward=src[i % len(src)].ward, lon=src[i % len(src)].lon,
                                     lat=src[i % len(src)].lat, interval_s=60.0) for i in range(n)))


def engine_throughput(reg: Registry, cfg: AlertingConfig) -> tuple[float, int, int]:
    eng = AlertEngine(reg, cfg)
    n = len(reg)
    sensor = np.arange(n, dtype=np.int32)
    on = np.ones(n, dtype=bool)
    dev = np.full(n, int(Reason.DEVIATION), dtype=np.uint16)
    t = time.perf_counter()
    notices = 0
    for k, (flag, reasons) in enumerate(((on, dev), (on, dev), (~on, dev * 0))):
        now = T0 + 60 * k
        out = eng.ingest(ReadingBatch.from_arrays(sensor, np.full(n, now), np.ones(n)), flag,
                         flag * 0.9, reasons, now)
        notices += len(out.notices)
    out = eng.tick(T0 + 120 + cfg.engine.auto_resolve_s)
    elapsed = time.perf_counter() - t
    resolved = sum(1 for e in out.events if e.type == "resolved")
    return n / elapsed, notices, resolved


def latency(cfg: AlertingConfig, trials: int) -> list[float]:
    base = load_registry(default_city_dir() / "sensors.geojson")
    reg = city_like(max(trials, 50), base)
    wards = load_wards(default_city_dir() / "wards.geojson")
    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.setdefault(self.headers["Idempotency-Key"], time.perf_counter())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    officers = tuple(o.__class__(o.id, o.name, o.phone, "", url) for o in cfg.officers)   # webhook only
    cfg = cfg.__class__(officers, tuple(t.__class__(t.id, t.name, t.name_en, t.escalation, ()) for t in cfg.teams),
                        cfg.shifts, cfg.rules, (), dataclasses.replace(cfg.engine, incident_min_alerts=10**9),
                        cfg.cap, cfg.delivery, cfg.default_team)      # every alert notified: no grouping
    out: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(Path(tmp) / "alerts.sqlite3")
        disp = Dispatcher(store, {"webhook": WebhookChannel(b"bench-secret", timeout_s=5)}, cfg.delivery)
        svc = AlertService(reg, cfg, store, ward_rings={w: wards.ring(w) for w in wards.names},
                           on_queued=disp.wake)
        stop = threading.Event()
        th = threading.Thread(target=disp.run_forever, args=(stop, 0.5), daemon=True)
        th.start()
        core = AnomalyCore(reg)
        n = len(reg)
        rng = np.random.default_rng(1)
        warm = 240
        ts = T0 - 60.0 * np.arange(warm, 0, -1)
        core.update(ReadingBatch.from_arrays(np.tile(np.arange(n), warm), np.repeat(ts, n),
                                             rng.normal(50.0, 2.0, warm * n)))
        for i in range(trials):
            now = T0 + i
            batch = ReadingBatch.from_arrays([i], [now], [5000.0])
            t0 = time.perf_counter()
            scores = core.update(batch)
            o = svc.step(batch, scores, None, now)
            keys = [x.key for x in o.notices if x.channel == "webhook"]
            deadline = time.perf_counter() + 5
            while keys and not all(k in arrived for k in keys) and time.perf_counter() < deadline:
                time.sleep(0.0002)
            if keys and all(k in arrived for k in keys):
                out.append(max(arrived[k] for k in keys) - t0)
        stop.set()
        disp.wake()
        th.join(2)
        store.close()
    srv.shutdown()
    srv.server_close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.alerting", description=__doc__.split("\n")[0])
    ap.add_argument("--sensors", type=int, default=20000)
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args(argv)
    base = load_registry(default_city_dir() / "sensors.geojson")
    cfg = load_config(default_city_dir() / "alerting.toml")
    reg = city_like(args.sensors, base)
    rate, notices, resolved = engine_throughput(reg, cfg)
    print(f"engine: {args.sensors} alerts open → update → clear → auto-resolve: {rate:,.0f} alerts/s "
          f"({notices} notices, {resolved} resolved)")
    lat = latency(cfg, args.trials)
    if not lat:
        print("latency: no webhook arrived (is the anomaly core flagging the injected reading?)")
        return 1
    lat_ms = sorted(1000 * x for x in lat)
    p99 = lat_ms[min(len(lat_ms) - 1, int(round(0.99 * (len(lat_ms) - 1))))]
    print(f"reading → webhook received: p50 {statistics.median(lat_ms):.1f} ms, p99 {p99:.1f} ms, "
          f"max {lat_ms[-1]:.1f} ms over {len(lat_ms)} alerts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
