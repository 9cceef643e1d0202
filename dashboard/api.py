"""The HTTP API beside the page, on the same Flask server.

* ``GET /api/health`` -- status, readings/s, sensors online, open alerts (JSON)
* ``GET /api/alerts`` -- the alert list (JSON), optional ``?status=open,acknowledged``; with
  alerting, each alert carries its team, escalation level, assignee, flaps,
  incident, silence and its deliveries ``[{channel, address, status, attempts,
  last_error}]`` (status ``sent`` | ``pending`` | ``failed`` | ``not_configured``)
* ``GET /api/alerts/<id>/cap`` -- the alert as OASIS CAP 1.2 XML
  (``application/cap+xml``; 404 JSON for an unknown id)
* ``GET /api/alarm-rate`` -- alerts per hour over the last hour and over the live run, in total
  and per team, the share of nuisance alerts (cleared by themselves within 10 min), the peak
  count in 10 minutes, and the ISA-18.2 / EEMUA 191 benchmarks beside them (JSON; ``null``
  figures before the pipeline goes live)
* ``GET /api/sensors/<id>`` -- one sensor: registry facts, status, last value and
  score, and its recent series (JSON; 404 for an unknown id)
* ``POST /api/alerts/<id>/acknowledge`` (JSON ``{"comment": …}``), ``…/assign``
  (``{"officer": <officer id>}``) and ``…/resolve`` (``{"comment": …}``, required): an action
  as the signed-in user or the token (:mod:`dashboard.signin`), checked against their role
  and the alert's team, recorded in the audit log; the alert after it (JSON)
* ``GET /api/audit`` -- the audit log, newest first (``?limit=``, at most 1000; admins only)
* ``GET /api/deadletters`` -- the newest messages a broker source could not use (at most 100 kept
  in memory; all are in the dead-letter file or topic): source, code, reason, received, payload
* ``GET /metrics`` -- Prometheus text format: ``ioc_readings_total``,
  ``ioc_deadletters_total``, ``ioc_alerts_open``, ``ioc_stage_latency_seconds``
  (a histogram per pipeline stage) and a few gauges

Every route needs a signed-in user or an API token (``GET /api/health`` and ``/metrics``
stay open on loopback); reading needs the ``view`` action, so a viewer or a read token may.
Times are ISO 8601 in the city's local time (``+07:00`` in Bắc Giang) and epoch seconds; NaN is ``null``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Response, g, jsonify, request

from dashboard.signin import asker, require
from ioc.alerting.store import audit_json
from dashboard.source import STATUSES, AlertInfo, Snapshot, SnapshotSource
from processing.alarm_rate import (FLOOD_COUNT, FLOOD_WINDOW_S, ISA_ACCEPTABLE_PER_H, ISA_MANAGEABLE_PER_H,
                                   NUISANCE_S, AlarmRate, rating)
from processing.alerts import STATES, Alert, AlertError
from processing.city import CityProfile, NoOffset, instant_of
from processing.errors import InputError
from processing.reasons import describe

__all__ = ["alarm_rate_json", "alert_json", "iso", "prometheus_text", "register_api"]


def iso(epoch_s: float | None, city: CityProfile) -> str | None:
    """``2026-03-02T14:05:31+07:00`` for an epoch instant in the city's local time (None for None/NaN)."""
    if epoch_s is None or not math.isfinite(epoch_s):
        return None
    return city.iso(epoch_s)


def _when(text: str | None, name: str, default: float) -> float:
    """An instant from a query parameter: ISO 8601 with an offset, or epoch seconds; ValueError naming it."""
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return instant_of(text)
    except NoOffset:
        raise ValueError(f"{name}: {text!r} needs an offset (+07:00 or Z)") from None
    except InputError:
        raise ValueError(f"{name}: an ISO 8601 time with an offset (2026-03-02T07:00:00+07:00) or epoch seconds, "
                         f"got {text!r}") from None


def _num(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def alert_json(snap: Snapshot, a: Alert, deliveries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One alert as JSON; with the snapshot's routing info for it and ``deliveries`` when given."""
    out = _alert_core(snap, a)
    info = snap.alert_info.get(a.id)
    if info is not None:
        out.update(_info_json(info))
    if deliveries is not None:
        out["deliveries"] = deliveries
    return out


def _info_json(info: AlertInfo) -> dict[str, Any]:
    return {"team": info.team, "team_name": info.team_name, "team_name_en": info.team_name_en,
            "escalation_level": info.level, "assignee": info.assignee or None,
            "assignee_name": info.assignee_name or None, "flaps": info.flaps, "flapping": info.flapping,
            "incident": info.incident, "silenced_by": info.silenced_by,
            "delivery_counts": {"sent": info.sent, "pending": info.pending, "failed": info.failed,
                                "not_configured": info.unconfigured}}


def _alert_core(snap: Snapshot, a: Alert) -> dict[str, Any]:
    spec = snap.registry.sensors[a.sensor]
    return {
        "id": a.id, "sensor": a.sensor_id, "name": spec.name, "ward": spec.ward, "domain": spec.domain,
        "kind": spec.kind, "reason": a.kind, "reasons": describe(a.reasons), "severity": a.severity,
        "state": a.state, "active": a.active, "opened_at": iso(a.opened_at, snap.city),
        "last_at": iso(a.last_at, snap.city), "cleared_at": iso(a.cleared_at, snap.city),
        "peak_score": _num(a.peak_score), "last_value": _num(a.last_value),
        "unit": spec.unit, "readings": a.readings, "occurrences": a.occurrences,
        "acknowledged_by": a.acknowledged_by, "acknowledged_at": iso(a.acknowledged_at, snap.city),
        "resolved_by": a.resolved_by, "resolved_at": iso(a.resolved_at, snap.city), "comment": a.comment,
        "age_s": _num(snap.sim_time - a.opened_at),
    }


def _rate_json(r: AlarmRate, names: dict[str, tuple[str, str]], city: CityProfile) -> dict[str, Any]:
    teams = []
    for j, team in enumerate(r.teams.tolist()):
        name, name_en = names.get(team, (team, team))
        teams.append({"team": team, "team_name": name, "team_name_en": name_en, "count": int(r.count[j]),
                      "per_hour": round(float(r.per_hour[j]), 3), "nuisance": int(r.nuisance[j]),
                      "nuisance_share": _num(r.nuisance_share[j]), "peak_10min": int(r.peak[j]),
                      "flood": bool(r.flood[j]), "rating": rating(float(r.per_hour[j]), bool(r.flood[j]))})
    return {"window_s": round(r.window_s, 3), "from": iso(r.now - r.window_s, city), "to": iso(r.now, city),
            "count": r.total_count, "per_hour": round(r.total_per_hour, 3), "nuisance": r.total_nuisance,
            "nuisance_share": _num(r.total_nuisance_share), "peak_10min": r.total_peak, "flood": r.total_flood,
            "teams": teams}


def alarm_rate_json(snap: Snapshot) -> dict[str, Any]:
    """The snapshot's alarm-rate figures (``last_hour``, ``run``; None before going live) with the
    ISA-18.2 / EEMUA 191 benchmarks (per operator; each team has one duty officer)."""
    names = {d.team: (d.name, d.name_en) for d in snap.on_duty}
    hour, run = snap.alarm_rate if snap.alarm_rate is not None else (None, None)
    return {
        "sim_time": iso(snap.sim_time, snap.city),
        "last_hour": _rate_json(hour, names, snap.city) if hour is not None else None,
        "run": _rate_json(run, names, snap.city) if run is not None else None,
        "benchmark": {"standard": "ISA-18.2 / EEMUA 191",
                      "acceptable_per_hour_per_operator": ISA_ACCEPTABLE_PER_H,
                      "manageable_per_hour_per_operator": ISA_MANAGEABLE_PER_H,
                      "flood_count": FLOOD_COUNT, "flood_window_s": FLOOD_WINDOW_S},
        "nuisance_s": NUISANCE_S,
    }


def _series(values: np.ndarray, digits: int = 6) -> list[float | None]:
    return [round(float(v), digits) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def prometheus_text(snap: Snapshot) -> str:
    """The Prometheus exposition (text format 0.0.4) of a snapshot's metrics."""
    m, h, k = snap.metrics, snap.health, snap.kpis
    lines = [
        "# HELP ioc_readings_total Readings accepted by the pipeline.",
        "# TYPE ioc_readings_total counter",
        f"ioc_readings_total {m.readings_total}",
        "# HELP ioc_deadletters_total Readings rejected as dead letters.",
        "# TYPE ioc_deadletters_total counter",
        f"ioc_deadletters_total {m.deadletters_total}",
        "# HELP ioc_batches_total Batches processed by the pipeline (readings or an idle tick).",
        "# TYPE ioc_batches_total counter",
        f"ioc_batches_total {m.batches_total}",
        "# HELP ioc_snapshot_builds_total Display snapshots built (when read after a change, not per batch).",
        "# TYPE ioc_snapshot_builds_total counter",
        f"ioc_snapshot_builds_total {m.snapshot_builds_total}",
        "# HELP ioc_deadletters_by_reason_total Dead letters by reason.",
        "# TYPE ioc_deadletters_by_reason_total counter",
    ]
    lines += [f'ioc_deadletters_by_reason_total{{reason="{r}"}} {n}' for r, n in sorted(m.deadletters_by_reason.items())]
    lines += [
        "# HELP ioc_alerts_open Alerts open and not yet acknowledged.",
        "# TYPE ioc_alerts_open gauge",
        f"ioc_alerts_open {h.alerts_open}",
        "# HELP ioc_alerts_active Alerts open or acknowledged.",
        "# TYPE ioc_alerts_active gauge",
        f"ioc_alerts_active {h.alerts_active}",
        "# HELP ioc_readings_per_second Readings per second over the recent window.",
        "# TYPE ioc_readings_per_second gauge",
        f"ioc_readings_per_second {h.readings_per_s:.6g}",
        "# HELP ioc_sensors_online Sensors reporting on schedule.",
        "# TYPE ioc_sensors_online gauge",
        f"ioc_sensors_online {k.online}",
        "# HELP ioc_sensors Sensors in the registry.",
        "# TYPE ioc_sensors gauge",
        f"ioc_sensors {k.total}",
        "# HELP ioc_stage_latency_seconds Time spent per pipeline stage and batch.",
        "# TYPE ioc_stage_latency_seconds histogram",
    ]
    for stage, hist in m.stages.items():
        cumulative = 0
        for bound, count in zip(hist.bounds, hist.counts):
            cumulative += count
            lines.append(f'ioc_stage_latency_seconds_bucket{{stage="{stage}",le="{bound:g}"}} {cumulative}')
        lines.append(f'ioc_stage_latency_seconds_bucket{{stage="{stage}",le="+Inf"}} {hist.count}')
        lines.append(f'ioc_stage_latency_seconds_sum{{stage="{stage}"}} {hist.total:.9g}')
        lines.append(f'ioc_stage_latency_seconds_count{{stage="{stage}"}} {hist.count}')
    return "\n".join(lines) + "\n"


def register_api(server: Flask, source: SnapshotSource) -> None:
    """Add the API routes to the Dash app's Flask server."""
    bp = Blueprint("ioc_api", __name__)

    @bp.get("/api/health")
    def health() -> Response:
        snap = source.snapshot()
        h, k = snap.health, snap.kpis
        return jsonify({
            "status": h.status, "readings_per_s": round(h.readings_per_s, 3), "readings_total": h.readings_total,
            "deadletters_total": h.deadletters_total, "sensors_online": k.online, "sensors_total": k.total,
            "sensors_stale": k.stale, "sensors_never_reported": k.never, "alerts_open": h.alerts_open,
            "alerts_active": h.alerts_active, "newest_reading_age_s": _num(h.newest_age_s),
            "sim_time": iso(snap.sim_time, snap.city), "speed": snap.speed, "seq": snap.seq,
            "alarms_per_hour": round(snap.alarm_rate[0].total_per_hour, 3) if snap.alarm_rate else None,
        })

    @bp.get("/api/alarm-rate")
    def alarm_rate() -> Response:
        return jsonify(alarm_rate_json(source.snapshot()))

    @bp.get("/api/alerts")
    def alerts() -> Response | tuple[Response, int]:
        snap = source.snapshot()
        wanted = [s.strip() for s in request.args.get("status", "").split(",") if s.strip()]
        unknown = [s for s in wanted if s not in STATES]
        if unknown:
            return jsonify({"error": f"unknown status {', '.join(unknown)}; use one of {', '.join(STATES)}"}), 400
        chosen = [a for a in snap.alerts if not wanted or a.state in wanted]
        chosen.sort(key=lambda a: -a.id)
        lookup = getattr(source, "deliveries", None)
        deliveries = lookup([a.id for a in chosen]) if lookup is not None and chosen else {}
        return jsonify([alert_json(snap, a, deliveries.get(a.id) if lookup is not None else None) for a in chosen])

    @bp.get("/api/alerts/<alert_id>/cap")
    def alert_cap(alert_id: str) -> Response | tuple[Response, int]:
        cap = getattr(source, "cap_xml", None)
        if not alert_id.isdigit() or cap is None:
            return jsonify({"error": f"no alert {alert_id!r}"}), 404
        try:
            xml = cap(int(alert_id))
        except (AlertError, KeyError):
            return jsonify({"error": f"no alert {alert_id}"}), 404
        return Response(xml, content_type="application/cap+xml; charset=utf-8",
                        headers={"Content-Disposition": f'inline; filename="ioc-alert-{int(alert_id)}.cap.xml"'})

    @bp.get("/api/sensors/<sensor_id>")
    def sensor(sensor_id: str) -> Response | tuple[Response, int]:
        snap = source.snapshot()
        i = snap.registry.index_of(sensor_id)
        if i < 0:
            return jsonify({"error": f"no sensor {sensor_id!r}"}), 404
        spec = snap.registry.sensors[i]
        recent = source.recent(i)
        return jsonify({
            "id": spec.id, "name": spec.name, "domain": spec.domain, "kind": spec.kind, "unit": spec.unit,
            "ward": spec.ward, "lon": spec.lon, "lat": spec.lat, "interval_s": spec.interval_s,
            "limit_low": spec.limit_low, "limit_high": spec.limit_high, "status": STATUSES[int(snap.status[i])],
            "last_value": _num(snap.last_value[i]), "last_at": iso(snap.last_ts[i], snap.city),
            "score": _num(snap.score[i]),
            "alerts": [alert_json(snap, a) for a in snap.alerts if a.sensor == i and a.state != "resolved"],
            "recent": {"ts": _series(recent["ts"], 3), "value": _series(recent["value"]),
                       "score": _series(recent["score"], 4), "baseline": _series(recent["baseline"]),
                       "scale": _series(recent["scale"])},
        })

    @bp.get("/api/sensors/<sensor_id>/history")
    def sensor_history(sensor_id: str) -> Response | tuple[Response, int]:
        """One sensor's readings and scores over ``from``..``to`` (ISO 8601 with an offset, or epoch
        seconds; default the last 24 h), as at most ``points`` buckets (default 500, at most 5000)."""
        snap = source.snapshot()
        if snap.registry.index_of(sensor_id) < 0:
            return jsonify({"error": f"no sensor {sensor_id!r}"}), 404
        try:
            t1 = _when(request.args.get("to"), "to", snap.sim_time)
            t0 = _when(request.args.get("from"), "from", t1 - 86400.0)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        points = request.args.get("points", "500")
        if not points.isdigit() or not 1 <= int(points) <= 5000:
            return jsonify({"error": f"points: a whole number between 1 and 5000, got {points!r}"}), 400
        if not t0 < t1:
            return jsonify({"error": "from must be before to"}), 400
        lookup = getattr(source, "history", None)
        try:
            if lookup is None:
                raise LookupError
            d = lookup(sensor_id, t0, t1, int(points))
        except LookupError:
            return jsonify({"error": "this server keeps no history (ioc run --history-days 0)"}), 404
        return jsonify({"sensor": sensor_id, "from": iso(t0, snap.city), "to": iso(t1, snap.city),
                        "points": len(d), "readings": int(d.count.sum()), "downsampled": bool((d.count > 1).any()),
                        "t": [iso(x, snap.city) for x in d.ts.tolist()], "value": _series(d.value),
                        "min": _series(d.low), "max": _series(d.high), "score": _series(d.score, 4),
                        "alert": d.alert.tolist(), "count": d.count.tolist()})

    def _act(alert_id: str, action: str) -> Response | tuple[Response, int]:
        snap = source.snapshot()
        known = alert_id.isdigit() and any(a.id == int(alert_id) for a in snap.alerts)
        if not known:
            return jsonify({"error": f"no alert {alert_id!r}"}), 404
        body = request.get_json(silent=True)
        if body is None and request.data:
            return jsonify({"error": "the body must be a JSON object"}), 400
        body = body or {}
        if not isinstance(body, dict):
            return jsonify({"error": "the body must be a JSON object"}), 400
        info = snap.alert_info.get(int(alert_id))
        who = require(action, info.team if info is not None else None)       # AccessError -> 403
        by = {"role": who.role, "address": asker().source}
        comment = body.get("comment", "")
        if not isinstance(comment, str) or len(comment) > 500:
            return jsonify({"error": "comment: a text of at most 500 characters"}), 400
        try:
            if action == "acknowledge":
                a = source.acknowledge(int(alert_id), who.name, comment.strip(), **by)
            elif action == "resolve":
                if not comment.strip():
                    return jsonify({"error": "comment: required to resolve an alert"}), 400
                a = source.resolve(int(alert_id), who.name, comment.strip(), **by)
            else:
                officer, assign = body.get("officer"), getattr(source, "assign", None)
                if assign is None:
                    return jsonify({"error": "this control room has no alerting roster to assign from"}), 404
                if not isinstance(officer, str) or not officer:
                    return jsonify({"error": "officer: the id of an officer of the roster is required"}), 400
                a = assign(int(alert_id), officer, who.name, **by)
        except AlertError as exc:
            return jsonify({"error": str(exc)}), 409
        return jsonify(alert_json(source.snapshot(), a))

    @bp.post("/api/alerts/<alert_id>/acknowledge")
    def acknowledge(alert_id: str) -> Response | tuple[Response, int]:
        return _act(alert_id, "acknowledge")

    @bp.post("/api/alerts/<alert_id>/assign")
    def assign(alert_id: str) -> Response | tuple[Response, int]:
        return _act(alert_id, "assign")

    @bp.post("/api/alerts/<alert_id>/resolve")
    def resolve(alert_id: str) -> Response | tuple[Response, int]:
        return _act(alert_id, "resolve")

    @bp.get("/api/audit")
    def audit() -> Response | tuple[Response, int]:
        require("audit")
        log = getattr(source, "audit_log", None)
        limit = request.args.get("limit", "200")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return jsonify({"error": f"limit must be a whole number from 1 to 1000, got {limit!r}"}), 400
        city = source.snapshot().city
        rows = log(int(limit)) if log is not None else []
        return jsonify([audit_json(e, city.iso) for e in rows])

    @bp.get("/api/deadletters")
    def dead_letters() -> Response:
        recent = getattr(source, "dead_letters", None)
        city = source.snapshot().city
        return jsonify([{**d, "received": iso(d["received"], city), "received_s": d["received"]}
                        for d in (recent() if recent is not None else [])])

    @bp.get("/metrics")
    def metrics() -> Response:
        return Response(prometheus_text(source.snapshot()), content_type="text/plain; version=0.0.4; charset=utf-8")

    @bp.before_request
    def _may_view() -> None:
        if request.method == "GET" and g.get("ioc_asker") is not None:
            require("view")

    server.register_blueprint(bp)
