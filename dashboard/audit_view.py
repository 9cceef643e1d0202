"""The audit log on the dashboard, for admins: ``GET /audit``, a plain page of the newest actions.

Rendered here with every string escaped (names, comments, addresses are shown as text);
no script, so it runs under the same Content-Security-Policy as the rest.  Anyone but an
admin gets 403 (:func:`dashboard.signin.require`).  The same rows are ``GET /api/audit``
(JSON) and ``ioc audit list``.
"""
from __future__ import annotations

import html

from flask import Flask, Response, request

from dashboard.signin import require
from dashboard.source import SnapshotSource
from ioc.alerting.store import audit_json

__all__ = ["register_audit_view"]

_COLUMNS = (("recorded_at", "Thời điểm / When"), ("at", "Giờ hệ thống / Pipeline time"),
            ("actor", "Người thực hiện / Who"), ("role", "Vai trò / Role"), ("address", "Địa chỉ / From"),
            ("action", "Thao tác / Action"), ("alert_id", "Cảnh báo / Alert"), ("detail", "Nội dung / Detail"))


def register_audit_view(server: Flask, source: SnapshotSource) -> None:
    """Add ``GET /audit`` to the dashboard's server."""

    @server.get("/audit")
    def _audit() -> Response:
        require("audit")
        limit = request.args.get("limit", "500")
        n = int(limit) if limit.isdigit() and 1 <= int(limit) <= 5000 else 500
        log = getattr(source, "audit_log", None)
        city = source.snapshot().city
        rows = [audit_json(e, city.iso) for e in (log(n) if log is not None else [])]
        esc = html.escape
        head = "".join(f"<th>{esc(label)}</th>" for _, label in _COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{esc('' if r[k] is None else str(r[k]))}</td>" for k, _ in _COLUMNS)
                       + "</tr>" for r in rows)
        page = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Nhật ký thao tác — City IOC</title>
<style>
body{{margin:0;padding:1.5rem 2rem;background:#0b1220;color:#e6edf7;font:15px/1.45 system-ui,sans-serif}}
a{{color:#8ab4ff}} table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #22314b;vertical-align:top}} th{{color:#9fb0c8;font-weight:600}}
td:last-child{{white-space:pre-wrap;word-break:break-word}}
</style></head><body>
<p><a href="/">← Trung tâm điều hành / Control room</a></p>
<h1>Nhật ký thao tác / Audit log</h1>
<p>{len(rows)} thao tác gần nhất / newest actions first</p>
<table id="audit-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>"""
        return Response(page, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
