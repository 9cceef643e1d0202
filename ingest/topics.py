"""MQTT topics of readings, both ways: ``<prefix>/<district>/<domain>/<sensor_id>`` written for
each sensor, the sensor id read back out of one, and topic-filter matching (``+``, ``#``).

>>> from processing.registry import Registry
>>> topic_for(Registry.synthetic(1).sensors[0])
'city/-/environment/S000000'
>>> topic_sensor("city/tran-phu/environment/BG-ENV-014"), topic_sensor("ioc.readings")
('BG-ENV-014', None)
>>> topic_matches("city/+/traffic/#", "city/tran-phu/traffic/BG-TRF-001")
True
"""
from __future__ import annotations

import unicodedata

from processing.kinds import DOMAINS
from processing.registry import Registry, SensorSpec

__all__ = ["slug", "topic_for", "topic_matches", "topic_sensor", "topics"]


def slug(text: str) -> str:
    """An MQTT-topic-safe, ASCII form of a ward name.

    >>> slug("KCN Song Khê – Nội Hoàng"), slug("Đình Trám")
    ('kcn-song-khe-noi-hoang', 'dinh-tram')
    """
    text = text.replace("Đ", "D").replace("đ", "d")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    out = "".join(c if c.isalnum() else "-" for c in ascii_text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "-"


def topic_for(spec: SensorSpec, prefix: str = "city") -> str:
    """``<prefix>/<district>/<domain>/<sensor_id>`` (DESIGN.md's wire convention)."""
    return f"{prefix}/{slug(spec.ward)}/{spec.domain}/{spec.id}"


def topics(registry: Registry, prefix: str = "city") -> list[str]:
    """:func:`topic_for` of every sensor, by sensor index."""
    return [topic_for(s, prefix) for s in registry.sensors]


def topic_sensor(source: str) -> str | None:
    """The sensor id of an MQTT topic ``<prefix>/<district>/<domain>/<sensor_id>``, else None."""
    parts = source.split("/")
    if len(parts) >= 4 and parts[-2] in DOMAINS and parts[-1] and not {"+", "#"} & set(parts[-1]):
        return parts[-1]
    return None


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest)."""
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(p) == len(t)
