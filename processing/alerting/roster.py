"""Who is on duty now: shifts in the city's local time (:attr:`AlertingConfig.city`).

A shift belongs to the day it starts on; one whose end is not after its start
crosses midnight into the next day (``22:00``–``06:00`` on Sunday covers
Monday 00:00–06:00 too).  Silences / maintenance windows use the same clock.

>>> from processing.city import parse_city
>>> hanoi = parse_city({"id": "x", "utc_offset": "+07:00", "sender": "a@b.vn", "name": {"vi": "X", "en": "X"}}, "-")
>>> hanoi.clock(0.0)          # 1970-01-01 00:00 UTC was a Thursday, 07:00 in Hà Nội
(3, 420)
"""
from __future__ import annotations

from processing.alerting.config import AlertingConfig, Officer, Silence

__all__ = ["Roster"]


class Roster:
    """The duty roster of an :class:`AlertingConfig`; stateless, every clock an argument."""

    def __init__(self, config: AlertingConfig) -> None:
        self.config = config
        self._clock = config.city.clock

    def on_duty(self, team: str, now: float) -> tuple[Officer, ...]:
        """Officers of ``team`` on shift at ``now``, in roster order, each once."""
        wd, minute = self._clock(now)
        seen: dict[str, Officer] = {}
        for s in self.config.shifts:
            if s.team == team and s.covers(wd, minute):
                for oid in s.officers:
                    seen.setdefault(oid, self.config.officer(oid))
        return tuple(seen.values())

    def everyone_on_duty(self, now: float) -> dict[str, tuple[Officer, ...]]:
        """Team id → officers on shift at ``now`` (every team, empty when nobody is)."""
        return {t.id: self.on_duty(t.id, now) for t in self.config.teams}

    def silenced_by(self, sensor_id: str, ward: str, domain: str, now: float) -> Silence | None:
        """The first silence / maintenance window in force for this sensor at ``now``, if any."""
        wd, minute = self._clock(now)
        for s in self.config.silences:
            if s.applies_to(sensor_id, ward, domain) and s.active(now, wd, minute):
                return s
        return None
