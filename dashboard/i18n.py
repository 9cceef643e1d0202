"""Every string the control room shows, in Vietnamese (the default) and English.

:func:`t` looks a key up (``str.format`` fields filled from keyword
arguments); the formatting helpers write numbers, clock times and ages the way
each language does (Vietnamese: ``21,5`` with a decimal comma and ``1.234``
with a thousands dot).  Times are shown in the city's local time: the caller passes its
UTC offset (``Snapshot.city``, from ``config/<city>/city.toml``), and the city's own name
comes from there too.
"""
from __future__ import annotations

import math
import time
from typing import Mapping

from processing.kinds import KINDS

__all__ = ["DEFAULT_LANG", "LANGS", "STRINGS", "add_strings", "fmt_age", "fmt_clock", "fmt_num", "kind_label", "t"]

LANGS: tuple[str, ...] = ("vi", "en")
DEFAULT_LANG = "vi"

STRINGS: dict[str, dict[str, str]] = {
    # header
    "title": {"vi": "Trung tâm Điều hành Thông minh", "en": "Intelligent Operations Center"},
    "lang.vi": {"vi": "Tiếng Việt", "en": "Tiếng Việt"},
    "lang.en": {"vi": "English", "en": "English"},
    "sim_speed": {"vi": "mô phỏng ×{speed}", "en": "simulated ×{speed}"},
    # health bar
    "health.rate": {"vi": "Số đo/giây", "en": "Readings/s"},
    "health.dead": {"vi": "Bản tin lỗi", "en": "Dead letters"},
    "health.open": {"vi": "Chưa tiếp nhận", "en": "Unacknowledged"},
    "health.age": {"vi": "Số đo mới nhất", "en": "Newest reading"},
    "health.status.starting": {"vi": "Đang khởi động", "en": "Starting"},
    "health.status.warming_up": {"vi": "Đang nạp dữ liệu", "en": "Warming up"},
    "health.status.ok": {"vi": "Hệ thống ổn định", "en": "System healthy"},
    "health.status.degraded": {"vi": "Hệ thống suy giảm", "en": "System degraded"},
    "health.status.history": {"vi": "Xem lại quá khứ", "en": "Viewing the past"},
    "time.live": {"vi": "Trực tiếp", "en": "Live"},
    "detail.recent": {"vi": "Gần đây", "en": "Recent"},
    "time.past": {"vi": "Đang xem lúc", "en": "Showing"},
    "time.replay": {"vi": "Phát lại sự cố", "en": "Replay incident"},
    "time.replay.placeholder": {"vi": "Chọn cảnh báo để phát lại…", "en": "Pick an alert to replay…"},
    "time.speed": {"vi": "Tốc độ", "en": "Speed"},
    # KPI tiles
    "kpi.traffic": {"vi": "Giao thông", "en": "Traffic"},
    "kpi.traffic.speed": {"vi": "tốc độ trung bình", "en": "average speed"},
    "kpi.traffic.congested": {"vi": "{n}/{total} nút giao ùn tắc", "en": "{n}/{total} intersections congested"},
    "kpi.air": {"vi": "Không khí (VN_AQI)", "en": "Air quality (VN_AQI)"},
    "kpi.air.detail": {"vi": "giờ {hour} · {station}", "en": "hour {hour} · {station}"},
    "kpi.flood": {"vi": "Mực nước sông", "en": "River level"},
    "kpi.flood.stage0": {"vi": "dưới báo động I ({l1} m)", "en": "below alert level I ({l1} m)"},
    "kpi.flood.stage1": {"vi": "vượt báo động I", "en": "above alert level I"},
    "kpi.flood.stage2": {"vi": "vượt báo động II", "en": "above alert level II"},
    "kpi.flood.stage3": {"vi": "vượt báo động III", "en": "above alert level III"},
    "kpi.utility": {"vi": "Áp lực nước & điện", "en": "Water pressure & power"},
    "kpi.utility.pressure": {"vi": "thấp nhất", "en": "lowest"},
    "kpi.utility.feeder": {"vi": "Điện {total} MW · tải cao nhất {pct} %", "en": "Power {total} MW · peak load {pct} %"},
    "kpi.health": {"vi": "Cảm biến", "en": "Sensors"},
    "kpi.health.online": {"vi": "trực tuyến", "en": "online"},
    "kpi.health.detail": {"vi": "{online}/{total} · {stale} mất tín hiệu", "en": "{online}/{total} · {stale} stale"},
    "kpi.alarms": {"vi": "Tần suất cảnh báo", "en": "Alarm rate"},
    "kpi.alarms.unit": {"vi": "/giờ", "en": "/h"},
    "kpi.alarms.detail": {"vi": "ISA-18.2: ≤{limit}/giờ mỗi trực ban · tự hết trong 10 phút: {share}",
                          "en": "ISA-18.2: up to {limit}/h per operator · cleared within 10 min: {share}"},
    "kpi.alarms.teams": {"vi": "cả ca {run}/giờ", "en": "whole run {run}/h"},
    "kpi.alarms.title": {"vi": "{n} cảnh báo trong {min} phút qua · đỉnh {peak} trong 10 phút (≥{flood} là ngập)",
                         "en": "{n} alerts in the last {min} min · peak {peak} in 10 min ({flood} or more is a flood)"},
    "rating.acceptable": {"vi": "Đạt chuẩn", "en": "Acceptable"},
    "rating.manageable": {"vi": "Chịu được", "en": "Manageable"},
    "rating.overloaded": {"vi": "Quá tải", "en": "Overloaded"},
    "rating.flood": {"vi": "Ngập cảnh báo", "en": "Flood"},
    "no_data": {"vi": "chưa có dữ liệu", "en": "no data yet"},
    # map
    "map.title": {"vi": "Bản đồ cảm biến", "en": "Sensor map"},
    "status.normal": {"vi": "Bình thường", "en": "Normal"},
    "status.warning": {"vi": "Cần chú ý", "en": "Warning"},
    "status.alert": {"vi": "Báo động", "en": "Alert"},
    "status.offline": {"vi": "Mất kết nối", "en": "Offline"},
    "map.ward": {"vi": "Đơn vị hành chính", "en": "Ward"},
    # alert feed
    "feed.title": {"vi": "Cảnh báo", "en": "Alerts"},
    "feed.empty": {"vi": "Không có cảnh báo đang mở", "en": "No active alerts"},
    "feed.more": {"vi": "+{n} cảnh báo khác", "en": "+{n} more alerts"},
    "feed.ack": {"vi": "Tiếp nhận", "en": "Acknowledge"},
    "feed.resolve": {"vi": "Đã xử lý", "en": "Resolve"},
    "feed.view": {"vi": "Xem", "en": "View"},
    "feed.acked_by": {"vi": "{who} đã tiếp nhận", "en": "acknowledged by {who}"},
    "feed.resolved_by": {"vi": "{who} đã xử lý", "en": "resolved by {who}"},
    "feed.cleared": {"vi": "đã trở lại bình thường", "en": "back to normal"},
    "feed.repeat": {"vi": "lặp lại {n} lần", "en": "{n} times"},
    # operator actions with a comment, assigning, who is on duty, delivery status
    "feed.comment": {"vi": "Ghi chú", "en": "Comment"},
    "feed.comment.placeholder": {"vi": "Ghi chú xử lý (bắt buộc khi đóng cảnh báo)",
                                 "en": "Comment (required to resolve)"},
    "feed.assign": {"vi": "Giao việc", "en": "Assign"},
    "feed.assign.placeholder": {"vi": "Giao cho cán bộ…", "en": "Assign to officer…"},
    "feed.need_comment": {"vi": "Nhập ghi chú xử lý trước khi đóng", "en": "Enter a comment before resolving"},
    "feed.need_officer": {"vi": "Chọn cán bộ được giao trước", "en": "Choose the officer to assign first"},
    "feed.assigned_to": {"vi": "giao cho {who}", "en": "assigned to {who}"},
    "feed.level": {"vi": "leo thang cấp {n}", "en": "escalated to level {n}"},
    "feed.flapping": {"vi": "chập chờn {n} lần", "en": "flapping {n} times"},
    "feed.incident": {"vi": "sự cố #{n}", "en": "incident #{n}"},
    "feed.silenced": {"vi": "đang bảo trì, không gửi thông báo", "en": "maintenance window: not notified"},
    "duty.title": {"vi": "Đang trực", "en": "On duty"},
    # who is signed in (processing.access roles)
    "role.viewer": {"vi": "Xem", "en": "Viewer"},
    "role.operator": {"vi": "Điều hành viên", "en": "Operator"},
    "role.duty": {"vi": "Trực ban", "en": "Duty officer"},
    "role.admin": {"vi": "Quản trị", "en": "Admin"},
    "audit.link": {"vi": "Nhật ký", "en": "Audit log"},
    "sign_out": {"vi": "Đăng xuất", "en": "Sign out"},
    "duty.nobody": {"vi": "không có ai trong ca", "en": "nobody on shift"},
    "deliv.title": {"vi": "Thông báo", "en": "Notifications"},
    "deliv.none": {"vi": "chưa gửi thông báo", "en": "none sent"},
    "deliv.sent": {"vi": "{n} đã gửi", "en": "{n} sent"},
    "deliv.pending": {"vi": "{n} đang chờ", "en": "{n} pending"},
    "deliv.failed": {"vi": "{n} lỗi", "en": "{n} failed"},
    "deliv.unconfigured": {"vi": "{n} chưa cấu hình kênh", "en": "{n} no channel set up"},
    "severity.critical": {"vi": "Nghiêm trọng", "en": "Critical"},
    "severity.warning": {"vi": "Cảnh báo", "en": "Warning"},
    "severity.info": {"vi": "Thông tin", "en": "Info"},
    "state.open": {"vi": "Mới", "en": "New"},
    "state.acknowledged": {"vi": "Đã tiếp nhận", "en": "Acknowledged"},
    "state.resolved": {"vi": "Đã xử lý", "en": "Resolved"},
    "reason.limit": {"vi": "Vượt ngưỡng giới hạn", "en": "Limit exceeded"},
    "reason.deviation": {"vi": "Lệch xa đường nền", "en": "Far from baseline"},
    "reason.seasonal": {"vi": "Bất thường so với giờ này", "en": "Unusual for this time of day"},
    "reason.rate": {"vi": "Thay đổi đột ngột", "en": "Sudden change"},
    "reason.stuck": {"vi": "Giá trị đứng yên", "en": "Stuck value"},
    "reason.gap": {"vi": "Gián đoạn dữ liệu", "en": "Data gap"},
    "reason.silent": {"vi": "Mất tín hiệu", "en": "Sensor silent"},
    "reason.invalid": {"vi": "Giá trị không hợp lệ", "en": "Invalid value"},
    "reason.late": {"vi": "Dữ liệu đến muộn", "en": "Late data"},
    "reason.anomaly": {"vi": "Bất thường", "en": "Anomaly"},
    # drill-down
    "detail.close": {"vi": "Đóng", "en": "Close"},
    "detail.value": {"vi": "Giá trị đo", "en": "Reading"},
    "detail.baseline": {"vi": "Đường nền", "en": "Baseline"},
    "detail.band": {"vi": "Dải bình thường (±{k}σ)", "en": "Normal band (±{k}σ)"},
    "detail.flagged": {"vi": "Điểm bất thường", "en": "Flagged"},
    "detail.limit": {"vi": "Ngưỡng", "en": "Limit"},
    "detail.last": {"vi": "hiện tại {value} {unit} · điểm bất thường {score}",
                    "en": "now {value} {unit} · anomaly score {score}"},
    # ages
    "age.now": {"vi": "vừa xong", "en": "just now"},
    "age.s": {"vi": "{n} giây", "en": "{n} s"},
    "age.min": {"vi": "{n} phút", "en": "{n} min"},
    "age.h": {"vi": "{n} giờ", "en": "{n} h"},
    "age.d": {"vi": "{n} ngày", "en": "{n} d"},
    "age.ago": {"vi": "{age} trước", "en": "{age} ago"},
}


def _lang(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT_LANG


def add_strings(extra: Mapping[str, Mapping[str, str]]) -> None:
    """Add texts that come from configuration (the names of the city's map layers), each in vi and en."""
    for key, texts in extra.items():
        STRINGS[key] = {"vi": str(texts["vi"]), "en": str(texts["en"])}


def t(key: str, lang: str | None = DEFAULT_LANG, **fields: object) -> str:
    """The text of ``key`` in ``lang`` (Vietnamese for an unknown language); KeyError for an unknown key."""
    text = STRINGS[key][_lang(lang)]
    return text.format(**fields) if fields else text


def kind_label(kind: str, lang: str | None = DEFAULT_LANG) -> str:
    """A sensor kind's name (from :data:`processing.kinds.KINDS`)."""
    spec = KINDS.get(kind)
    if spec is None:
        return kind
    return spec.label_en if _lang(lang) == "en" else spec.label_vi


def fmt_num(x: float | None, lang: str | None = DEFAULT_LANG, digits: int = 1) -> str:
    """``1234.5`` -> ``1.234,5`` (vi) / ``1,234.5`` (en); an en dash for a missing value."""
    if x is None or not math.isfinite(x):
        return "–"
    text = f"{x:,.{digits}f}"
    if _lang(lang) == "vi":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def fmt_clock(epoch_s: float, *, offset_s: int, seconds: bool = True, date: bool = False) -> str:
    """Local wall time (UTC + ``offset_s``) of an epoch instant: ``14:05:31`` or ``14:05 02/03/2026``."""
    if epoch_s is None or not math.isfinite(epoch_s):
        return "–"
    tm = time.gmtime(epoch_s + offset_s)
    text = time.strftime("%H:%M:%S" if seconds else "%H:%M", tm)
    return f"{text} {time.strftime('%d/%m/%Y', tm)}" if date else text


def fmt_age(seconds: float | None, lang: str | None = DEFAULT_LANG) -> str:
    """A short age: ``vừa xong``, ``45 giây``, ``12 phút``, ``3 giờ``, ``2 ngày`` (vi)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0.0, float(seconds))
    if s < 5:
        return t("age.now", lang)
    if s < 60:
        return t("age.s", lang, n=int(s))
    if s < 3600:
        return t("age.min", lang, n=int(s // 60))
    if s < 86400:
        return t("age.h", lang, n=int(s // 3600))
    return t("age.d", lang, n=int(s // 86400))
