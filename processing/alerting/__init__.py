"""The alert engine that pushes alerts to duty officers (pure: no I/O, every clock an argument).

- :mod:`.config`: alerting.toml validated into frozen dataclasses
- :mod:`.roster`, :mod:`.routing`: who is on duty, rules → team, escalation levels, silences
- :mod:`.engine`: lifecycle, dedup, flaps, incidents, events and notices
- :mod:`.messages`, :mod:`.cap`: bilingual text and OASIS CAP 1.2 XML
"""
from processing.alerting.cap import to_cap
from processing.alerting.config import AlertingConfig, ConfigError, parse_config
from processing.alerting.engine import AlertEngine, Event, Incident, Notice, Outcome, Routed
from processing.alerting.roster import Roster
from processing.alerting.routing import Router

__all__ = ["AlertEngine", "AlertingConfig", "ConfigError", "Event", "Incident", "Notice", "Outcome", "Roster",
           "Routed", "Router", "parse_config", "to_cap"]
