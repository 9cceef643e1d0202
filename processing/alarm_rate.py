"""Alarm-rate figures for the control room, against ISA-18.2 / EEMUA 191.

Pure: numpy in, numpy out, the clock an argument, no I/O.

ISA-18.2 (ANSI/ISA-18.2-2016, table 16) and EEMUA 191 judge an alarm system
by the alarms one operator is asked to handle:

* about 6 alarms per hour (one per 10 minutes) per operator: very likely acceptable;
* about 12 per hour (two per 10 minutes): the most that is manageable;
* 10 or more alarms in 10 minutes: an alarm *flood*.

A *nuisance* alarm here is one whose condition cleared by itself (its
``cleared_at``: the flag went off or a silent sensor came back, not an operator
resolving it) within ``nuisance_s`` (10 minutes) of opening -- the chattering
and fleeting alarms EEMUA 191 counts as bad actors.

:func:`alarm_rate` counts the alarms opened in the window ``(now - window_s, now]``,
in total and per team; the rate per hour is ``count * 3600 / window_s``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AlarmRate", "FLOOD_COUNT", "FLOOD_WINDOW_S", "ISA_ACCEPTABLE_PER_H", "ISA_MANAGEABLE_PER_H",
           "NUISANCE_S", "RATINGS", "alarm_rate", "peak_count", "rating"]

#: ISA-18.2 / EEMUA 191: alarms per hour per operator very likely acceptable ...
ISA_ACCEPTABLE_PER_H = 6.0
#: ... and the most that is manageable.
ISA_MANAGEABLE_PER_H = 12.0
#: An alarm flood: this many alarms ...
FLOOD_COUNT = 10
#: ... within this many seconds.
FLOOD_WINDOW_S = 600.0
#: An alarm that cleared by itself within this many seconds of opening is a nuisance alarm.
NUISANCE_S = 600.0
#: What :func:`rating` returns, best first.
RATINGS: tuple[str, ...] = ("acceptable", "manageable", "overloaded", "flood")


@dataclass(frozen=True, eq=False)
class AlarmRate:
    """Alarm figures over one window, in total and per team (``teams`` sorted; arrays aligned with it).

    * ``count``: alarms opened in the window; ``per_hour``: ``count * 3600 / window_s``;
    * ``nuisance``: of those, how many cleared by themselves within ``nuisance_s`` of opening;
      ``nuisance_share``: ``nuisance / count`` (NaN when ``count`` is 0);
    * ``peak``: the most alarms opened in any ``FLOOD_WINDOW_S`` (10 min) inside the window;
      ``flood``: ``peak >= FLOOD_COUNT``.

    The ``total_*`` fields are the same over every team together.
    """

    now: float
    window_s: float
    teams: np.ndarray                  # str, sorted unique team ids
    count: np.ndarray                  # int64
    per_hour: np.ndarray               # float64
    nuisance: np.ndarray               # int64
    nuisance_share: np.ndarray         # float64, NaN for a team with no alarm
    peak: np.ndarray                   # int64
    flood: np.ndarray                  # bool
    total_count: int
    total_per_hour: float
    total_nuisance: int
    total_nuisance_share: float        # NaN when there is no alarm
    total_peak: int
    total_flood: bool

    def team(self, team_id: str) -> dict[str, float | int | bool]:
        """One team's figures (zeros for a team with no alarm in the window)."""
        hit = np.flatnonzero(self.teams == team_id)
        if not hit.size:
            return {"count": 0, "per_hour": 0.0, "nuisance": 0, "nuisance_share": float("nan"), "peak": 0,
                    "flood": False}
        j = int(hit[0])
        return {"count": int(self.count[j]), "per_hour": float(self.per_hour[j]), "nuisance": int(self.nuisance[j]),
                "nuisance_share": float(self.nuisance_share[j]), "peak": int(self.peak[j]),
                "flood": bool(self.flood[j])}


def peak_count(times: np.ndarray, span_s: float = FLOOD_WINDOW_S) -> int:
    """The most of ``times`` (seconds, any order) inside any half-open interval ``[t, t + span_s)``."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    if t.size == 0:
        return 0
    return int((np.searchsorted(t, t + span_s, side="left") - np.arange(t.size)).max())


def rating(per_hour: float, flood: bool = False) -> str:
    """ISA-18.2 verdict for one operator's rate: ``acceptable`` (<= 6/h), ``manageable`` (<= 12/h),
    ``overloaded`` (more), or ``flood`` (10 or more in 10 minutes)."""
    if flood:
        return "flood"
    if not per_hour > ISA_ACCEPTABLE_PER_H:
        return "acceptable"
    return "manageable" if per_hour <= ISA_MANAGEABLE_PER_H else "overloaded"


def alarm_rate(opened_at: np.ndarray, cleared_at: np.ndarray, team: np.ndarray, now: float, window_s: float,
               *, nuisance_s: float = NUISANCE_S) -> AlarmRate:
    """Alarm rates over the window ``(now - window_s, now]``, in total and per team.

    ``opened_at`` (float seconds) is when each alarm opened; ``cleared_at`` (float seconds,
    NaN = not cleared) when its condition first cleared by itself; ``team`` (str) who it was
    routed to -- three aligned 1-D arrays, one entry per alarm, any order.  Alarms opened
    outside the window are ignored.  ``window_s`` must be > 0.  See :class:`AlarmRate`.
    """
    if not window_s > 0:
        raise ValueError(f"alarm_rate: window_s must be > 0, got {window_s!r}")
    opened = np.asarray(opened_at, dtype=np.float64).ravel()
    cleared = np.asarray(cleared_at, dtype=np.float64).ravel()
    teams_in = np.asarray(team).astype(str).ravel()
    if not (opened.shape == cleared.shape == teams_in.shape):
        raise ValueError("alarm_rate: opened_at, cleared_at and team differ in length")
    now = float(now)
    window_s = float(window_s)
    keep = (opened > now - window_s) & (opened <= now)
    opened, cleared, teams_in = opened[keep], cleared[keep], teams_in[keep]
    with np.errstate(invalid="ignore"):
        nuis = np.isfinite(cleared) & (cleared - opened <= nuisance_s)
    teams, inv = np.unique(teams_in, return_inverse=True)
    inv = inv.ravel()
    k = teams.size
    count = np.bincount(inv, minlength=k).astype(np.int64)
    nuisance = np.bincount(inv, weights=nuis, minlength=k).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(count > 0, nuisance / np.maximum(count, 1), np.nan)
    peak = np.array([peak_count(opened[inv == j]) for j in range(k)], dtype=np.int64)
    total = int(opened.size)
    total_nuis = int(nuis.sum())
    total_peak = peak_count(opened)
    return AlarmRate(
        now=now, window_s=window_s, teams=teams, count=count, per_hour=count * 3600.0 / window_s,
        nuisance=nuisance, nuisance_share=share, peak=peak, flood=peak >= FLOOD_COUNT, total_count=total,
        total_per_hour=total * 3600.0 / window_s, total_nuisance=total_nuis,
        total_nuisance_share=total_nuis / total if total else float("nan"), total_peak=total_peak,
        total_flood=total_peak >= FLOOD_COUNT)
