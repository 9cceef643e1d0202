"""The whole city simulated: every registry sensor on its own reading grid,
with labelled anomalies, as a batch over a span or as a live stream.

Time is cut into fixed chunks (default: local days, aligned to local midnight
in absolute time).  Each (sensor, chunk) is generated on its own from seeds
derived from ``(seed, crc32(sensor id), chunk)``, so

* the same seed gives the same city, and adding a sensor changes no other one;
* :meth:`CitySimulator.generate` over ``[t0, t1)`` and a :class:`CityStream`
  started at ``t0`` and advanced to ``t1`` produce identical readings and
  labels (both are cuts of the same chunks);
* anomalies never cross a chunk boundary, do not overlap, and none starts in
  the warm-up (the first 20 % of a generated span; ``warmup_s`` of a stream).

Nothing here reads the wall clock: a stream is advanced by the caller.
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np

from processing.batch import ReadingBatch
from processing.registry import Registry
from simulators.anomalies import ANOMALY_KINDS, CONTEXT_SHIFT_S, AnomalyLabel, anomaly_length, inject, typical_scale
from simulators.models import DIURNAL_KINDS, LOCAL_UTC_OFFSET_S, SPIKE_DIRECTION, baseline, finalize, sensor_scale

__all__ = ["CitySimulator", "CityStream"]

# spawn_key heads separating the independent random streams of one sensor
_SCALE, _BASE, _PLACE, _ANOMALY, _JITTER = range(5)


class CitySimulator:
    """Readings for every sensor of ``registry`` with ground-truth anomalies.

    ``anomaly_rate`` is the expected number of anomalies per sensor per day,
    drawn from ``kinds`` (a contextual anomaly is only given to kinds with a
    daily pattern, see :data:`simulators.models.DIURNAL_KINDS`).  ``jitter_s``
    (< every sensor's interval) delays each reading by a uniform random amount
    in ``[0, jitter_s)``; 0 keeps readings exactly on multiples of the interval.
    """

    def __init__(self, registry: Registry, *, seed: int, anomaly_rate: float,
                 kinds: Sequence[str] = ANOMALY_KINDS, utc_offset_s: int = LOCAL_UTC_OFFSET_S,
                 chunk_s: float = 86400.0, jitter_s: float = 0.0) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not (anomaly_rate >= 0 and math.isfinite(anomaly_rate)):
            raise ValueError(f"anomaly_rate must be a finite number >= 0, got {anomaly_rate!r}")
        unknown = [k for k in kinds if k not in ANOMALY_KINDS]
        if unknown:
            raise ValueError(f"unknown anomaly kinds {unknown}; known: {', '.join(ANOMALY_KINDS)}")
        if not chunk_s > 0:
            raise ValueError(f"chunk_s must be > 0, got {chunk_s!r}")
        if len(registry) and not 0 <= jitter_s < float(np.min(registry.interval_s)):
            raise ValueError(f"jitter_s must be in [0, smallest interval_s), got {jitter_s!r}")
        self.registry = registry
        self.seed = int(seed)
        self.anomaly_rate = float(anomaly_rate)
        self.kinds = tuple(kinds)
        self.utc_offset_s = int(utc_offset_s)
        self.chunk_s = float(chunk_s)
        self.jitter_s = float(jitter_s)
        self._keys = [zlib.crc32(s.id.encode("utf-8")) for s in registry.sensors]
        self._scales = np.array([
            sensor_scale(s.kind, self._rng(key, _SCALE)) for s, key in zip(registry.sensors, self._keys)])
        self._kinds_for = [
            tuple(k for k in self.kinds if k not in ("contextual", "pattern_change") or s.kind in DIURNAL_KINDS)
            for s in registry.sensors]

    # ------------------------------------------------------------------ public

    @property
    def scales(self) -> np.ndarray:
        """Each sensor's size factor (see :func:`simulators.models.sensor_scale`)."""
        return self._scales.copy()

    def generate(self, t0: float, t1: float, *,
                 anomalies_from: float | None = None) -> tuple[ReadingBatch, list[AnomalyLabel]]:
        """All readings with ``t0 <= ts < t1``, sorted by time (stable: equal
        times keep sensor order), and the labels of the anomalies starting in
        the span, sorted by start.  No anomaly starts before ``anomalies_from``
        (default: the first 20 % of the span are clean).  A label may end after
        ``t1`` when the span cuts an anomaly."""
        t0, t1 = float(t0), float(t1)
        if not (math.isfinite(t0) and math.isfinite(t1) and 0 <= t0 < t1):
            raise ValueError(f"need 0 <= t0 < t1, got t0={t0!r}, t1={t1!r}")
        if anomalies_from is None:
            anomalies_from = t0 + 0.2 * (t1 - t0)
        parts: list[ReadingBatch] = []
        labels: list[AnomalyLabel] = []
        for k in range(self.chunk_of(t0), self.chunk_of(np.nextafter(t1, -np.inf)) + 1):
            batch, chunk_labels = self._chunk(k, anomalies_from)
            parts.append(batch.take((batch.ts >= t0) & (batch.ts < t1)))
            labels.extend(lab for lab in chunk_labels if lab.start < t1)
        return ReadingBatch.concat(parts).sorted_by_time(), labels

    def stream(self, t0: float, *, warmup_s: float = 6 * 3600.0) -> "CityStream":
        """A live feed starting at ``t0``; no anomaly starts before ``t0 + warmup_s``."""
        return CityStream(self, t0, warmup_s)

    def chunk_of(self, t: float) -> int:
        """Index of the generation chunk holding instant ``t``."""
        return int(math.floor((t + self.utc_offset_s) / self.chunk_s))

    def chunk_start(self, k: int) -> float:
        return k * self.chunk_s - self.utc_offset_s

    # ----------------------------------------------------------------- private

    def _rng(self, key: int, *spawn_key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, key], spawn_key=spawn_key))

    def _chunk(self, k: int, anomalies_from: float) -> tuple[ReadingBatch, list[AnomalyLabel]]:
        """Every sensor's readings in chunk ``k`` (time-sorted) and its labels.
        Anomalies placed before ``anomalies_from`` are left out entirely."""
        if k < 0:
            raise ValueError("times before 1970 are not supported")
        cs, ce = self.chunk_start(k), self.chunk_start(k + 1)
        sensors, tss, values = [], [], []
        labels: list[tuple[float, int, AnomalyLabel]] = []
        for i, spec in enumerate(self.registry.sensors):
            key, iv = self._keys[i], float(spec.interval_s)
            grid = np.arange(math.ceil(cs / iv), math.ceil(ce / iv), dtype=np.float64) * iv
            if grid.size == 0:
                continue
            v = baseline(spec.kind, grid, self._rng(key, _BASE, k), scale=float(self._scales[i]),
                         utc_offset_s=self.utc_offset_s, weather_key=self.seed, place=(spec.lat, spec.lon))
            ts = grid
            if self.jitter_s > 0:
                ts = grid + self._rng(key, _JITTER, k).uniform(0.0, self.jitter_s, grid.size)
            keep = None
            allowed = self._kinds_for[i]
            if self.anomaly_rate > 0 and allowed:
                v, keep, found = self._anomalies(i, k, ts, v, allowed, anomalies_from)
                labels.extend((lab.start, i, lab) for lab in found)
            if keep is not None:
                ts, v = ts[keep], v[keep]
            sensors.append(np.full(ts.size, i, dtype=np.int32))
            tss.append(ts)
            values.append(v)
        if not sensors:
            return ReadingBatch.empty(), []
        batch = ReadingBatch(np.concatenate(sensors), np.concatenate(tss), np.concatenate(values))
        labels.sort(key=lambda x: (x[0], x[1]))
        return batch.sorted_by_time(), [lab for _, _, lab in labels]

    def _anomalies(self, i: int, k: int, ts: np.ndarray, v: np.ndarray, allowed: tuple[str, ...],
                   anomalies_from: float) -> tuple[np.ndarray, np.ndarray, list[AnomalyLabel]]:
        spec, key = self.registry.sensors[i], self._keys[i]
        iv = float(spec.interval_s)
        m = ts.size
        keep = np.ones(m, dtype=bool)
        place = self._rng(key, _PLACE, k)
        n = int(place.poisson(self.anomaly_rate * self.chunk_s / 86400.0))
        if n == 0:
            return v, keep, []
        kinds = [allowed[j] for j in place.integers(0, len(allowed), n)]
        lengths = [min(anomaly_length(kind, iv, place), m) for kind in kinds]
        # At least an hour (and 2 readings) between anomalies, and one clean
        # reading at each chunk edge, so even a dropout's window (the rows
        # around the gap) never touches another anomaly's.
        gap = max(2, math.ceil(3600.0 / iv))
        while kinds and sum(lengths) + (len(kinds) - 1) * gap + 2 > m:
            kinds.pop()
            lengths.pop()
        if not kinds:
            return v, keep, []
        free = m - 2 - sum(lengths) - (len(kinds) - 1) * gap
        offsets = 1 + np.sort(place.integers(0, free + 1, len(kinds)))
        clean = v
        scale = typical_scale(clean)
        found: list[AnomalyLabel] = []
        used = 0
        for j, (kind, length) in enumerate(zip(kinds, lengths)):
            start = int(offsets[j]) + used + j * gap
            used += length
            if ts[start] < anomalies_from:
                continue
            rng = self._rng(key, _ANOMALY, k, j)
            context = None
            if kind == "contextual":
                context = baseline(spec.kind, ts[start:start + length] + CONTEXT_SHIFT_S, rng,
                                   scale=float(self._scales[i]), utc_offset_s=self.utc_offset_s,
                                   weather_key=self.seed, place=(spec.lat, spec.lon))
            v, kept = inject(kind, ts, v, start, length, rng, typical_scale=scale,
                             direction=SPIKE_DIRECTION[spec.kind], context=context)
            keep &= kept
            found.append(AnomalyLabel(spec.id, kind, float(ts[start]), float(ts[start + length - 1])))
        return finalize(spec.kind, v), keep, found


class CityStream:
    """A :class:`CitySimulator` as a live feed: :meth:`advance` returns the
    readings with ``ts <= now`` not yet returned (the first call also returns a
    reading at exactly ``t0``), and the labels of anomalies that have started.
    Chunks are generated when the clock first enters them."""

    def __init__(self, sim: CitySimulator, t0: float, warmup_s: float) -> None:
        if not (math.isfinite(t0) and t0 >= 0):
            raise ValueError(f"t0 must be a finite time >= 0, got {t0!r}")
        if not warmup_s >= 0:
            raise ValueError(f"warmup_s must be >= 0, got {warmup_s!r}")
        self._sim = sim
        self._t0 = float(t0)
        self._from = float(t0) + float(warmup_s)
        self._next_chunk = sim.chunk_of(t0)
        self._buffer = ReadingBatch.empty()
        self._labels: list[AnomalyLabel] = []
        self._now = float(t0)

    @property
    def now(self) -> float:
        """The latest clock value passed to :meth:`advance` (``t0`` before any)."""
        return self._now

    def advance(self, now: float) -> tuple[ReadingBatch, list[AnomalyLabel]]:
        """Readings due by ``now`` (time-sorted) and labels whose start has come."""
        now = float(now)
        sim = self._sim
        while sim.chunk_start(self._next_chunk) <= now:
            batch, labels = sim._chunk(self._next_chunk, self._from)
            batch = batch.take(batch.ts >= self._t0)
            merged = ReadingBatch.concat([self._buffer, batch])
            self._buffer = merged.sorted_by_time() if sim.jitter_s > 0 else merged
            self._labels.extend(labels)
            self._next_chunk += 1
        self._now = max(self._now, now)
        cut = int(np.searchsorted(self._buffer.ts, now, side="right"))
        out = self._buffer.take(slice(0, cut))
        self._buffer = self._buffer.take(slice(cut, None))
        due = [lab for lab in self._labels if lab.start <= now]
        self._labels = [lab for lab in self._labels if lab.start > now]
        return out, due
