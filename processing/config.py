"""Settings of the anomaly core, one frozen dataclass validated when it is built.

One configuration serves every sensor and every file (as the Numenta Anomaly
Benchmark requires); per-sensor knowledge comes from the registry (interval,
hard limits), not from tuning.  The score's constants were tuned once on the
NAB corpus (see docs/detection.md); the alert constants on the simulated city.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping
from processing.errors import ConfigError

__all__ = ["CoreConfig", "ConfigError"]



@dataclass(frozen=True, slots=True)
class CoreConfig:
    # recent readings kept per sensor: drill-down charts and the one-day-lag detector
    window: int = 512
    # readings a sensor must have before its score counts (grace period)
    warmup: int = 150
    # local time of the time-of-day slots: the city's (city.toml), set by the composition root
    # (ioc run); the default is the shipped city's, Bắc Giang's UTC+7
    utc_offset_s: int = 7 * 3600

    # -- the score ------------------------------------------------------------------
    # winsorised EW baseline (mean and mean absolute deviation): weight of a reading,
    # clip at k scales; scale floor as a share of the range seen so far
    alpha_base: float = 0.01
    winsor_k: float = 3.0
    scale_floor: float = 0.02
    # surprises are capped at z_cap scales, averaged over `short` readings and judged
    # against their own long-run EW mean and variance (an anomaly likelihood)
    z_cap: float = 4.0
    short: int = 30
    alpha_long: float = 0.001
    # one-day-lag residual: EW weight of its typical size
    alpha_lag: float = 1.0 / 300.0
    # learned spacing between readings (EW weight, cap on a single gap, first guess)
    alpha_spacing: float = 0.01
    spacing_cap_s: float = 7200.0
    spacing_guess_s: float = 300.0
    # decaying range: EW weight of its centre, pull of its edges towards it per reading
    alpha_range: float = 1.0 / 300.0
    range_decay: float = 1e-4
    # each detector's ratio to its threshold; the score is R / (1 + R), so 0.5 = at threshold
    th_range: float = 0.0082
    th_decayed_range: float = 0.45
    th_likelihood: float = 1.834
    th_lag_likelihood: float = 3.683
    # after a score >= 0.5, later scores are held at 0 for this many readings: one incident,
    # one detection
    suppress_for: int = 30

    # -- explanation and alerting ------------------------------------------------------
    # time-of-day baseline: slots per day, weight of each new day, days before use
    seasonal_slots: int = 96
    alpha_seasonal: float = 0.1
    seasonal_min_days: float = 2.0
    # kinds of day with a baseline of their own: 1 (every day alike) or 2 (Mon-Fri, Sat-Sun)
    day_types: int = 1
    # neighbouring slots on each side that may explain a reading (schedules a few minutes off)
    slot_tolerance: int = 1
    # 1: alerts on statistics wait until this kind of day's time-of-day baseline is learned
    # (limits, flatlines and gaps alert from the start); 0: the rolling baseline stands in
    season_gate: int = 1
    # 1: a kind whose noise grows with its level (processing.kinds) has its scale follow the level
    level_noise: int = 1
    # 1: the CUSUM sums innovations against the slow level (shifts keep adding evidence)
    cusum_slow: int = 0
    # ... and until the slot has seen this many days (its innovations' scale needs a day or more)
    arm_days: float = 3.0
    # while the time-of-day baseline is not yet armed, a reading this many scales off the
    # rolling forecast still alerts (not on solar-scheduled kinds); 0: nothing statistical alerts
    early_on: float = 12.0
    # a slot's innovation scale is at least this share of the sensor's typical one (a robust,
    # log-averaged scale, so a few dusk switches do not inflate every quiet slot's floor)
    scale_share: float = 0.1
    # rate of change: EW weight of the squared first difference
    alpha_rate: float = 0.01
    # flatline: this many identical readings in a row on a sensor that moves
    stuck_run: int = 12
    # score of a flatline reading (0 keeps flatlines out of the score; they still alert)
    stuck_score: float = 0.0
    # a reading after more than gap_factor x interval is flagged (when a sensor is *silent* is
    # the alerting's rule, [engine] silence_factor: processing.alerts.AlertList.check_silence)
    gap_factor: float = 3.0
    # a detector is named among the reasons from this many scales
    z_report: float = 4.0
    # alert hysteresis on the evidence (scales from the best baseline): on at once at >= alert_on
    # (or a limit, flatline or gap), or at >= alert_sustained for alert_on_count readings in a
    # row; off below alert_off for alert_off_count readings in a row
    alert_on: float = 6.0
    alert_sustained: float = 4.0
    alert_off: float = 3.0
    alert_on_count: int = 4
    alert_off_count: int = 3
    # readings before a sensor may alert on its statistics (limits, gaps alert from the start)
    alert_warmup: int = 48
    # forecast = baseline + local bias (EW weight alpha_bias); innovations scaled by their own
    # EW spread (alpha_innovation); CUSUM of innovations beyond cusum_k scales alerts at cusum_h;
    # an EW mean square of innovations (alpha_burst) alerts at burst_ratio
    alpha_bias: float = 0.3
    alpha_innovation: float = 0.01
    cusum_k: float = 1.5
    cusum_h: float = 5.25
    alpha_burst: float = 0.1
    burst_ratio: float = 5.0
    # floor of the innovation scale, as a share of the range seen so far
    innovation_floor: float = 0.001
    # the slow local level (EW weight) against which the fast one shows shifts and drifts
    alpha_slow_level: float = 0.01

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, want: str) -> None:
            if not ok:
                raise ConfigError(f"core setting '{name}' must be {want}, got {getattr(self, name)!r}")

        check("window", 4 <= self.window <= 100_000, "between 4 and 100000")
        check("warmup", self.warmup >= 0, ">= 0")
        check("short", 1 <= self.short <= 10_000, "between 1 and 10000")
        for name in ("alpha_base", "alpha_long", "alpha_lag", "alpha_spacing", "alpha_range",
                     "alpha_seasonal", "alpha_rate", "alpha_bias", "alpha_innovation", "alpha_burst", "alpha_slow_level"):
            check(name, 0 < getattr(self, name) <= 1, "in (0, 1]")
        for name in ("winsor_k", "z_cap", "spacing_cap_s", "spacing_guess_s", "th_range", "th_decayed_range",
                     "th_likelihood", "th_lag_likelihood", "seasonal_min_days", "z_report", "cusum_h",
                     "burst_ratio"):
            check(name, getattr(self, name) > 0, "> 0")
        check("scale_floor", self.scale_floor >= 0, ">= 0")
        check("innovation_floor", self.innovation_floor >= 0, ">= 0")
        check("range_decay", 0 <= self.range_decay < 1, "in [0, 1)")
        check("suppress_for", self.suppress_for >= 0, ">= 0")
        check("alert_warmup", self.alert_warmup >= 0, ">= 0")
        check("cusum_k", self.cusum_k >= 0, ">= 0")
        check("seasonal_slots", 1 <= self.seasonal_slots <= 1440, "between 1 and 1440")
        check("day_types", self.day_types in (1, 2), "1 or 2")
        check("slot_tolerance", 0 <= self.slot_tolerance <= 4, "between 0 and 4")
        check("season_gate", self.season_gate in (0, 1), "0 or 1")
        check("level_noise", self.level_noise in (0, 1), "0 or 1")
        check("cusum_slow", self.cusum_slow in (0, 1), "0 or 1")
        check("scale_share", 0 <= self.scale_share <= 1, "in [0, 1]")
        check("arm_days", self.arm_days >= 0, ">= 0")
        check("early_on", self.early_on == 0 or self.early_on >= self.alert_on, "0 or >= alert_on")
        check("stuck_run", self.stuck_run >= 2, ">= 2")
        check("stuck_score", 0 <= self.stuck_score <= 1, "in [0, 1]")
        check("gap_factor", self.gap_factor > 1, "> 1")
        check("alert_on", self.alert_on > 0, "> 0")
        check("alert_sustained", 0 < self.alert_sustained <= self.alert_on, "in (0, alert_on]")
        check("alert_off", 0 <= self.alert_off <= self.alert_sustained, "in [0, alert_sustained]")
        check("alert_on_count", self.alert_on_count >= 1, ">= 1")
        check("alert_off_count", self.alert_off_count >= 1, ">= 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "core settings") -> "CoreConfig":
        """Build from a parsed TOML/JSON table; unknown keys and wrong types are named."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown core setting '{key}' (known: {', '.join(known)})")
            want = int if known[key].type in ("int", int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    want is int and not isinstance(value, int)):
                raise ConfigError(f"{source}: core setting '{key}' must be a {want.__name__}, got {value!r}")
            kwargs[key] = want(value)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
