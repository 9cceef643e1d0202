"""Who may do what: the control room's roles, the actions on alerts and the system, and the rule.

Four roles, each allowed what the one before it may do and more:

========== =====================================================================
viewer     the wall screen: sees the whole city, changes nothing
operator   acknowledges, assigns and comments on alerts
duty       the duty officer: also resolves, silences and sets maintenance windows,
           for the alerts of their own teams (every team when they have none listed)
admin      everything, users and configuration included
========== =====================================================================

Machines act with API tokens whose scope is ``read`` (what a viewer sees) or ``write``
(an operator's actions).  The rule is pure: the HTTP layer asks :func:`check` for every
state change, with the signed-in user (or token) and the alert's team, and turns an
:class:`~processing.errors.AccessError` into 403.

>>> check(Principal("an", "operator"), "acknowledge")
>>> check(Principal("wall", "viewer"), "acknowledge")
Traceback (most recent call last):
...
processing.errors.AccessError: viewer 'wall' may not acknowledge alerts
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from processing.errors import AccessError, ConfigError

__all__ = ["ACTIONS", "ROLES", "SCOPES", "Principal", "allowed", "check", "parse_role", "valid_name"]

ROLES: tuple[str, ...] = ("viewer", "operator", "duty", "admin")
SCOPES: tuple[str, ...] = ("read", "write")

#: action -> (least role allowed, what the refusal says is refused)
ACTIONS: dict[str, tuple[str, str]] = {
    "view": ("viewer", "see the control room"),
    "acknowledge": ("operator", "acknowledge alerts"),
    "assign": ("operator", "assign alerts"),
    "comment": ("operator", "comment on alerts"),
    "resolve": ("duty", "resolve alerts"),
    "silence": ("duty", "silence sensors"),
    "maintenance": ("duty", "set maintenance windows"),
    "audit": ("admin", "read the audit log"),
    "users": ("admin", "manage users and tokens"),
    "configure": ("admin", "change the configuration"),
}
#: what a token of each scope may do at most (as the role of the same rank)
_SCOPE_ROLE = {"read": "viewer", "write": "operator"}
#: actions a duty officer may take only on the alerts of their own teams
_TEAM_BOUND = frozenset({"resolve", "silence", "maintenance"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: a signed-in user (``kind="user"``) or an API token (``kind="token"``,
    ``role`` then from its scope: read = viewer, write = operator)."""

    name: str
    role: str
    teams: tuple[str, ...] = ()       # a duty officer's own teams (empty: every team)
    kind: str = "user"

    @classmethod
    def for_token(cls, name: str, scope: str) -> "Principal":
        if scope not in _SCOPE_ROLE:
            raise ConfigError(f"token {name!r}: scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        return cls(name, _SCOPE_ROLE[scope], (), "token")


def parse_role(text: str) -> str:
    """A role name as typed (``duty-officer`` and ``duty_officer`` mean ``duty``), or a clear error."""
    role = str(text).strip().lower().replace("-", "_")
    role = "duty" if role in ("duty_officer", "duty") else role
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {text!r}")
    return role


def valid_name(text: str) -> str:
    """A user or token name: 2-64 of a-z 0-9 _ . - , starting with a letter or digit."""
    name = str(text).strip()
    if not _NAME.match(name):
        raise ConfigError(f"name {text!r}: use 2-64 lowercase letters, digits, '_', '.' or '-'")
    return name


def allowed(who: Principal, action: str, team: str | None = None) -> bool:
    """Whether ``who`` may take ``action`` (on an alert of ``team``, when it is about one)."""
    least, _ = ACTIONS[action]
    if who.role not in ROLES or ROLES.index(who.role) < ROLES.index(least):
        return False
    if who.role == "duty" and action in _TEAM_BOUND and who.teams and team is not None:
        return team in who.teams
    return True


def check(who: Principal, action: str, team: str | None = None) -> None:
    """Raise :class:`AccessError` (one line naming who and what) unless :func:`allowed`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not allowed(who, action, team):
        _, what = ACTIONS[action]
        whose = f" of team {team}" if team is not None and ACTIONS[action][0] == "duty" and who.role == "duty" else ""
        raise AccessError(f"{who.role} {who.name!r} may not {what}{whose}")
