"""Settings of the anomaly core, one frozen dataclass validated when it is built.

One configuration serves every sensor and every file (as the Numenta Anomaly
Benchmark requires); per-sensor knowledge comes from the registry (interval,
hard limits), not from tuning.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

__all__ = ["CoreConfig", "ConfigError"]


class ConfigError(ValueError):
    """A setting out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class CoreConfig:
    # ring buffer of recent readings per sensor (drill-down charts, flatline checks)
    window: int = 128
    # readings a sensor must have before it is scored at all (grace period)
    warmup: int = 30
    # exponentially weighted baselines, weight of the newest reading
    alpha_slow: float = 0.01
    alpha_fast: float = 0.1
    # readings beyond k scales are clipped before they update a baseline, so one
    # spike cannot poison it
    winsor_k: float = 4.0
    # time-of-day baseline: slots per day, weight per visit, visits before use
    seasonal_slots: int = 24
    alpha_seasonal: float = 0.1
    seasonal_min_visits: int = 5
    utc_offset_s: int = 7 * 3600
    # flatline: this many identical readings in a row on a sensor that moves
    stuck_run: int = 12
    # a reading after more than gap_factor x interval is flagged; silence alarm after silence_factor x interval
    gap_factor: float = 3.0
    silence_factor: float = 3.0
    # score of a reading that arrives after a gap (the data went missing)
    gap_score: float = 0.0
    # rate of change counts this much against the other surprises
    rate_weight: float = 1.0
    # a detector is named among the reasons from this many scales
    z_report: float = 4.0
    # anomaly likelihood: short and long memory of the raw surprise
    alpha_raw_short: float = 0.2
    alpha_raw_long: float = 0.002
    # after a reading scores >= suppress_above, outputs are held down for this many readings
    suppress_above: float = 0.5
    suppress_for: int = 0
    # alert hysteresis: on at >= alert_on for alert_on_count readings, off below alert_off for alert_off_count
    alert_on: float = 0.6
    alert_off: float = 0.3
    alert_on_count: int = 1
    alert_off_count: int = 3

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, want: str) -> None:
            if not ok:
                raise ConfigError(f"core setting '{name}' must be {want}, got {getattr(self, name)!r}")

        check("window", 4 <= self.window <= 100_000, "between 4 and 100000")
        check("warmup", 0 <= self.warmup, ">= 0")
        for name in ("alpha_slow", "alpha_fast", "alpha_seasonal", "alpha_raw_short", "alpha_raw_long"):
            check(name, 0 < getattr(self, name) <= 1, "in (0, 1]")
        check("winsor_k", self.winsor_k > 0, "> 0")
        check("seasonal_slots", 1 <= self.seasonal_slots <= 1440, "between 1 and 1440")
        check("seasonal_min_visits", self.seasonal_min_visits >= 1, ">= 1")
        check("stuck_run", self.stuck_run >= 2, ">= 2")
        check("gap_factor", self.gap_factor > 1, "> 1")
        check("silence_factor", self.silence_factor > 1, "> 1")
        check("gap_score", 0 <= self.gap_score <= 1, "in [0, 1]")
        check("suppress_above", 0 <= self.suppress_above <= 1, "in [0, 1]")
        check("suppress_for", self.suppress_for >= 0, ">= 0")
        check("alert_on", 0 < self.alert_on <= 1, "in (0, 1]")
        check("alert_off", 0 <= self.alert_off <= self.alert_on, "in [0, alert_on]")
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
