"""AnomalyCore: the streaming, vectorised scoring of every reading.

State is a handful of 2-D numpy arrays covering all sensors at once:

* ``_st``      float64 [F, sensors]: per-sensor scalars (counts, baselines,
  detector memories), gathered and scattered with one fancy-index each round;
* ``_season``  float64 [3, slots x sensors]: time-of-day baselines;
* ``_ring``    float64 [5, window, sensors]: the recent readings
  (ts, value, score, baseline, scale) for drill-down charts.

Sensors are the last axis everywhere, so one tick of the whole city touches
contiguous memory.

Memory is fixed at construction: ``sensors x (8 x (F + 3 x slots) + 40 x window)``
bytes (see :meth:`AnomalyCore.state_bytes`), whatever the traffic.

Per round (one reading per sensor, see :mod:`processing.rounds`) the detectors
are each a few array operations:

deviation  |x - slow baseline| / scale   (winsorised EW mean and variance)
seasonal   |x - baseline of this time-of-day slot| / its scale
rate       |x - previous| / EW scale of the first differences
stuck      the same value repeated ``stuck_run`` times on a sensor that moves
gap        arrived more than ``gap_factor`` intervals after the previous reading
limit      beyond the registry's hard limits (score 1)

The strongest surprise is then judged against the sensor's own history of
surprises (an anomaly likelihood, as in Numenta's HTM detector), so a noisy
sensor has to be *unusually* noisy to score high; and after a high score the
output is held down for ``suppress_for`` readings, so one incident is one
detection.  Scores are in [0, 1]; the alert flag adds hysteresis on top.

Readings that are NaN/inf, or not newer than the sensor's newest reading, are
scored (0 and the reason bit) but never learned, so they cannot poison a window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.reasons import Reason
from processing.registry import Registry
from processing.rounds import plan_rounds

__all__ = ["AnomalyCore", "Scores"]

# rows of the per-sensor state matrix
(N, LAST_T, LAST_X, MU, VAR, DVAR, RUN, MOVES, R_SHORT, R_MU, R_VAR, SUPP, ALERT, STREAK,
 HEAD, DT) = range(16)
_F = 16
# columns of the ring buffer
RING_TS, RING_VALUE, RING_SCORE, RING_BASE, RING_SCALE = range(5)

_TINY = 1e-12
_BIT = {r: np.uint16(r) for r in Reason}
_LOG_TAIL_FLOOR = np.log(1e-10)


@dataclass(frozen=True, slots=True)
class Scores:
    """Per-reading results, in the order of the batch that was scored."""

    score: np.ndarray     # float64 in [0, 1]
    alert: np.ndarray     # bool: the sensor is in alert after this reading
    reasons: np.ndarray   # uint16 Reason bits

    def __len__(self) -> int:
        return int(self.score.shape[0])


def _pack_bits(flags: tuple[np.ndarray, ...]) -> np.ndarray:
    """Bit i of the result is ``flags[i]`` (bool arrays, at most 8), as uint16."""
    acc = flags[0].view(np.uint8).copy()
    for bit, flag in enumerate(flags[1:], start=1):
        acc |= flag.view(np.uint8) << bit
    return acc.astype(np.uint16)


class AnomalyCore:
    """Score readings of all sensors of a registry, one batch at a time."""

    def __init__(self, registry: Registry, config: CoreConfig | None = None) -> None:
        self.registry = registry
        self.config = cfg = config or CoreConfig()
        n = len(registry)
        self._st = np.zeros((_F, n), dtype=np.float64)
        self._st[LAST_T] = np.nan
        self._season = np.zeros((3, cfg.seasonal_slots * n), dtype=np.float64)
        self._ring = np.full((5, cfg.window, n), np.nan, dtype=np.float64)
        self._ring_flat = self._ring.reshape(5, cfg.window * n)
        self._interval = registry.interval_s
        self._lo = registry.limit_low
        self._hi = registry.limit_high
        self._all = np.arange(n)
        self._spare = np.empty_like(self._st)
        self._ones = np.ones(n)
        self._interval_known = bool(np.isfinite(registry.interval_s).all())
        self._slot_per_s = cfg.seasonal_slots / 86400.0
        self._z_report = np.array([[cfg.z_report], [cfg.z_report], [cfg.z_report * 1.5]])
        self._width_k = np.array([[cfg.winsor_k], [cfg.winsor_k], [2.0 * cfg.winsor_k]])
        self.readings_scored = 0

    # ------------------------------------------------------------------ API
    def state_bytes(self) -> int:
        """Bytes held by the core's state arrays (bounded: sensors x window)."""
        return int(self._st.nbytes + self._season.nbytes + self._ring.nbytes)

    def update(self, batch: ReadingBatch) -> Scores:
        """Score a batch (any order, any mix of sensors) and learn from it."""
        m = len(batch)
        score = np.zeros(m, dtype=np.float64)
        alert = np.zeros(m, dtype=bool)
        reasons = np.zeros(m, dtype=np.uint16)
        if m == 0:
            return Scores(score, alert, reasons)
        if batch.sensor.min() < 0 or batch.sensor.max() >= len(self.registry):
            raise IndexError(f"sensor index outside the registry (0..{len(self.registry) - 1})")
        full = len(self.registry)
        perm, bounds = plan_rounds(batch.sensor, batch.ts)
        sensor, ts, value = batch.sensor[perm], batch.ts[perm], batch.value[perm]
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            whole = b - a == full  # every sensor once, ascending: work on the state in place
            sc, al, rs = self._round(slice(None) if whole else sensor[a:b], ts[a:b], value[a:b])
            score[a:b] = sc
            alert[a:b] = al
            reasons[a:b] = rs
        # back to the batch's own row order
        score[perm], alert[perm], reasons[perm] = score.copy(), alert.copy(), reasons.copy()
        self.readings_scored += m
        return Scores(score, alert, reasons)

    def silent(self, now: float) -> np.ndarray:
        """Indices of sensors whose last reading is older than ``silence_factor`` intervals.

        Sensors that never reported are not included; see :meth:`never_reported`.
        """
        age = now - self._st[LAST_T]
        with np.errstate(invalid="ignore"):
            return np.flatnonzero(age > self.config.silence_factor * self._interval)

    def never_reported(self) -> np.ndarray:
        return np.flatnonzero(self._st[N] == 0)

    def last_seen(self) -> np.ndarray:
        """Epoch seconds of each sensor's newest reading (NaN if none)."""
        return self._st[LAST_T].copy()

    def in_alert(self) -> np.ndarray:
        return self._st[ALERT] > 0

    def baseline(self) -> tuple[np.ndarray, np.ndarray]:
        """Current slow baseline and scale of every sensor."""
        return self._st[MU].copy(), np.sqrt(self._st[VAR])

    def recent(self, sensor: int) -> dict[str, np.ndarray]:
        """The sensor's ring buffer in time order: ts, value, score, baseline, scale."""
        w = self.config.window
        head = int(self._st[HEAD, sensor])
        count = int(min(self._st[N, sensor], w))
        order = (np.arange(head - count, head)) % w
        rows = self._ring[:, order, sensor]
        return {"ts": rows[RING_TS], "value": rows[RING_VALUE], "score": rows[RING_SCORE],
                "baseline": rows[RING_BASE], "scale": rows[RING_SCALE]}

    # ------------------------------------------------------------ one round
    def _round(self, s: np.ndarray | slice, t: np.ndarray, x: np.ndarray):
        """Score and learn one reading for each sensor in ``s`` (each at most once).

        Written for few numpy calls, whatever the number of sensors: the three
        baselines (slow, time-of-day, first difference) are updated as one
        stacked [3, m] array, and masks multiply learning rates instead of
        branching, so a reading that must not be learned simply has rate 0.
        """
        cfg = self.config
        whole = isinstance(s, slice)
        nsens = self._st.shape[1]
        if whole:  # every sensor once, ascending: read the state, write the spare, swap
            g, out, idx = self._st, self._spare, self._all
            interval, lo, hi = self._interval, self._lo, self._hi
        else:
            g = np.take(self._st, s, axis=1)
            out = np.empty_like(g)
            idx, interval, lo, hi = s, self._interval.take(s), self._lo.take(s), self._hi.take(s)
        m = t.shape[0]
        n, last_t, last_x = g[N], g[LAST_T], g[LAST_X]

        valid = np.isfinite(x)
        all_valid = bool(valid.all())
        late = t <= last_t                  # NaN last_t (never seen) compares False
        learn = ~late if all_valid else valid & ~late
        all_learn = bool(learn.all())
        lr = self._ones[:m] if all_learn else learn.astype(np.float64)
        warm = n >= cfg.warmup
        all_warm = bool(warm.all())
        judged = warm if all_valid else warm & valid
        x0 = x if all_valid else np.where(valid, x, last_x)  # NaN/inf never enters the arithmetic

        # ---- the time-of-day slot of each reading, and its baseline
        local = t + cfg.utc_offset_s
        slot = ((local - np.floor(local * (1 / 86400.0)) * 86400.0) * self._slot_per_s).astype(np.int64)
        np.minimum(slot, cfg.seasonal_slots - 1, out=slot)
        if whole and slot[0] == slot[-1] and bool((slot == slot[0]).all()):
            flat = slice(int(slot[0]) * nsens, int(slot[0] + 1) * nsens)  # one tick, one slot: a view
            sea = self._season[:, flat]
        else:
            flat = slot * nsens + idx      # season is [3, slots x sensors]
            sea = np.take(self._season, flat, axis=1)
        sea_ok = sea[0] >= cfg.seasonal_min_visits
        all_sea = bool(sea_ok.all())

        # ---- detectors, each against the state *before* this reading.
        # Rows: 0 slow baseline, 1 time-of-day baseline, 2 first difference.
        X = np.empty((3, m))
        X[0] = x0
        X[1] = x0
        np.subtract(x0, last_x, out=X[2])
        M = np.empty((3, m))
        M[0] = g[MU]
        M[1] = sea[1]
        M[2] = 0.0
        V = np.empty((3, m))
        V[0] = g[VAR]
        V[1] = sea[2]
        V[2] = g[DVAR]
        dev = X - M
        floor = 1e-3 * np.abs(M[0])
        scale = np.sqrt(V + (floor * floor + _TINY))
        z = np.abs(dev) / scale
        z *= judged
        if not all_sea:
            z[1] *= sea_ok
        flags = z >= self._z_report       # per-detector 'named among the reasons'
        z[2] *= cfg.rate_weight
        surprise = z.max(axis=0)
        np.minimum(surprise, 50.0, out=surprise)

        same = X[2] == 0.0
        run = (g[RUN] + 1.0) * same if all_learn else g[RUN] + lr * ((g[RUN] + 1.0) * same - g[RUN])
        moves = g[MOVES] + lr * ~same
        stuck = (run >= cfg.stuck_run) & (moves >= 0.5 * n)
        dt = t - last_t
        # expected spacing: the registry's interval, or (unknown, NaN) the learned typical spacing
        expected = interval if self._interval_known else np.where(np.isnan(interval), g[DT], interval)
        gap = (dt > cfg.gap_factor * expected) & (n >= 3)
        limit = (x0 < lo) | (x0 > hi)

        # ---- anomaly likelihood: is this surprise unusual *for this sensor*?
        r_short = g[R_SHORT] + (cfg.alpha_raw_short * lr) * (surprise - g[R_SHORT])
        r_dev = r_short - g[R_MU]
        zr = np.maximum(r_dev / np.sqrt(g[R_VAR] + 1e-4), 0.0)
        raw = 1.0 - np.exp(zr * zr * (-1.0 / 8.0))
        raw *= judged
        np.maximum(raw, 0.7 * stuck, out=raw)
        np.maximum(raw, cfg.gap_score * gap, out=raw)
        np.maximum(raw, limit, out=raw)

        # ---- refractory period (one incident, one detection) and alert hysteresis
        supp = g[SUPP]
        score = raw * (supp <= 0.0)
        np.maximum(score, limit, out=score)
        left = np.maximum(supp - lr, 0.0)
        out[SUPP] = left + (score >= cfg.suppress_above) * (cfg.suppress_for - left)
        alert_prev = g[ALERT] > 0
        counting = (alert_prev & (raw < cfg.alert_off)) | (~alert_prev & (raw >= cfg.alert_on))
        streak = (g[STREAK] + 1.0) * counting
        turn_on = ~alert_prev & (streak >= cfg.alert_on_count)
        turn_off = alert_prev & (streak >= cfg.alert_off_count)
        alert_now = (alert_prev | turn_on) & ~turn_off
        out[ALERT] = alert_now
        out[STREAK] = streak * ~(turn_on | turn_off)
        reasons = _pack_bits((flags[0], flags[1], flags[2], stuck & learn, gap, limit, late, ~valid))

        # ---- learn, winsorised: beyond k scales a reading counts as k scales
        A = np.empty((3, m))
        np.maximum(cfg.alpha_slow, 1.0 / (n + 1.0), out=A[0])           # 1 for a first reading
        np.maximum(cfg.alpha_seasonal, 1.0 / (sea[0] + 1.0), out=A[1])
        np.divide(n > 0, np.minimum(np.maximum(n, 1.0), 1.0 / cfg.alpha_slow), out=A[2])
        A *= lr
        width = scale * self._width_k
        if not all_warm:
            width[:, ~warm] = np.inf
        if not all_sea:
            width[1, ~sea_ok] = np.inf
        np.minimum(dev, width, out=dev)
        np.negative(width, out=width)
        np.maximum(dev, width, out=dev)
        new_m = M + A * dev
        new_v = (1.0 - A) * (V + A * dev * dev)
        if isinstance(flat, slice):
            sea[0] += lr
            sea[1] = new_m[1]
            sea[2] = new_v[1]
        else:
            season = self._season
            season[0][flat] = sea[0] + lr
            season[1][flat] = new_m[1]
            season[2][flat] = new_v[1]

        rl = cfg.alpha_raw_long * lr
        out[N] = n + lr
        out[LAST_T] = t if all_learn else np.where(learn, t, last_t)
        out[LAST_X] = x0 if all_learn else np.where(learn, x0, last_x)
        out[MU] = new_m[0]
        out[VAR] = new_v[0]
        out[DVAR] = new_v[2]
        out[RUN] = run
        out[MOVES] = moves
        # typical spacing: EW mean of gaps up to 10x the current estimate (a long outage is not the norm)
        a_dt = lr * (n > 0) * np.maximum(cfg.alpha_fast, 1.0 / np.maximum(n, 1.0))
        dt_c = np.minimum(dt, 10.0 * g[DT]) if all_warm else np.where(n > 1, np.minimum(dt, 10.0 * g[DT]), dt)
        out[DT] = g[DT] + np.nan_to_num(a_dt * (dt_c - g[DT]))
        out[R_SHORT] = r_short
        out[R_MU] = g[R_MU] + rl * r_dev
        out[R_VAR] = (1.0 - rl) * (g[R_VAR] + rl * r_dev * r_dev)
        head = g[HEAD]
        new_head = head + lr
        out[HEAD] = new_head - cfg.window * (new_head >= cfg.window)

        base, base_scale = M[0], scale[0]
        if whole and all_learn and head[0] == head[-1] and bool((head == head[0]).all()):
            at = int(head[0])      # the whole city in step: one row of the ring
            for row, column in zip(self._ring, (t, x0, score, base, base_scale)):
                row[at] = column
        else:
            ring_at = head.astype(np.int64) * nsens + idx  # ring is [5, window x sensors]
            if not all_learn:
                ring_at = ring_at[learn]
            for row, column in zip(self._ring_flat, (t, x0, score, base, base_scale)):
                row[ring_at] = column if all_learn else column[learn]

        if whole:
            self._st, self._spare = out, g
        else:
            for row, new in zip(self._st, out):
                row[s] = new
        return score, alert_now, reasons
