"""Alerting configuration: officers, teams, shifts, escalation, routing rules, silences.

The TOML file (``config/<city>/alerting.toml``) is parsed by the I/O layer
(:func:`ioc.alerting.load_config`); :func:`parse_config` validates the parsed
mapping into frozen dataclasses.  Every problem raises one :class:`ConfigError`
line naming the file, the table and the key, e.g.::

    config/bac_giang/alerting.toml: [[shifts]] #2 key 'start': expected "HH:MM", got '25:00'

Times of day are local: the city's fixed UTC offset (:class:`processing.city.CityProfile`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from processing.alerts import ALERT_KINDS, SEVERITIES, SEVERITY_RANK
from processing.city import CityProfile
from processing.kinds import DOMAINS
from processing.errors import ConfigError

__all__ = ["AlertingConfig", "CapSettings", "ConfigError", "DAYS", "DeliverySettings", "EngineSettings",
           "EscalationLevel", "Officer", "Rule", "Shift", "Silence", "Team", "parse_config"]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")



@dataclass(frozen=True, slots=True)
class Officer:
    id: str
    name: str
    phone: str = ""
    email: str = ""
    webhook: str = ""

    @property
    def channels(self) -> tuple[tuple[str, str], ...]:
        """``(channel, address)`` pairs this officer can be reached on."""
        out = []
        if self.webhook:
            out.append(("webhook", self.webhook))
        if self.email:
            out.append(("email", self.email))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class EscalationLevel:
    after_s: float                 # since the alert was first notified
    to: tuple[str, ...]            # officer ids; "on_duty" = the team's officers on shift now


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str                      # Vietnamese
    name_en: str
    escalation: tuple[EscalationLevel, ...]
    topics: tuple[tuple[str, str], ...] = ()     # ("mqtt" | "kafka", topic)


@dataclass(frozen=True, slots=True)
class Shift:
    team: str
    officers: tuple[str, ...]
    days: tuple[int, ...]          # 0 = Monday; the day the shift starts on
    start_min: int                 # minutes after local midnight
    end_min: int                   # end <= start: the shift crosses midnight

    def covers(self, weekday: int, minute: int) -> bool:
        """On duty at local ``weekday`` (0 = Mon) and ``minute`` of the day."""
        if self.start_min < self.end_min:
            return weekday in self.days and self.start_min <= minute < self.end_min
        if weekday in self.days and minute >= self.start_min:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end_min


@dataclass(frozen=True, slots=True)
class Rule:
    team: str
    domains: tuple[str, ...] = ()  # empty = any
    wards: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_severity: str = "info"

    def matches(self, domain: str, ward: str, kind: str, severity: str) -> bool:
        return ((not self.domains or domain in self.domains) and (not self.wards or ward in self.wards)
                and (not self.kinds or kind in self.kinds)
                and SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity])


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    reason: str
    sensors: tuple[str, ...] = ()
    wards: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    recurrence: str = "once"       # once | daily | weekly
    start_at: float | None = None  # once: epoch seconds
    end_at: float | None = None
    days: tuple[int, ...] = tuple(range(7))
    start_min: int = 0             # daily / weekly: local minutes, end <= start crosses midnight
    end_min: int = 0

    def applies_to(self, sensor_id: str, ward: str, domain: str) -> bool:
        return sensor_id in self.sensors or ward in self.wards or domain in self.domains

    def active(self, now: float, weekday: int, minute: int) -> bool:
        """In force at epoch ``now`` (local ``weekday``/``minute`` given for recurring windows)."""
        if self.recurrence == "once":
            return self.start_at <= now < self.end_at  # type: ignore[operator]
        return Shift("", (), self.days, self.start_min, self.end_min).covers(weekday, minute)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    auto_resolve_s: float = 900.0      # a cleared condition resolves itself after this long (the flap window)
    silence_factor: float = 3.0        # a sensor is silent after k x its interval without readings
    flap_threshold: int = 3            # re-rises within the window that mark an alert as flapping
    incident_min_alerts: int = 3       # unresolved alerts in one ward + domain that make an incident
    keep_resolved: int = 500


@dataclass(frozen=True, slots=True)
class CapSettings:
    sender: str = ""                   # parse_config: the city's sender unless [cap] sender overrides it
    status: str = "Actual"
    scope: str = "Restricted"
    restriction: str = "Cán bộ trực Trung tâm IOC / IOC duty officers"
    dashboard_url: str = "http://127.0.0.1:8050"
    map_url: str = "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
    circle_km: float = 0.5


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    max_attempts: int = 5
    backoff_s: float = 5.0
    backoff_max_s: float = 600.0
    timeout_s: float = 10.0
    webhook_secret_env: str = "IOC_WEBHOOK_SECRET"


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    officers: tuple[Officer, ...]
    teams: tuple[Team, ...]
    shifts: tuple[Shift, ...]
    rules: tuple[Rule, ...]
    city: CityProfile                  # names, local time, sender (config/<city>/city.toml)
    silences: tuple[Silence, ...] = ()
    engine: EngineSettings = EngineSettings()
    cap: CapSettings = CapSettings()
    delivery: DeliverySettings = DeliverySettings()
    default_team: str = ""

    def officer(self, officer_id: str) -> Officer:
        for o in self.officers:
            if o.id == officer_id:
                return o
        raise KeyError(officer_id)

    def team(self, team_id: str) -> Team:
        for t in self.teams:
            if t.id == team_id:
                return t
        raise KeyError(team_id)


# ------------------------------------------------------------------ parsing
class _Ctx:
    def __init__(self, source: str, table: str) -> None:
        self.source, self.table = source, table

    def err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.table} key {key!r}: {msg}")

    def get(self, m: Mapping[str, Any], key: str, typ: type | tuple[type, ...], default: Any = ...,
            ) -> Any:
        if key not in m:
            if default is ...:
                raise self.err(key, "is required")
            return default
        v = m[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, typ) or (isinstance(v, bool) and typ in (int, float)):
            name = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise self.err(key, f"expected {name}, got {v!r}")
        return v

    def strs(self, m: Mapping[str, Any], key: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
        v = m.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.err(key, f"expected a list of strings, got {v!r}")
        if allowed is not None:
            for x in v:
                if x not in allowed:
                    raise self.err(key, f"unknown value {x!r}; known: {', '.join(allowed)}")
        return tuple(v)

    def hhmm(self, m: Mapping[str, Any], key: str) -> int:
        v = self.get(m, key, str)
        mm = _HHMM.match(v)
        if not mm:
            raise self.err(key, f'expected "HH:MM", got {v!r}')
        return int(mm.group(1)) * 60 + int(mm.group(2))

    def days(self, m: Mapping[str, Any], key: str = "days") -> tuple[int, ...]:
        names = self.strs(m, key, DAYS) if key in m else DAYS
        if not names:
            raise self.err(key, "must name at least one day")
        return tuple(sorted({DAYS.index(d) for d in names}))

    def unknown(self, m: Mapping[str, Any], known: set[str]) -> None:
        for k in m:
            if k not in known:
                raise self.err(k, f"unknown key; known: {', '.join(sorted(known))}")


def _tables(obj: Mapping[str, Any], key: str, source: str) -> list[tuple[_Ctx, Mapping[str, Any]]]:
    v = obj.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
        raise ConfigError(f"{source}: [[{key}]] must be an array of tables")
    return [(_Ctx(source, f"[[{key}]] #{i + 1}"), x) for i, x in enumerate(v)]


def _ident(ctx: _Ctx, m: Mapping[str, Any], key: str = "id") -> str:
    v = ctx.get(m, key, str)
    if not _ID.match(v):
        raise ctx.err(key, f"expected an id of letters, digits, '_', '.', '-', got {v!r}")
    return v


def _epoch(ctx: _Ctx, m: Mapping[str, Any], key: str) -> float:
    v = m.get(key)
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise ctx.err(key, f"expected an ISO 8601 date-time with offset, got {v!r}") from None
    else:
        raise ctx.err(key, f"expected an ISO 8601 date-time with offset, got {v!r}")
    if dt.tzinfo is None:
        raise ctx.err(key, f"needs a UTC offset (e.g. +07:00), got {v!r}")
    return dt.timestamp()


def _positive(ctx: _Ctx, key: str, v: float, minimum: float = 0.0, strict: bool = False) -> float:
    if v < minimum or (strict and v == minimum):
        raise ctx.err(key, f"must be {'>' if strict else '>='} {minimum}, got {v!r}")
    return v


def parse_config(obj: Mapping[str, Any], source: str, *, city: CityProfile, wards: Sequence[str] | None = None,
                 sensor_ids: Sequence[str] | None = None) -> AlertingConfig:
    """Validate a parsed ``alerting.toml`` mapping of ``city``; ``wards``/``sensor_ids`` (if given) are
    checked too.  Shifts and silences are in the city's local time; CAP messages are signed by the
    city's sender unless ``[cap] sender`` names another."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{source}: top level must be a table")
    top = _Ctx(source, "top level")
    top.unknown(obj, {"engine", "cap", "delivery", "officers", "teams", "shifts", "rules", "silences",
                      "default_team"})

    def section(name: str) -> tuple[_Ctx, Mapping[str, Any]]:
        v = obj.get(name, {})
        if not isinstance(v, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table")
        return _Ctx(source, f"[{name}]"), v

    c, m = section("engine")
    c.unknown(m, {"auto_resolve_min", "silence_factor", "flap_threshold", "incident_min_alerts", "keep_resolved"})
    engine = EngineSettings(
        auto_resolve_s=60.0 * _positive(c, "auto_resolve_min", c.get(m, "auto_resolve_min", float, 15.0)),
        silence_factor=_positive(c, "silence_factor", c.get(m, "silence_factor", float, 3.0), 1.0, strict=True),
        flap_threshold=int(_positive(c, "flap_threshold", c.get(m, "flap_threshold", int, 3), 1)),
        incident_min_alerts=int(_positive(c, "incident_min_alerts", c.get(m, "incident_min_alerts", int, 3), 2)),
        keep_resolved=int(_positive(c, "keep_resolved", c.get(m, "keep_resolved", int, 500))))
    c, m = section("cap")
    dflt = CapSettings()
    c.unknown(m, {"sender", "status", "scope", "restriction", "dashboard_url", "map_url", "circle_km"})
    status = c.get(m, "status", str, "Actual")
    if status not in ("Actual", "Exercise", "System", "Test", "Draft"):
        raise c.err("status", f"expected Actual/Exercise/System/Test/Draft, got {status!r}")
    scope = c.get(m, "scope", str, "Restricted")
    if scope not in ("Public", "Restricted", "Private"):
        raise c.err("scope", f"expected Public/Restricted/Private, got {scope!r}")
    sender = c.get(m, "sender", str, city.sender)
    if not sender or any(ch in sender for ch in " ,<&"):
        raise c.err("sender", f"must be non-empty without spaces, commas, '<' or '&', got {sender!r}")
    cap = CapSettings(sender=sender, status=status, scope=scope,
                      restriction=c.get(m, "restriction", str, dflt.restriction),
                      dashboard_url=c.get(m, "dashboard_url", str, dflt.dashboard_url).rstrip("/"),
                      map_url=c.get(m, "map_url", str, dflt.map_url),
                      circle_km=_positive(c, "circle_km", c.get(m, "circle_km", float, 0.5), 0.0, strict=True))
    c, m = section("delivery")
    c.unknown(m, {"max_attempts", "backoff_s", "backoff_max_s", "timeout_s", "webhook_secret_env"})
    delivery = DeliverySettings(
        max_attempts=int(_positive(c, "max_attempts", c.get(m, "max_attempts", int, 5), 1)),
        backoff_s=_positive(c, "backoff_s", c.get(m, "backoff_s", float, 5.0)),
        backoff_max_s=_positive(c, "backoff_max_s", c.get(m, "backoff_max_s", float, 600.0)),
        timeout_s=_positive(c, "timeout_s", c.get(m, "timeout_s", float, 10.0), 0.0, strict=True),
        webhook_secret_env=c.get(m, "webhook_secret_env", str, "IOC_WEBHOOK_SECRET"))

    officers: list[Officer] = []
    for c, m in _tables(obj, "officers", source):
        c.unknown(m, {"id", "name", "phone", "email", "webhook"})
        oid = _ident(c, m)
        if any(o.id == oid for o in officers):
            raise c.err("id", f"duplicate officer id {oid!r}")
        email = c.get(m, "email", str, "")
        if email and "@" not in email:
            raise c.err("email", f"not an e-mail address: {email!r}")
        hook = c.get(m, "webhook", str, "")
        if hook and not hook.startswith(("http://", "https://")):
            raise c.err("webhook", f"expected an http(s) URL, got {hook!r}")
        officers.append(Officer(oid, c.get(m, "name", str), c.get(m, "phone", str, ""), email, hook))
    if not officers:
        raise ConfigError(f"{source}: [[officers]] needs at least one officer")
    officer_ids = {o.id for o in officers}

    teams: list[Team] = []
    for c, m in _tables(obj, "teams", source):
        c.unknown(m, {"id", "name", "name_en", "escalation", "topics"})
        tid = _ident(c, m)
        if any(t.id == tid for t in teams):
            raise c.err("id", f"duplicate team id {tid!r}")
        levels: list[EscalationLevel] = []
        esc = m.get("escalation")
        if not isinstance(esc, list) or not esc or not all(isinstance(x, Mapping) for x in esc):
            raise c.err("escalation", "needs at least one [[teams.escalation]] level")
        for j, lv in enumerate(esc):
            lc = _Ctx(source, f"[[teams]] #{len(teams) + 1} ({tid}) [[teams.escalation]] #{j + 1}")
            lc.unknown(lv, {"after_min", "to"})
            after = 60.0 * _positive(lc, "after_min", lc.get(lv, "after_min", float))
            to = lc.strs(lv, "to")
            if not to:
                raise lc.err("to", "needs \"on_duty\" or officer ids")
            for x in to:
                if x != "on_duty" and x not in officer_ids:
                    raise lc.err("to", f"unknown officer {x!r}")
            if levels and after <= levels[-1].after_s:
                raise lc.err("after_min", "must be later than the previous level")
            levels.append(EscalationLevel(after, to))
        topics = []
        for t in c.strs(m, "topics"):
            kind, _, name = t.partition(":")
            if kind not in ("mqtt", "kafka") or not name:
                raise c.err("topics", f'expected "mqtt:<topic>" or "kafka:<topic>", got {t!r}')
            topics.append((kind, name))
        teams.append(Team(tid, c.get(m, "name", str), c.get(m, "name_en", str, tid), tuple(levels), tuple(topics)))
    if not teams:
        raise ConfigError(f"{source}: [[teams]] needs at least one team")
    team_ids = [t.id for t in teams]

    shifts: list[Shift] = []
    for c, m in _tables(obj, "shifts", source):
        c.unknown(m, {"team", "officers", "days", "start", "end"})
        team = c.get(m, "team", str)
        if team not in team_ids:
            raise c.err("team", f"unknown team {team!r}; known: {', '.join(team_ids)}")
        offs = c.strs(m, "officers", sorted(officer_ids))
        if not offs:
            raise c.err("officers", "needs at least one officer")
        start, end = c.hhmm(m, "start"), c.hhmm(m, "end")
        shifts.append(Shift(team, offs, c.days(m), start, end))

    rules: list[Rule] = []
    for c, m in _tables(obj, "rules", source):
        c.unknown(m, {"team", "domains", "wards", "kinds", "min_severity"})
        team = c.get(m, "team", str)
        if team not in team_ids:
            raise c.err("team", f"unknown team {team!r}; known: {', '.join(team_ids)}")
        sev = c.get(m, "min_severity", str, "info")
        if sev not in SEVERITIES:
            raise c.err("min_severity", f"expected one of {', '.join(SEVERITIES)}, got {sev!r}")
        rules.append(Rule(team, c.strs(m, "domains", DOMAINS), c.strs(m, "wards", wards),
                          c.strs(m, "kinds", ALERT_KINDS), sev))

    silences: list[Silence] = []
    for c, m in _tables(obj, "silences", source):
        c.unknown(m, {"id", "reason", "sensors", "wards", "domains", "recurrence", "start_at", "end_at", "days",
                      "start", "end"})
        sid = _ident(c, m)
        sensors = c.strs(m, "sensors", sensor_ids)
        ws = c.strs(m, "wards", wards)
        ds = c.strs(m, "domains", DOMAINS)
        if not (sensors or ws or ds):
            raise c.err("sensors", "a silence needs sensors, wards or domains")
        rec = c.get(m, "recurrence", str, "once")
        base = dict(id=sid, reason=c.get(m, "reason", str, ""), sensors=sensors, wards=ws, domains=ds,
                    recurrence=rec)
        if rec == "once":
            s0, s1 = _epoch(c, m, "start_at"), _epoch(c, m, "end_at")
            if s1 <= s0:
                raise c.err("end_at", "must be after start_at")
            silences.append(Silence(**base, start_at=s0, end_at=s1))  # type: ignore[arg-type]
        elif rec in ("daily", "weekly"):
            days = c.days(m) if rec == "weekly" else tuple(range(7))
            if rec == "weekly" and "days" not in m:
                raise c.err("days", "a weekly silence needs days")
            silences.append(Silence(**base, days=days, start_min=c.hhmm(m, "start"),  # type: ignore[arg-type]
                                    end_min=c.hhmm(m, "end")))
        else:
            raise c.err("recurrence", f"expected once, daily or weekly, got {rec!r}")

    default_team = top.get(obj, "default_team", str, teams[0].id)
    if default_team not in team_ids:
        raise top.err("default_team", f"unknown team {default_team!r}; known: {', '.join(team_ids)}")
    return AlertingConfig(tuple(officers), tuple(teams), tuple(shifts), tuple(rules), city, tuple(silences), engine,
                          cap, delivery, default_team)
