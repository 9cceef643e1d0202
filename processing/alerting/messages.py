"""Bilingual alert text (Vietnamese and English): what, where, since when, how to acknowledge.

>>> severity_label("critical", "vi")
'Nghiêm trọng'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from processing.alerting.config import CapSettings
from processing.city import LANGUAGES, CityProfile
from processing.registry import SensorSpec

__all__ = ["LANGS", "MessageText", "kind_label", "map_link", "render", "severity_label"]

LANGS: tuple[str, ...] = LANGUAGES

_KIND = {
    "limit": ("Vượt ngưỡng giới hạn", "Hard limit exceeded"),
    "stuck": ("Cảm biến bị treo giá trị", "Sensor value stuck"),
    "deviation": ("Giá trị bất thường", "Abnormal value"),
    "seasonal": ("Bất thường so với cùng giờ các ngày trước", "Unusual for the time of day"),
    "rate": ("Thay đổi đột ngột", "Sudden change"),
    "gap": ("Gián đoạn dữ liệu", "Data gap"),
    "invalid": ("Giá trị không hợp lệ", "Invalid values"),
    "late": ("Dữ liệu đến trễ", "Late data"),
    "anomaly": ("Bất thường", "Anomaly"),
    "silent": ("Cảm biến mất tín hiệu", "Sensor silent"),
}
_SEVERITY = {"info": ("Thông tin", "Information"), "warning": ("Cảnh báo", "Warning"),
             "critical": ("Nghiêm trọng", "Critical")}
_DOMAIN = {"traffic": ("Giao thông", "Traffic"), "environment": ("Môi trường", "Environment"),
           "utility": ("Hạ tầng kỹ thuật", "Utilities")}
_EVENT = {
    "opened": ("Cảnh báo mới", "New alert"), "unsilenced": ("Cảnh báo (hết thời gian bảo trì)",
                                                             "Alert (maintenance window ended)"),
    "escalated": ("CHUYỂN CẤP – chưa có người tiếp nhận", "ESCALATED – not acknowledged"),
    "severity": ("Mức độ tăng", "Severity raised"), "incident": ("Sự cố nhiều cảm biến", "Multi-sensor incident"),
    "acknowledged": ("Đã tiếp nhận", "Acknowledged"), "resolved": ("Đã xử lý xong", "Resolved"),
}


# The lines of a message, (Vietnamese, English), filled in by render(); the optional ones
# (value, flapping, incident, escalated) only when they apply.
_TEXT = {
    "subject": ("[IOC {city} #{alert_id}] {ev}: {what} – {ward}", "[IOC {city} #{alert_id}] {ev}: {what} – {ward}"),
    "head": ("{ev}. {what} ({domain}), mức độ: {sev}.", "{ev}. {what} ({domain}), severity: {sev}."),
    "sensor": ("Cảm biến: {name} (mã {id}).", "Sensor: {name} (id {id})."),
    "where": ("Vị trí: phường/xã {ward}, {city} – bản đồ: {link}", "Where: {ward} ward, {city} – map: {link}"),
    "since": ("Bắt đầu từ: {when} ({local_time}).", "Since: {when} ({local_time})."),
    "value": ("Giá trị gần nhất: {value}.", "Latest value: {value}."),
    "flapping": ("Tình trạng lặp lại {occurrences} lần (dao động bật/tắt).",
                 "The condition came back {occurrences} times (flapping)."),
    "incident": ("Thuộc sự cố chung: {incident_size} cảnh báo cùng khu vực và lĩnh vực.",
                 "Part of one incident: {incident_size} alerts in the same ward and domain."),
    "escalated": ("Đã chuyển lên cấp {level}.", "Escalated to level {level}."),
    "team": ("Đơn vị phụ trách: {team_name}.", "Responsible team: {team_name}."),
    "instruction": ('Tiếp nhận cảnh báo tại {url} hoặc bằng lệnh: ioc alerts ack {alert_id} --by "<họ tên>". '
                    "Nếu không tiếp nhận, cảnh báo sẽ được chuyển lên cấp trên.",
                    'Acknowledge at {url} or with: ioc alerts ack {alert_id} --by "<your name>". '
                    "If nobody acknowledges, the alert is escalated."),
}


@dataclass(frozen=True, slots=True)
class MessageText:
    lang: str                  # vi | en
    subject: str               # e-mail subject / chat title
    headline: str              # CAP headline (short)
    description: str           # what, where, since when
    instruction: str           # how to acknowledge


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "vi" else pair[1]


def kind_label(kind: str, lang: str) -> str:
    return _pick(_KIND.get(kind, _KIND["anomaly"]), lang)


def severity_label(severity: str, lang: str) -> str:
    return _pick(_SEVERITY[severity], lang)


def map_link(spec: SensorSpec, cap: CapSettings) -> str:
    return cap.map_url.format(lat=f"{spec.lat:.6f}", lon=f"{spec.lon:.6f}")


def render(*, alert_id: int, kind: str, severity: str, event: str, spec: SensorSpec, since: float,
           last_value: float, occurrences: int, level: int, team_name: str, lang: str, cap: CapSettings,
           city: CityProfile, incident_size: int = 0) -> MessageText:
    """The text of one alert event in ``lang`` (``vi`` or ``en``): ``city`` names the place and
    the local time it is given in."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGS)}")
    what = kind_label(kind, lang)
    sev = severity_label(severity, lang)
    ev = _pick(_EVENT.get(event, ("Cập nhật", "Update")), lang)
    domain = _pick(_DOMAIN.get(spec.domain, (spec.domain, spec.domain)), lang)
    value = "" if not math.isfinite(last_value) else f"{last_value:g} {spec.unit}".strip()
    fields = dict(ev=ev, what=what, sev=sev, domain=domain, name=spec.name, id=spec.id, ward=spec.ward,
                  link=map_link(spec, cap), when=city.iso(since).replace("T", " "), value=value,
                  city=city.text("name", lang), local_time=city.text("local_time", lang),
                  occurrences=occurrences, incident_size=incident_size, level=level, team_name=team_name,
                  alert_id=alert_id, url=f"{cap.dashboard_url}/alerts/{alert_id}")

    def text(key: str) -> str:
        return _pick(_TEXT[key], lang).format(**fields)

    shown = ("value", bool(value)), ("flapping", occurrences > 1), ("incident", bool(incident_size)), \
        ("escalated", bool(level))
    lines = [text(k) for k in ("head", "sensor", "where", "since")] + [text(k) for k, on in shown if on] \
        + [text("team")]
    headline = f"[{sev}] {what} – {spec.name} ({spec.ward})"[:160]
    return MessageText(lang, text("subject"), headline, "\n".join(lines), text("instruction"))
