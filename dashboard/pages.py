"""Two plain pages beside the control room, rendered here: ``GET /audit`` (the audit log, for
admins) and ``GET /deadletters`` (the newest messages a broker source could not use, and why,
for anyone signed in: the engineers' first stop when a sensor stays grey).

Every cell is escaped (user names, comments, addresses, and the strings of rejected payloads
are shown as text); no script, so they run under the same Content-Security-Policy as the
rest.  The same rows are ``GET /api/audit`` / ``GET /api/deadletters`` (JSON) and
``ioc audit list``.
"""
from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from flask import Flask, Response, request

from dashboard.signin import require
from dashboard.source import SnapshotSource
from ioc.alerting.store import audit_json

__all__ = ["register_pages", "table_page"]

_AUDIT = (("recorded_at", "Thời điểm / When"), ("at", "Giờ hệ thống / Pipeline time"),
          ("actor", "Người thực hiện / Who"), ("role", "Vai trò / Role"), ("address", "Địa chỉ / From"),
          ("action", "Thao tác / Action"), ("alert_id", "Cảnh báo / Alert"), ("detail", "Nội dung / Detail"))
_DEAD = (("received", "Nhận lúc / Received"), ("source", "Nguồn / Source"), ("code", "Loại / Code"),
         ("reason", "Lý do / Reason"), ("payload", "Nội dung / Payload"))


def table_page(title: str, note: str, table_id: str, columns: Sequence[tuple[str, str]],
               rows: Sequence[Mapping[str, Any]]) -> Response:
    """An HTML page of one table; every string escaped."""
    esc = html.escape
    head = "".join(f"<th>{esc(label)}</th>" for _, label in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc('' if r.get(k) is None else str(r[k]))}</td>" for k, _ in columns)
                   + "</tr>" for r in rows)
    page = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>{esc(title)} — City IOC</title>
<style>
body{{margin:0;padding:1.5rem 2rem;background:#0b1220;color:#e6edf7;font:15px/1.45 system-ui,sans-serif}}
a{{color:#8ab4ff}} table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #22314b;vertical-align:top}} th{{color:#9fb0c8;font-weight:600}}
td:last-child{{white-space:pre-wrap;word-break:break-word}}
</style></head><body>
<p><a href="/">← Trung tâm điều hành / Control room</a></p>
<h1>{esc(title)}</h1>
<p>{esc(note)}</p>
<table id="{esc(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>"""
    return Response(page, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


def _limit(default: int, most: int) -> int:
    text = request.args.get("limit", str(default))
    return int(text) if text.isdigit() and 1 <= int(text) <= most else default


def register_pages(server: Flask, source: SnapshotSource) -> None:
    """Add ``GET /audit`` and ``GET /deadletters`` to the dashboard's server."""

    @server.get("/audit")
    def _audit() -> Response:
        require("audit")
        log = getattr(source, "audit_log", None)
        city = source.snapshot().city
        rows = [audit_json(e, city.iso) for e in (log(_limit(500, 5000)) if log is not None else [])]
        return table_page("Nhật ký thao tác / Audit log", f"{len(rows)} thao tác gần nhất / newest actions first",
                          "audit-table", _AUDIT, rows)

    @server.get("/deadletters")
    def _dead_letters() -> Response:
        require("view")
        recent = getattr(source, "dead_letters", None)
        city = source.snapshot().city
        rows = [{**d, "received": city.iso(d["received"])} for d in (recent() if recent is not None else [])]
        return table_page("Thư lỗi / Dead letters",
                          f"{len(rows)} tin gần nhất không dùng được / newest messages that could not be used "
                          "(all of them are kept in the dead-letter file or topic)", "dead-table", _DEAD, rows)
