"""The city the IOC watches, as data: its names, its local time, who signs its alerts.

A city's folder holds ``city.toml`` (``config/bac_giang/city.toml``); :func:`parse_city`
validates the parsed mapping into a :class:`CityProfile` (the file is read by
:func:`ioc.citydata.load_city`).  Everything that names the city or shows a local time
reads it from here: alert texts and CAP messages, the duty roster's shifts, the
display's clock and brand line, the API's ISO times, the core's time-of-day slots and
the simulator's daily rhythms.

Local time is a fixed UTC offset: Vietnam has kept UTC+7 without daylight saving since
1975, and a city whose zone has daylight saving would need a tz database here.

>>> city = parse_city({"id": "demo", "utc_offset": "+07:00", "sender": "ioc@demo.example",
...                    "name": {"vi": "Thành phố Mẫu", "en": "Sample City"}}, "city.toml")
>>> city.iso(0.0), city.clock(0.0)        # 1970-01-01 was a Thursday; 07:00 at +07:00
('1970-01-01T07:00:00+07:00', (3, 420))
>>> city.text("name", "en")
'Sample City'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from processing.errors import ConfigError, InputError

__all__ = ["CityProfile", "LANGUAGES", "NoOffset", "instant_of", "parse_city"]


class NoOffset(InputError):
    """A date-time without its UTC offset: which instant it means is not known."""


def instant_of(text: str) -> float:
    """Epoch seconds of an ISO 8601 / RFC 3339 date-time with its offset (``Z``, ``z`` or ``+07:00``);
    :class:`InputError` when it is not one, :class:`NoOffset` when the offset is missing.

    >>> instant_of("2026-03-02T07:00:00+07:00") == instant_of("2026-03-02T00:00:00z")
    True
    """
    try:
        t = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{text!r} is not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise NoOffset(f"{text!r} has no UTC offset")
    return t.timestamp()

#: The languages the IOC's texts exist in (alert messages, CAP, the display).
LANGUAGES: tuple[str, ...] = ("vi", "en")

_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_TEXTS = ("name", "title", "center", "local_time")


@dataclass(frozen=True, slots=True)
class CityProfile:
    id: str                              # the folder's name, e.g. "bac_giang"
    utc_offset_s: int                    # local time = UTC + this (fixed; no daylight saving)
    sender: str                          # CAP sender and e-mail From: an address of the city's domain
    name: tuple[str, str]                # (vi, en): the city in running text ("Bắc Giang")
    title: tuple[str, str]               # the display's brand line ("Thành phố Bắc Giang")
    center: tuple[str, str]              # who sends the alerts (CAP senderName)
    local_time: tuple[str, str]          # what the local clock is called ("giờ Việt Nam")
    timezone_name: str = ""              # the IANA zone it stands for, shown to people only
    languages: tuple[str, ...] = LANGUAGES

    @property
    def tz(self) -> timezone:
        """The local time zone (a fixed offset)."""
        return timezone(timedelta(seconds=self.utc_offset_s))

    @property
    def offset_label(self) -> str:
        """``+07:00``."""
        sign = "-" if self.utc_offset_s < 0 else "+"
        h, m = divmod(abs(self.utc_offset_s) // 60, 60)
        return f"{sign}{h:02d}:{m:02d}"

    def text(self, field: str, lang: str) -> str:
        """The ``field`` (name, title, center, local_time) in ``lang`` (vi or en)."""
        if field not in _TEXTS:
            raise KeyError(field)
        pair = getattr(self, field)
        return pair[1] if lang == "en" else pair[0]

    def clock(self, now: float) -> tuple[int, int]:
        """``(weekday 0=Mon, minute of the day)`` of epoch ``now`` in local time."""
        dt = datetime.fromtimestamp(now, self.tz)
        return dt.weekday(), dt.hour * 60 + dt.minute

    def iso(self, now: float) -> str:
        """ISO 8601 in local time with its offset, whole seconds (``2026-03-02T07:15:00+07:00``)."""
        return datetime.fromtimestamp(int(now), self.tz).isoformat()


def _offset_s(text: Any, source: str) -> int:
    m = _OFFSET.match(text) if isinstance(text, str) else None
    if not m or int(m.group(2)) > 14 or int(m.group(3)) >= 60:
        raise ConfigError(f"{source}: utc_offset: expected an offset like +07:00, got {text!r}")
    s = (int(m.group(2)) * 60 + int(m.group(3))) * 60
    return -s if m.group(1) == "-" else s


def parse_city(obj: Mapping[str, Any], source: str) -> CityProfile:
    """Validate a parsed ``city.toml``; every problem is one :class:`ConfigError` naming the key.

    Required: ``id``, ``utc_offset``, ``sender`` and ``[name]`` (``vi``, ``en``); ``[title]``,
    ``[center]`` and ``[local_time]`` default from the name; ``languages`` from :data:`LANGUAGES`."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{source}: top level must be a table")
    known = {"id", "utc_offset", "timezone", "sender", "languages", *_TEXTS}
    for k in obj:
        if k not in known:
            raise ConfigError(f"{source}: {k}: unknown key; known: {', '.join(sorted(known))}")

    def string(key: str, required: bool = True) -> str:
        v = obj.get(key, "")
        if not isinstance(v, str) or (required and not v.strip()):
            raise ConfigError(f"{source}: {key}: expected a non-empty string, got {obj.get(key)!r}")
        return v.strip()

    def pair(key: str, default: tuple[str, str] | None) -> tuple[str, str]:
        v = obj.get(key)
        if v is None and default is not None:
            return default
        if not isinstance(v, Mapping):
            raise ConfigError(f"{source}: [{key}]: expected a table with vi and en, got {v!r}")
        for k in v:
            if k not in LANGUAGES:
                raise ConfigError(f"{source}: [{key}] {k}: unknown language; known: {', '.join(LANGUAGES)}")
        out = []
        for lang in LANGUAGES:
            s = v.get(lang)
            if not isinstance(s, str) or not s.strip():
                raise ConfigError(f"{source}: [{key}] {lang}: expected a non-empty string, got {s!r}")
            out.append(s.strip())
        return out[0], out[1]

    city_id = string("id")
    if not re.match(r"^[a-z0-9_]+$", city_id):
        raise ConfigError(f"{source}: id: expected lower-case letters, digits and '_', got {city_id!r}")
    sender = string("sender")
    if any(ch in sender for ch in " ,<&") or "@" not in sender:
        raise ConfigError(f"{source}: sender: expected an address like ioc@city.gov.vn "
                          f"(no spaces, commas, '<' or '&'), got {sender!r}")
    langs = obj.get("languages", list(LANGUAGES))
    if (not isinstance(langs, list) or not langs or not all(isinstance(x, str) for x in langs)
            or len(set(langs)) != len(langs)):
        raise ConfigError(f"{source}: languages: expected a list of distinct language codes, got {langs!r}")
    for lang in langs:
        if lang not in LANGUAGES:
            raise ConfigError(f"{source}: languages: {lang!r} has no texts; known: {', '.join(LANGUAGES)}")
    name = pair("name", None)
    return CityProfile(
        id=city_id, utc_offset_s=_offset_s(obj.get("utc_offset"), source), sender=sender, name=name,
        title=pair("title", name), center=pair("center", (f"Trung tâm IOC {name[0]}", f"{name[1]} IOC")),
        local_time=pair("local_time", ("giờ địa phương", "local time")),
        timezone_name=string("timezone", required=False), languages=tuple(langs))
