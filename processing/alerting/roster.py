"""Who is on duty now: shifts in Asia/Ho_Chi_Minh local time (UTC+7, no daylight saving).

A shift belongs to the day it starts on; one whose end is not after its start
crosses midnight into the next day (``22:00``–``06:00`` on Sunday covers
Monday 00:00–06:00 too).  Silences / maintenance windows use the same clock.

>>> from processing.alerting.roster import local_clock
>>> local_clock(0.0)          # 1970-01-01 00:00 UTC was a Thursday, 07:00 in Hà Nội
(3, 420)
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from processing.alerting.config import AlertingConfig, Officer, Silence

__all__ = ["ICT", "Roster", "local_clock", "local_iso"]

#: Asia/Ho_Chi_Minh as a fixed UTC+7 (no daylight saving since 1975; the tz database's older
#: +08:00 history would only matter for dates before that, so a fixed offset is exact here).
ICT = timezone(timedelta(hours=7), "ICT")


def local_clock(now: float) -> tuple[int, int]:
    """``(weekday 0=Mon, minute of the day)`` of epoch ``now`` in Asia/Ho_Chi_Minh."""
    dt = datetime.fromtimestamp(now, ICT)
    return dt.weekday(), dt.hour * 60 + dt.minute


def local_iso(now: float) -> str:
    """ISO 8601 with the +07:00 offset, whole seconds (``2026-03-02T07:15:00+07:00``)."""
    return datetime.fromtimestamp(int(now), ICT).isoformat()


class Roster:
    """The duty roster of an :class:`AlertingConfig`; stateless, every clock an argument."""

    def __init__(self, config: AlertingConfig) -> None:
        self.config = config

    def on_duty(self, team: str, now: float) -> tuple[Officer, ...]:
        """Officers of ``team`` on shift at ``now``, in roster order, each once."""
        wd, minute = local_clock(now)
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
        wd, minute = local_clock(now)
        for s in self.config.silences:
            if s.applies_to(sensor_id, ward, domain) and s.active(now, wd, minute):
                return s
        return None
