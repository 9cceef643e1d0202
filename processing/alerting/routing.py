"""Routing: which team gets an alert, and who in it is told at each escalation level.

Rules are tried in file order; the first whose domains, wards, kinds (empty =
any) and minimum severity match names the team, else the config's
``default_team``.  Level 0 is told when the alert opens; level ``k`` when the
alert is still not acknowledged ``after_min`` minutes after it was first
notified.  ``"on_duty"`` in a level expands to the team's officers on shift at
that moment (:class:`~processing.alerting.roster.Roster`).
"""
from __future__ import annotations

from processing.alerting.config import AlertingConfig, Officer, Team
from processing.alerting.roster import Roster

__all__ = ["Recipient", "Router"]

#: ``(channel, address, officer id or "")``: one delivery target
Recipient = tuple[str, str, str]


class Router:
    """Pure routing over one configuration."""

    def __init__(self, config: AlertingConfig, roster: Roster | None = None) -> None:
        self.config = config
        self.roster = roster or Roster(config)

    def team_for(self, domain: str, ward: str, kind: str, severity: str) -> Team:
        for r in self.config.rules:
            if r.matches(domain, ward, kind, severity):
                return self.config.team(r.team)
        return self.config.team(self.config.default_team)

    def officers(self, team: Team, level: int, now: float) -> tuple[Officer, ...]:
        """Officers told at escalation ``level`` (``on_duty`` resolved at ``now``), each once."""
        out: dict[str, Officer] = {}
        for who in team.escalation[level].to:
            if who == "on_duty":
                for o in self.roster.on_duty(team.id, now):
                    out.setdefault(o.id, o)
            else:
                out.setdefault(who, self.config.officer(who))
        return tuple(out.values())

    def recipients(self, team: Team, level: int, now: float, *, topics: bool = True) -> tuple[Recipient, ...]:
        """Every ``(channel, address, officer)`` of a level, plus the team's topics if ``topics``."""
        out: list[Recipient] = [(ch, addr, o.id) for o in self.officers(team, level, now) for ch, addr in o.channels]
        if topics:
            out.extend((kind, topic, "") for kind, topic in team.topics)
        return tuple(out)

    def escalation_due(self, team: Team, level: int, notified_at: float) -> float | None:
        """When the next level is due for an alert first notified at ``notified_at`` (None: no next level)."""
        if level + 1 >= len(team.escalation):
            return None
        return notified_at + team.escalation[level + 1].after_s
