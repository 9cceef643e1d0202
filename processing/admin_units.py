"""The city's administrative units as data: names, codes, parents and the dates each was valid.

``config/<city>/admin_units.toml`` (see its header) lists provinces, districts, wards and communes;
since 1 July 2025 the district level is gone and the former Bắc Giang province is part of Bắc Ninh,
so a unit carries ``valid_from`` / ``valid_to`` and, when it was replaced, its ``successor``.
:func:`parse_admin_units` validates the table (every problem one :class:`ConfigError` line);
:meth:`AdminUnits.on` answers which units were in force on a date and :meth:`AdminUnits.chain`
the parents of a unit up to its province.

Pure: the I/O half is :func:`ioc.citydata.load_admin_units`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from processing.errors import ConfigError

__all__ = ["LEVELS", "AdminUnit", "AdminUnits", "parse_admin_units"]

LEVELS = ("province", "district", "ward", "commune")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIELDS = {"code", "name", "short_name", "level", "parent", "valid_from", "valid_to", "successor", "gso_code", "note"}


@dataclass(frozen=True, slots=True)
class AdminUnit:
    code: str
    name: str
    short_name: str
    level: str
    parent: str = ""
    valid_from: str = ""        # YYYY-MM-DD; empty: since before the data
    valid_to: str = ""          # YYYY-MM-DD, inclusive; empty: still in force
    successor: str = ""
    gso_code: str = ""
    note: str = ""

    def in_force(self, date: str) -> bool:
        return (not self.valid_from or self.valid_from <= date) and (not self.valid_to or date <= self.valid_to)


@dataclass(frozen=True)
class AdminUnits:
    units: tuple[AdminUnit, ...]
    date: str
    source: str

    def get(self, code: str) -> AdminUnit | None:
        return next((u for u in self.units if u.code == code), None)

    def named(self, short_name: str) -> AdminUnit | None:
        """The unit a map or registry calls ``short_name`` (``Ngô Quyền``), if one is listed."""
        return next((u for u in self.units if u.short_name == short_name or u.name == short_name), None)

    def on(self, date: str) -> tuple[AdminUnit, ...]:
        """The units in force on ``date`` (YYYY-MM-DD)."""
        return tuple(u for u in self.units if u.in_force(date))

    def chain(self, code: str) -> tuple[AdminUnit, ...]:
        """The unit and its parents, up to its province."""
        out = []
        u = self.get(code)
        while u is not None:
            out.append(u)
            u = self.get(u.parent) if u.parent else None
        return tuple(out)


def parse_admin_units(obj: Mapping[str, Any], where: str) -> AdminUnits:
    items = obj.get("units", [])
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'units' must be a non-empty array of tables ([[units]])")
    for key in ("date", "source"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise ConfigError(f"{where}: '{key}' must say " + ("when the file was checked (YYYY-MM-DD)"
                                                               if key == "date" else "where the units come from"))
    if not _DATE.match(obj["date"]):
        raise ConfigError(f"{where}: date: YYYY-MM-DD, got {obj['date']!r}")
    units: list[AdminUnit] = []
    for k, item in enumerate(items):
        at = f"{where}: units[{k}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at}: must be a table")
        unknown = set(item) - _FIELDS
        if unknown:
            raise ConfigError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        if any(not isinstance(v, str) for v in item.values()):
            raise ConfigError(f"{at}: every field is a text")
        code = item.get("code", "")
        if not _CODE.match(code):
            raise ConfigError(f"{at}.code: a lower-case identifier (a-z, 0-9, _), got {code!r}")
        if not item.get("name", "").strip():
            raise ConfigError(f"{at}.name: the unit's full name")
        if item.get("level") not in LEVELS:
            raise ConfigError(f"{at}.level: one of {', '.join(LEVELS)}, got {item.get('level')!r}")
        for d in ("valid_from", "valid_to"):
            if item.get(d) and not _DATE.match(item[d]):
                raise ConfigError(f"{at}.{d}: YYYY-MM-DD, got {item[d]!r}")
        if item.get("valid_from") and item.get("valid_to") and item["valid_from"] > item["valid_to"]:
            raise ConfigError(f"{at}: valid_from {item['valid_from']} is after valid_to {item['valid_to']}")
        units.append(AdminUnit(code=code, name=item["name"].strip(),
                               short_name=item.get("short_name", "").strip() or item["name"].strip(),
                               level=item["level"], parent=item.get("parent", ""), valid_from=item.get("valid_from", ""),
                               valid_to=item.get("valid_to", ""), successor=item.get("successor", ""),
                               gso_code=item.get("gso_code", ""), note=item.get("note", "")))
    codes = [u.code for u in units]
    dup = sorted({c for c in codes if codes.count(c) > 1})
    if dup:
        raise ConfigError(f"{where}: unit code(s) used twice: {', '.join(dup)}")
    known = set(codes)
    for k, u in enumerate(units):
        for field in ("parent", "successor"):
            ref = getattr(u, field)
            if ref and ref not in known:
                raise ConfigError(f"{where}: units[{k}].{field}: no unit {ref!r} in the file")
        if u.level != "province" and not u.parent:
            raise ConfigError(f"{where}: units[{k}].parent: a {u.level} belongs to a unit above it")
    return AdminUnits(tuple(units), obj["date"], obj["source"].strip())
