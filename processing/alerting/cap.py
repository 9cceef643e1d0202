"""Alerts as OASIS CAP 1.2 XML (Common Alerting Protocol).

One ``<alert>`` per message: ``msgType`` ``Alert`` when an alert is first
notified, ``Update`` for later events (escalation, severity, acknowledgement),
``Cancel`` when it is resolved; Update and Cancel carry ``references`` to the
first message (``sender,identifier,sent``).  One ``<info>`` per language
(``vi-VN``, ``en-US``), each with an ``<area>``: the ward polygon when known
(``"lat,lon lat,lon …"``, first point = last) and always a circle around the
sensor.  Times carry the city's UTC offset (``+07:00`` in Bắc Giang); the city
(:class:`~processing.city.CityProfile`) names the source, the sender and the area.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Sequence

import numpy as np

from processing.alerting.config import CapSettings
from processing.alerting.messages import kind_label, map_link, render
from processing.city import CityProfile
from processing.registry import SensorSpec

__all__ = ["CAP_NS", "cap_identifier", "to_cap"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_CATEGORY = {"traffic": "Transport", "environment": "Env", "utility": "Infra"}
_SEVERITY = {"info": "Minor", "warning": "Moderate", "critical": "Severe"}
_URGENCY = {"info": "Future", "warning": "Expected", "critical": "Immediate"}
_LANG = {"vi": "vi-VN", "en": "en-US"}


def cap_identifier(sender: str, alert_id: int, event_seq: int) -> str:
    """A message identifier unique per (alert, event); no spaces, commas, '<' or '&'."""
    domain = sender.split("@")[-1]
    return f"{domain}.ioc.alert-{alert_id}.event-{event_seq}"


def _polygon(ring: np.ndarray) -> str:
    pts = [(float(lat), float(lon)) for lon, lat in np.asarray(ring, dtype=np.float64)]
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    return " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in pts)


def to_cap(*, alert_id: int, kind: str, severity: str, spec: SensorSpec, since: float, last_value: float,
           occurrences: int, level: int, team_name: str, event: str, event_seq: int, sent: float,
           msg_type: str, first_event: int, first_sent: float, cap: CapSettings, city: CityProfile,
           ward_ring: np.ndarray | None = None, score: float = float("nan"), incident_size: int = 0,
           langs: Sequence[str] | None = None) -> str:
    """One CAP 1.2 ``<alert>`` document (UTF-8 XML string with declaration); one ``<info>`` per
    language of ``langs`` (default: the city's languages)."""
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise ValueError(f"msg_type must be Alert, Update or Cancel, got {msg_type!r}")
    ET.register_namespace("", CAP_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{CAP_NS}}}alert")
    sub(root, "identifier", cap_identifier(cap.sender, alert_id, event_seq))
    sub(root, "sender", cap.sender)
    sub(root, "sent", city.iso(sent))
    sub(root, "status", cap.status)
    sub(root, "msgType", msg_type)
    sub(root, "source", f"City IOC {city.text('name', 'vi')}")
    sub(root, "scope", cap.scope)
    if cap.scope == "Restricted":
        sub(root, "restriction", cap.restriction)
    if msg_type != "Alert" and event_seq != first_event:
        sub(root, "references",
            f"{cap.sender},{cap_identifier(cap.sender, alert_id, first_event)},{city.iso(first_sent)}")
    sub(root, "incidents", f"ioc-alert-{alert_id}")
    for lang in langs or city.languages:
        text = render(alert_id=alert_id, kind=kind, severity=severity, event=event, spec=spec, since=since,
                      last_value=last_value, occurrences=occurrences, level=level, team_name=team_name,
                      lang=lang, cap=cap, city=city, incident_size=incident_size)
        info = sub(root, "info")
        sub(info, "language", _LANG[lang])
        sub(info, "category", _CATEGORY.get(spec.domain, "Other"))
        sub(info, "event", kind_label(kind, lang))
        sub(info, "responseType", "AllClear" if msg_type == "Cancel" else "Monitor")
        sub(info, "urgency", "Past" if msg_type == "Cancel" else _URGENCY[severity])
        sub(info, "severity", _SEVERITY[severity])
        sub(info, "certainty", "Observed")
        code = sub(info, "eventCode")
        sub(code, "valueName", "IOC-KIND")
        sub(code, "value", kind)
        sub(info, "effective", city.iso(since))
        sub(info, "senderName", city.text("center", lang))
        sub(info, "headline", text.headline)
        sub(info, "description", text.description)
        sub(info, "instruction", text.instruction)
        sub(info, "web", f"{cap.dashboard_url}/alerts/{alert_id}")
        for name, value in (("sensorId", spec.id), ("alertId", str(alert_id)), ("escalationLevel", str(level)),
                            ("score", "" if not math.isfinite(score) else f"{score:.3f}"),
                            ("map", map_link(spec, cap))):
            if value:
                p = sub(info, "parameter")
                sub(p, "valueName", name)
                sub(p, "value", value)
        area = sub(info, "area")
        sub(area, "areaDesc", f"{'Phường/xã' if lang == 'vi' else 'Ward'} {spec.ward}, {city.text('name', lang)}")
        if ward_ring is not None and len(ward_ring) >= 3:
            sub(area, "polygon", _polygon(ward_ring))
        sub(area, "circle", f"{spec.lat:.6f},{spec.lon:.6f} {cap.circle_km:g}")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
