"""AnomalyCore: streaming anomaly scoring of every reading, all sensors in shared arrays.

All sensors' state lives in a few numpy arrays allocated once (sensor-major, so a
reading touches one or two cache lines), and :func:`processing.kernel.score_batch`
walks a batch in time order updating them; memory is fixed at construction,
whatever the traffic (:meth:`AnomalyCore.state_bytes`):

* ``_st``       float64 [sensors, 39]: baselines, ranges, likelihood memories, counters, the
  sensor's sunrise/sunset of the day, robust (log-averaged) typical scales;
* ``_season``   float64 [day types x slots, sensors, 5]: time-of-day baselines, one set for
  every day alike or one for working days and one for weekends (count, mean, variance of the value; mean squares of the forecast's
  innovation and of its level gap, so every slot has its own scale);
* ``_short``    float64 [short, sensors, 2]: the last ``short`` capped surprises of two detectors;
* ``_ring``     float64 [window, sensors, 2] and ``_ring_aux`` float32 [window, sensors, 3]:
  recent readings (time, value; score, baseline, scale) for drill-down charts and the
  one-day lag.

The score of a reading, in [0, 1], fuses four cheap detectors, each divided by its
threshold (ratio R; score = R / (1 + R), so 0.5 means "at threshold"):

range         how far the reading leaves the range seen so far (a new max/min)
decayed range the same against a range whose edges slowly forget
likelihood    deviation from a winsorised EW baseline in units of its mean absolute
              deviation, capped, averaged over ``short`` readings and judged against the
              sensor's own long-run history of that surprise (as Numenta's HTM
              "anomaly likelihood"), so a noisy sensor must be *unusually* noisy
lag           the same likelihood for the difference to the reading one day earlier

After a score of 0.5 or more the output is held at 0 for ``suppress_for`` readings:
one incident, one detection.  Hard-limit breaches score 1 (flatlines ``stuck_score``).
This fusion scores 71 on the Numenta Anomaly Benchmark's standard profile
(docs/detection.md).

The operator-facing alert is decided apart from the score (as river keeps scoring
apart from filtering): evidence in scales from the best baseline there is (time of
day once learned, else the EW baseline; or the rate of change) with hysteresis, plus
immediate alerts for hard limits, flatlines and gaps.  Each reading carries its
reasons as bits (:class:`processing.reasons.Reason`).

Readings that are NaN/inf, or not newer than the sensor's newest reading, are scored
(NaN/inf score 0) with their reason bit but never learned, so they cannot poison a
window.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from processing import kernel
from processing.batch import ReadingBatch
from processing.config import CoreConfig
from processing.kinds import KINDS
from processing.registry import Registry

__all__ = ["AnomalyCore", "Scores"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Scores:
    """Per-reading results, in the order of the batch that was scored."""

    score: np.ndarray     # float64 in [0, 1]
    alert: np.ndarray     # bool: the sensor is in alert after this reading
    reasons: np.ndarray   # uint16 Reason bits

    def __len__(self) -> int:
        return int(self.score.shape[0])


class AnomalyCore:
    """Score readings of all sensors of a registry, one batch at a time."""

    def __init__(self, registry: Registry, config: CoreConfig | None = None) -> None:
        self.registry = registry
        self.config = cfg = config or CoreConfig()
        n, w = len(registry), cfg.window
        self._st = np.zeros((n, len(kernel.FIELDS)), dtype=np.float64)
        self._st[:, kernel.LAST_T] = np.nan
        self._st[:, kernel.SINCE_FIRE] = cfg.suppress_for
        self._season = np.zeros((cfg.day_types * cfg.seasonal_slots, n, len(kernel.SEASON_FIELDS)),
                                dtype=np.float64)
        self._short = np.zeros((cfg.short, n, 2), dtype=np.float64)
        self._ring = np.zeros((w, n, 2), dtype=np.float64)
        self._ring_aux = np.full((w, n, 3), np.nan, dtype=np.float32)
        self._interval = np.ascontiguousarray(registry.interval_s, dtype=np.float64)
        self._guess = np.where(np.isfinite(self._interval), self._interval, cfg.spacing_guess_s)
        self._lo = np.ascontiguousarray(registry.limit_low, dtype=np.float64)
        self._hi = np.ascontiguousarray(registry.limit_high, dtype=np.float64)
        self._geo = np.zeros((n, 5), dtype=np.float64)
        for i, spec in enumerate(registry.sensors):
            kind = KINDS.get(spec.kind)
            solar, power, rate = ((kind.solar, kind.noise_power, kind.max_rate_per_h) if kind is not None
                                  else (False, 0.0, 0.0))
            self._geo[i] = (1.0 if solar else 0.0, spec.lat, spec.lon, power if cfg.level_noise else 0.0,
                            rate / 3600.0)
        self._st[:, kernel.SUN_DAY] = np.nan
        self._params = np.array([float(getattr(cfg, name)) for name in kernel.PARAMS])
        self.readings_scored = 0

    # ------------------------------------------------------------------ API
    def state_bytes(self) -> int:
        """Bytes held by the core's state arrays (bounded: sensors x window)."""
        arrays = (self._st, self._season, self._short, self._ring, self._ring_aux)
        return int(sum(a.nbytes for a in arrays))

    def update(self, batch: ReadingBatch) -> Scores:
        """Score a batch (any order, any mix of sensors) and learn from it.

        Each sensor's readings are applied in time order (ties in arrival order);
        the results come back in the batch's own row order.  A batch in time order or in
        sensor order (:meth:`ReadingBatch.by_sensor`) is not sorted again: sensors' states are
        independent, so only each sensor's own order matters.
        """
        m = len(batch)
        score = np.zeros(m, dtype=np.float64)
        alert = np.zeros(m, dtype=np.bool_)
        reasons = np.zeros(m, dtype=np.uint16)
        if m == 0:
            return Scores(score, alert, reasons)
        if batch.sensor.min() < 0 or batch.sensor.max() >= len(self.registry):
            raise IndexError(f"sensor index outside the registry (0..{len(self.registry) - 1})")
        ts = batch.ts
        if m > 1 and not bool(np.all(ts[1:] >= ts[:-1])) and not batch.in_sensor_order():
            order = np.argsort(ts, kind="stable")
        else:
            order = np.arange(m)
        kernel.score_batch(order, batch.sensor, ts, batch.value, self._params, self._st, self._season,
                           self._short, self._ring, self._ring_aux, self._interval,
                           self._guess, self._lo, self._hi, self._geo, score, alert, reasons)
        self.readings_scored += m
        return Scores(score, alert, reasons)

    def never_reported(self) -> np.ndarray:
        return np.flatnonzero(self._st[:, kernel.N] == 0)

    def last_seen(self) -> np.ndarray:
        """Epoch seconds of each sensor's newest reading (NaN if none)."""
        return np.where(self._st[:, kernel.N] > 0, self._st[:, kernel.LAST_T], np.nan)

    def last_value(self) -> np.ndarray:
        """Each sensor's newest learned value (NaN if none)."""
        return np.where(self._st[:, kernel.N] > 0, self._st[:, kernel.LAST_X], np.nan)

    def in_alert(self) -> np.ndarray:
        return self._st[:, kernel.ALERT] > 0

    def baseline(self) -> tuple[np.ndarray, np.ndarray]:
        """Current EW baseline and scale (mean absolute deviation plus floor) of every sensor."""
        st = self._st
        span = st[:, kernel.HI] - st[:, kernel.LO]
        return st[:, kernel.MEAN].copy(), st[:, kernel.MAD] + self.config.scale_floor * span + _EPS

    def recent(self, sensor: int) -> dict[str, np.ndarray]:
        """The sensor's recent readings in time order: ts, value, score, baseline, scale."""
        w = self.config.window
        count = int(self._st[sensor, kernel.N])
        order = np.arange(count - min(count, w), count) % w
        ring = self._ring[order, sensor]
        aux = self._ring_aux[order, sensor].astype(np.float64)
        return {"ts": ring[:, 0], "value": ring[:, 1], "score": aux[:, 0], "baseline": aux[:, 1], "scale": aux[:, 2]}

    def state_arrays(self, *, copy: bool = True) -> dict[str, np.ndarray]:
        """The state arrays by name (``st``, ``season``, ``short``, ``ring``, ``ring_aux``): everything
        the core has learned, for checkpoints (:mod:`processing.checkpoint`).  Copies, unless
        ``copy=False`` (the live arrays: do not keep them)."""
        arrays = {name: getattr(self, "_" + name) for name in ("st", "season", "short", "ring", "ring_aux")}
        return {name: a.copy() for name, a in arrays.items()} if copy else arrays

    def restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Replace the learned state with ``arrays`` (from :meth:`state_arrays`, maybe of another process).

        Every name, shape and dtype is checked before anything is copied, so a refused restore
        leaves the core as it was; raises :class:`~processing.checkpoint.CheckpointMismatch`."""
        from processing.checkpoint import CheckpointMismatch, state_mismatch

        live = self.state_arrays(copy=False)
        problem = state_mismatch(live, arrays)
        if problem is not None:
            raise CheckpointMismatch(problem)
        for name, target in live.items():
            np.copyto(target, arrays[name], casting="no")
