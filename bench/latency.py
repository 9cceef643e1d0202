"""End-to-end latency of the whole IOC over real brokers: publish -> scored -> alert received.

Run ``python3 -m bench.latency [--transport mqtt|kafka|both] [--rate 10000] [--seconds 20] [--runs 3]``.
It starts its own Mosquitto and Kafka (:class:`ioc.brokers.BrokerSet` on free loopback
ports, stopped at the end).  A benchmark reports figures; it does not pass or fail.

What runs is what ``ioc run --source`` runs, in this process: :class:`~ioc.pipeline.Pipeline`
fed by :meth:`~ioc.pipeline.Pipeline.run_source` (source, decode, de-duplication,
validation, the anomaly core, the alerting service with its SQLite store in a
temporary folder, the snapshot the dashboard reads) and the alert dispatcher's
thread publishing to the broker's alert topics (MQTT ``ioc/alerts/<team>``, Kafka
``ioc.alerts``) as ``config/bac_giang/alerting.toml`` routes them.

* **Publisher** -- the broker's own C client: ``mosquitto_pub -l`` (QoS 1) or
  ``kcat -P`` (keyed by sensor, librdkafka's default 5 ms linger), fed by a paced
  writer: one compact reading per message, ``rate`` a second, stamped with the wall
  time of writing, over the 218 Bắc Giang sensors repeated to 2,500 (one reading every
  0.25 s each; :func:`city_at_rate`), after a 15 s warm-up that lets every sensor's
  baseline settle (the core alerts on statistics after 48 readings).
* **Spikes** -- after a warm-up, a few readings jump by a quarter of the kind's range
  (never on a streetlight circuit, whose jumps are switches until its day is learned);
  the alert a spike opens names its sensor and, in ``alert.since``, the second of the
  spike's time stamp, which identifies the spike and its publish time.
* **publish -> scored** -- every reading measured after the warm-up: the wall time when
  ``Pipeline.process`` returned for its batch (scored, alerting stepped, snapshot
  published) minus its stamp.
* **publish -> alert received** -- a separate subscriber (an MQTT client on
  ``ioc/alerts/#``, or a Kafka consumer of ``ioc.alerts``) receives the alert; receive
  time minus the spike's stamp.  Spikes that open no alert (the sensor was already in
  alert, or its ward's incident took it in) are counted, not timed.

Figures depend on the machine: on the shared 2-core machines brokers, publisher,
pipeline and receiver share the cores, so each run's figures are printed, and the
worst run's p99 is the one to quote.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np

from processing.batch import ReadingBatch
from processing.kinds import KINDS
from processing.registry import Registry

__all__ = ["Latency", "city_at_rate", "main", "measure"]

# Each simulated sensor reports this often: 2,500 sensors make 10,000 readings/s.  Short enough
# that the core's 48-reading warm-up passes in the run's warm-up; long enough that a pause of
# the shared machine (silence is 3 intervals) does not page for every sensor at once.
INTERVAL_S = 0.25
WARMUP_S = 15.0


@dataclass(frozen=True)
class Latency:
    transport: str
    rate: float            # readings/s achieved
    readings: int          # readings timed (after the warm-up)
    spikes: int
    opened: int            # spikes that opened an alert
    alerts: int            # spikes whose alert was received
    silences: int          # sensors paged as silent while measuring (the feed stalled)
    scored_p50: float
    scored_p99: float
    scored_max: float
    alert_p50: float
    alert_p99: float
    alert_max: float
    sent: int = 0          # readings written after the warm-up (each should be timed once)
    unreceived: tuple[str, ...] = ()   # why a spike's alert was not received: its routing and deliveries

    def lines(self) -> list[str]:
        ms = 1e3
        return [f"{self.transport}: {self.rate:,.0f} readings/s achieved, {self.readings:,} of {self.sent:,} "
                f"readings timed, "
                f"{self.spikes} spikes opened {self.opened} alerts, {self.alerts} received"
                + (f", {self.silences} sensors paged as silent" if self.silences else ""),
                f"  publish -> scored          p50 {self.scored_p50 * ms:7.1f} ms   p99 {self.scored_p99 * ms:7.1f} ms"
                f"   max {self.scored_max * ms:7.1f} ms",
                f"  publish -> alert received  p50 {self.alert_p50 * ms:7.1f} ms   p99 {self.alert_p99 * ms:7.1f} ms"
                f"   max {self.alert_max * ms:7.1f} ms"]


def city_at_rate(rate: float, interval_s: float = INTERVAL_S) -> Registry:
    """The Bắc Giang sensors, each repeated (``BG-ENV-014``, ``BG-ENV-014-r1`` …: same kind, ward
    and place) until together, one reading every ``interval_s``, they send ``rate`` a second."""
    from ioc.citydata import default_city_dir, load_registry

    city = load_registry(default_city_dir() / "sensors.geojson")
    n = max(len(city), int(round(rate * interval_s)))
    return Registry(tuple(
        dataclasses.replace(s, id=s.id if k < len(city) else f"{s.id}-r{k // len(city)}", interval_s=interval_s)
        for k in range(n) for s in (city.sensors[k % len(city)],)))


class _Writer(threading.Thread):
    """Writes ``rate`` compact readings a second to a publisher's stdin, stamped with the time of writing."""

    def __init__(self, registry: Registry, proc: subprocess.Popen, rate: float, total: int, spikes_after: float,
                 keyed: bool, spike_rate: float = 5e-5) -> None:
        super().__init__(name="latency-writer", daemon=True)
        self.proc, self.rate, self.total, self.spikes_after, self.keyed = proc, rate, total, spikes_after, keyed
        self.spike_rate = spike_rate
        self.ids = registry.ids
        span = np.array([KINDS[s.kind].valid_max - KINDS[s.kind].valid_min for s in registry.sensors])
        low = np.array([KINDS[s.kind].valid_min for s in registry.sensors], dtype=np.float64)
        limit = np.array([s.limit_high if s.limit_high is not None else np.inf for s in registry.sensors])
        self.base = np.minimum(low + 0.2 * span, low + 0.5 * (limit - low))
        self.noise = 0.005 * span
        self.jump = 0.25 * span
        self.spikes: dict[tuple[str, float], float] = {}     # (sensor id, value) -> publish time
        self.spiked: set[int] = set()                         # one spike per sensor: one incident, one alert
        # a lamp circuit's jump before its dusk/dawn shape is learned is taken for a switch (by
        # design: processing.kernel alerts early only on kinds not on the solar clock), so the
        # warm-up of seconds never lets a spike there alert: none is placed there
        self.spikeable = np.array([not KINDS[s.kind].solar for s in registry.sensors])
        self.stop = threading.Event()
        self.written = 0
        self.measured = 0                     # written at or after spikes_after

    def run(self) -> None:
        rng = np.random.default_rng(7)
        stdin = self.proc.stdin
        assert stdin is not None
        n = len(self.ids)
        per_tick = max(1, int(self.rate * 0.01))
        start = time.time()
        k = 0
        try:
            while k < self.total and not self.stop.is_set():
                now = time.time()
                rows = (k + np.arange(per_tick)) % n
                vals = self.base[rows] + self.noise[rows] * rng.standard_normal(per_tick)
                if self.spikes_after <= now and k < self.total - self.rate:      # none in the last second
                    hit = rng.random(per_tick) < self.spike_rate
                    for j in np.flatnonzero(hit).tolist():
                        r = int(rows[j])
                        if r in self.spiked or not self.spikeable[r]:   # a second spike would join
                            continue                                        # the sensor's open alert
                        self.spiked.add(r)
                        v = float(self.base[r] + self.jump[r] + 1e-6 * len(self.spikes))   # unique per spike
                        vals[j] = v
                        self.spikes[(self.ids[r], v)] = now
                parts = []
                for r, v in zip(rows.tolist(), vals.tolist()):
                    sid = self.ids[r]
                    line = f'{{"id":"{sid}","ts":{now!r},"v":{v!r}}}\n'
                    parts.append(f"{sid}\t{line}" if self.keyed else line)
                stdin.write("".join(parts).encode())
                stdin.flush()
                k += per_tick
                self.written = k
                if now >= self.spikes_after:
                    self.measured += per_tick
                delay = start + k / self.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
        except (BrokenPipeError, ValueError):       # the publisher went away: the run reports what it has
            pass


async def measure(bs: Any, transport: str, rate: float, seconds: float, warmup: float = WARMUP_S,
                  spike_rate: float = 5e-5) -> Latency:
    """One run of ``seconds`` (plus ``warmup``) at ``rate`` readings/s over ``transport`` (mqtt or kafka);
    ``spike_rate``: the share of readings after the warm-up that spike."""
    from ingest.kafka import KafkaSettings, KafkaSource
    from ingest.mqtt import MqttSettings, MqttSource
    from ioc.alerting.wiring import build_alerting
    from ioc.pipeline import Pipeline, PipelineConfig

    registry = city_at_rate(rate)
    uid = uuid.uuid4().hex[:8]
    measured_from = time.time() + warmup + 1.0
    total = int(rate * (warmup + 1.0 + seconds))
    scored: list[np.ndarray] = []
    received: list[tuple[str, int, float]] = []          # (sensor id, second opened, receive time)

    class TimedPipeline(Pipeline):
        def process(self, batch: ReadingBatch, sim_now: float, **kw: Any) -> None:
            super().process(batch, sim_now, **kw)
            if len(batch):
                keep = batch.ts >= measured_from
                if keep.any():
                    scored.append(time.time() - batch.ts[keep])

    if transport == "mqtt":
        topic = f"city/{uid}/environment/mixed"
        source = f"mqtt://127.0.0.1:{bs.mqtt_port}/city/{uid}/#?client_id=lat-{uid}"
        publisher = ["mosquitto_pub", "-p", str(bs.mqtt_port), "-V", "mqttv5", "-q", "1", "-M", "1000", "--nodelay",
                     "-l", "-t", topic]
        alerts_src = MqttSource(MqttSettings.from_url(
            f"mqtt://127.0.0.1:{bs.mqtt_port}/ioc/alerts/#?client_id=al-{uid}"))
    else:                  # a topic of its own, read from the start: the group's join is not a gap
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        topic = f"lat-{uid}"
        admin = AIOKafkaAdminClient(bootstrap_servers=bs.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 6, 1)])
        finally:
            await admin.close()
        source = f"kafka://{bs.kafka_bootstrap}?group=lat-{uid}&topic={topic}"
        publisher = ["kcat", "-P", "-b", bs.kafka_bootstrap, "-t", topic, "-K", "\t",
                     "-X", "partitioner=murmur2_random", "-X", "linger.ms=5"]
        alerts_src = KafkaSource(KafkaSettings.from_url(
            f"kafka://{bs.kafka_bootstrap}?group=al-{uid}&topic=ioc.alerts&offset_reset=latest"))

    async def listen(done: asyncio.Event) -> None:
        async for d in alerts_src.deliveries(idle_s=0.2):
            now = time.time()
            for _, payload in d.messages:
                doc = json.loads(payload)
                if doc["event"]["type"] == "opened":
                    alert = doc["alert"]
                    since = int(datetime.fromisoformat(alert["since"]).timestamp())
                    received.append((alert["sensor_id"], since, now))
            await alerts_src.commit(d)
            if done.is_set() and not d.messages:
                return

    with tempfile.TemporaryDirectory(prefix="ioc-latency-alerts-") as tmp:
        alerting, dispatcher = build_alerting(registry, tmp)
        pipeline = TimedPipeline(registry, PipelineConfig(preroll_hours=0.0), alerting=alerting,
                                 dispatcher=dispatcher)
        stop = asyncio.Event()
        proc: subprocess.Popen | None = None
        spiked: set[tuple[str, int]] = set()
        pipeline.start_delivery()
        try:
            async with alerts_src:
                done = asyncio.Event()
                listener = asyncio.create_task(listen(done))
                # the feed first, then the pipeline: a pipeline waiting for sensors that never
                # reported would page for every one of them, and their incidents would swallow
                # the spikes' alerts (readings before it subscribed are part of the warm-up)
                proc = subprocess.Popen(publisher, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
                writer = _Writer(registry, proc, rate, total, measured_from, keyed=transport == "kafka",
                                 spike_rate=spike_rate)
                started = time.time()
                writer.start()
                await asyncio.sleep(0.5)
                running = asyncio.create_task(pipeline.run_source(source, stop))
                while writer.is_alive():
                    await asyncio.sleep(0.2)
                    if running.done():
                        writer.stop.set()
                        running.result()                    # the pipeline failed: its error, raised here
                took = time.time() - started
                if proc.stdin:
                    proc.stdin.close()
                await asyncio.to_thread(proc.wait, 60)
                # the last readings are in; stop before the sensors fall silent (3 intervals), which
                # would page for all of them; the last spike's alert is on its way by then
                finished = time.time()
                deadline = finished + 0.6                 # every reading written is scored, or ...
                while sum(a.size for a in scored) < writer.measured and time.time() < deadline:
                    await asyncio.sleep(0.01)
                stop.set()                                # seen with the next delivery, or ...
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(running, 0.3)  # ... cancelled while it waits for one
                spiked = {(sid, int(t)) for (sid, _), t in writer.spikes.items()}
                deadline = time.time() + 10.0             # every spike's alert that opened is received
                while time.time() < deadline:
                    want = {(a.sensor_id, int(a.opened_at)) for a in
                            (r.alert for r in pipeline.alerting.store.alerts(limit=1_000_000))} & spiked
                    if want <= {(sid, s) for sid, s, _ in received}:
                        break
                    await asyncio.sleep(0.05)
                done.set()
                await asyncio.wait_for(listener, 30)
        finally:
            if proc is not None and proc.poll() is None:      # the run failed: stop the publisher too
                proc.kill()
                proc.wait(10)
            routed = pipeline.alerting.store.alerts(limit=1_000_000)
            stored = [r.alert for r in routed]
            got = {(sid, s) for sid, s, _ in received}
            unreceived = tuple(_why_unreceived(pipeline.alerting.store, r) for r in routed
                               if (r.alert.sensor_id, int(r.alert.opened_at)) in spiked
                               and (r.alert.sensor_id, int(r.alert.opened_at)) not in got)
            pipeline.close()
    lat = np.concatenate(scored) if scored else np.full(1, np.nan)
    spike_at = {(sid, int(t)): t for (sid, _), t in writer.spikes.items()}
    opened = sum((a.sensor_id, int(a.opened_at)) in spike_at for a in stored)
    silences = sum(a.kind == "silent" and measured_from <= a.opened_at <= finished for a in stored)
    alert_lat = np.array([t - spike_at[(sid, s)] for sid, s, t in received if (sid, s) in spike_at])
    if alert_lat.size == 0:
        alert_lat = np.full(1, np.nan)
    measured = [t for t in writer.spikes.values() if t >= measured_from]
    return Latency(transport, writer.written / took, int(np.isfinite(lat).sum()), len(measured),
                   opened, int(np.isfinite(alert_lat).sum()), silences,
                   float(np.nanpercentile(lat, 50)), float(np.nanpercentile(lat, 99)), float(np.nanmax(lat)),
                   float(np.nanpercentile(alert_lat, 50)), float(np.nanpercentile(alert_lat, 99)),
                   float(np.nanmax(alert_lat)), writer.measured, unreceived)


def _why_unreceived(store: Any, r: Any) -> str:
    """One line on a spike alert that was not received: its team, grouping, and each delivery."""
    a = r.alert
    where = [f"team {r.team}"] + ([f"incident {r.incident}"] if r.incident is not None else []) \
        + ([f"silenced by {r.silenced_by}"] if r.silenced_by is not None else [])
    sends = [f"{d.channel}:{d.address} {d.status} after {d.attempts} attempts"
             + (f" ({d.last_error})" if d.last_error else "") for d in store.deliveries(alert_id=a.id)]
    return f"{a.sensor_id} opened {a.opened_at:.3f}: {', '.join(where)}; " + ("; ".join(sends) or "no deliveries")


async def _run(transports: list[str], rate: float, seconds: float, runs: int) -> list[Latency]:
    from ingest.kafka import KafkaSettings, KafkaSource

    from ioc.brokers import scratch_brokers

    results = []
    with scratch_brokers(say=lambda m: print(f"  [{m}]", flush=True)) as bs:
        # a first consumer group makes the broker create its offsets topic: not part of any run
        async with KafkaSource(KafkaSettings.from_url(f"kafka://{bs.kafka_bootstrap}?group=warm-up")):
            pass
        for transport in transports:
            for r in range(runs):
                lat = await measure(bs, transport, rate, seconds)
                print(f"run {r + 1}: " + "\n".join(lat.lines()), flush=True)
                results.append(lat)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--transport", choices=("mqtt", "kafka", "both"), default="both")
    parser.add_argument("--rate", type=float, default=10_000.0, help="readings per second (default 10,000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="runs per transport (default 3)")
    args = parser.parse_args(argv)
    for program in ("mosquitto_pub", "kcat"):
        if shutil.which(program) is None:
            sys.exit(f"error: {program} not found (apt-get install -y mosquitto-clients kcat)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    transports = ["mqtt", "kafka"] if args.transport == "both" else [args.transport]
    results = asyncio.run(_run(transports, args.rate, args.seconds, max(1, args.runs)))
    print()
    print(f"{'':<10} {'runs':>4} {'readings/s':>11} {'scored p50':>11} {'p99 worst':>10} "
          f"{'alert p50':>10} {'p99 worst':>10} {'alerts/spikes':>14}")
    for t in transports:
        rs = [r for r in results if r.transport == t]
        print(f"{t:<10} {len(rs):>4} {min(r.rate for r in rs):>11,.0f} "
              f"{np.median([r.scored_p50 for r in rs]) * 1e3:>8.1f} ms {max(r.scored_p99 for r in rs) * 1e3:>7.1f} ms "
              f"{np.median([r.alert_p50 for r in rs]) * 1e3:>7.1f} ms {max(r.alert_p99 for r in rs) * 1e3:>7.1f} ms "
              f"{sum(r.alerts for r in rs):>7}/{sum(r.spikes for r in rs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
