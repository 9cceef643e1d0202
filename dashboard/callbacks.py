"""Dash callbacks: the live refresh, language, alert actions, selection and the drill-down.

The refresh (every ``tick``) sends only what changed since the snapshot the
browser last rendered, which the browser tells us in the ``view-state`` store
(run id, snapshot seq, feed rows and revs, hashes of tiles and health texts):

* the map as a ``Patch`` of the changed markers (:func:`dashboard.figures.map_patch`);
* the alert feed as a ``Patch`` of inserted, removed and changed rows, found by
  diffing the shown ``(id, rev)`` list against the new one (the rev also covers
  the row's routing and delivery state, :func:`dashboard.layout.row_rev`);
* the on-duty officers only when the roster changed;
* each KPI tile and health text only if its content changed.

Nothing is kept on the server per browser and no module global is written, so
any number of workers can serve the page.  Ages in the feed tick in the
browser (a clientside callback), so they cost no server bytes.
"""
from __future__ import annotations

import difflib
import math
import time
from dataclasses import astuple
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from dash import ALL, MATCH, Dash, Input, Output, Patch, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.figures import detail_extension, detail_figure, layer_entries, map_figure, map_patch
from dashboard.i18n import LANGS, fmt_num, kind_label, t
from dashboard.layout import (HEALTH_IDS, KPI_IDS, alert_row, duty_items, feed_entries, feed_footer, feed_rows,
                              feed_state, health_class, health_texts, initial_state, kpi_tiles, legend_items,
                              render_tile, row_rev, signed_in, stable_hash, tile_class)
from dashboard.signin import asker, principal, require
from dashboard.source import STATUSES, Snapshot, SnapshotSource
from processing.access import Principal
from processing.alerts import Alert, AlertError
from processing.layers import Layer

__all__ = ["feed_patch", "refresh", "register_callbacks"]

_AGE_JS = """
function(now, lang, words, ids) {
    if (!ids || !ids.length) { return []; }
    var w = (words && words[lang]) || (words && words.vi);
    function fmt(s) {
        s = Math.max(0, s);
        if (s < 5) { return w.now; }
        if (s < 60) { return w.s.replace('{n}', Math.floor(s)); }
        if (s < 3600) { return w.min.replace('{n}', Math.floor(s / 60)); }
        if (s < 86400) { return w.h.replace('{n}', Math.floor(s / 3600)); }
        return w.d.replace('{n}', Math.floor(s / 86400));
    }
    return ids.map(function(id) { return fmt(now - id.t); });
}
"""


def feed_patch(snap: Snapshot, lang: str, shown: list[list[int]], who: Principal) -> tuple[Patch | None, list[list[int]]]:
    """Patch turning the rows ``shown`` ([id, rev] pairs, in order) into the current feed, or None."""
    entries, _ = feed_entries(snap)
    new = feed_state(snap, entries)
    if new == shown:
        return None, new
    patch = Patch()
    if not entries or not shown:                    # from or to the "no alerts" placeholder
        rows = feed_rows(snap, lang, who)
        patch.clear()
        patch.extend(rows)
        return patch, new
    old_ids = [r[0] for r in shown]
    new_ids = [r[0] for r in new]
    old_rev = {r[0]: r[1] for r in shown}
    ops = difflib.SequenceMatcher(a=old_ids, b=new_ids, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):       # from the end, so earlier indices stay valid
        if tag == "equal":
            for k in range(i2 - i1 - 1, -1, -1):
                a = entries[j1 + k]
                if old_rev.get(a.id) != row_rev(snap, a):
                    patch[i1 + k] = alert_row(snap, a, lang, who)
            continue
        for k in range(i2 - 1, i1 - 1, -1):
            del patch[k]
        for k in range(j1, j2):
            patch.insert(i1 + (k - j1), alert_row(snap, entries[k], lang, who))
    return patch, new


#: the drill-down's ranges read from the history (the live window is "recent")
DETAIL_RANGES: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


def instant(view_at: float | None, replay: Mapping[str, Any] | None, wall: float) -> float | None:
    """The past instant the display shows (None: live): a replay's, moving at its speed from when it
    started and stopping at its end, else the one picked on the time slider.

    >>> instant(None, {"t0": 100.0, "t1": 200.0, "speed": 10.0, "wall": 1000.0}, 1005.0)
    150.0
    >>> instant(120.0, None, 0.0), instant(None, None, 0.0)
    (120.0, None)
    """
    if replay:
        t = float(replay["t0"]) + (wall - float(replay["wall"])) * float(replay["speed"])
        return min(t, float(replay["t1"]))
    return None if view_at is None else float(view_at)


def _past_or_live(source: SnapshotSource, at: float | None) -> tuple[float | None, Snapshot]:
    """The snapshot of instant ``at``, or the live one (and None) when there is no past to show:
    no instant asked, or a source that keeps no history."""
    past = getattr(source, "snapshot_at", None)
    if at is not None and past is not None:
        try:
            return at, past(at)
        except LookupError:
            pass
    return None, source.snapshot()


def _local(snap: Snapshot, ts: float) -> str:
    """``2026-03-02 10:04:00``: an instant in the city's local time."""
    return snap.city.iso(ts)[:19].replace("T", " ")


def _stored_alert(source: SnapshotSource, alert_id: int) -> Alert | None:
    lookup = getattr(source, "stored_alerts", None)
    for a in (lookup(1000) if lookup is not None else source.snapshot().alerts):
        if a.id == alert_id:
            return a
    return None


def refresh(snap: Snapshot, lang: str, state: Mapping[str, Any] | None, wards: Mapping[str, Any] | None,
            who: Principal, map_style: Any = None, layers: Sequence[Layer] = (),
            visible: Iterable[str] | None = None) -> dict[str, Any]:
    """The outputs of one refresh, as a dict of output key -> value (``no_update`` where unchanged).

    Keys: ``map``, ``feed``, ``feed_more``, ``feed_count``, each KPI id, ``<id>:class`` for tile
    classes, each health text id, ``status_class``, ``legend``, ``duty``, ``clock``, ``state``.
    """
    out: dict[str, Any] = {}
    lang = lang if lang in LANGS else "vi"
    full = (not state or state.get("run") != snap.run_id or state.get("lang") != lang
            or int(state.get("seq", 0)) > snap.seq)
    if not full and int(state["seq"]) == snap.seq:           # nothing published since the last refresh
        return out
    tiles = kpi_tiles(snap, lang)
    health = health_texts(snap, lang)
    if full:
        new_state = initial_state(snap, lang, tiles, health)
        out["map"] = map_figure(snap, wards, lang, style=map_style, layers=layers, visible=visible)
        out["feed"] = feed_rows(snap, lang, who)
        for k in KPI_IDS:
            out[k] = render_tile(tiles[k])
            out[f"{k}:class"] = tile_class(tiles[k])
        out.update(health)
        out["legend"] = legend_items(snap, lang)
        out["duty"] = duty_items(snap, lang)
    else:
        new_state = dict(state)
        new_state["seq"] = snap.seq
        patch, overlay = map_patch(snap, int(state["seq"]), state.get("overlay"))
        if patch is not None:
            out["map"] = patch
        new_state["overlay"] = overlay
        fpatch, rows = feed_patch(snap, lang, state.get("feed") or [], who)
        if fpatch is not None:
            out["feed"] = fpatch
        new_state["feed"] = rows
        hashes = dict(state.get("kpi") or {})
        for k in KPI_IDS:
            h = stable_hash(astuple(tiles[k]))
            if hashes.get(k) != h:
                out[k] = render_tile(tiles[k])
                out[f"{k}:class"] = tile_class(tiles[k])
                hashes[k] = h
        new_state["kpi"] = hashes
        hh = dict(state.get("health") or {})
        for k, text in health.items():
            h = stable_hash(text)
            if hh.get(k) != h:
                out[k] = text
                hh[k] = h
        new_state["health"] = hh
        counts = list(snap.status_counts())
        if counts != state.get("legend"):
            out["legend"] = legend_items(snap, lang)
        new_state["legend"] = counts
        duty = stable_hash(snap.on_duty)
        if duty != state.get("duty"):
            out["duty"] = duty_items(snap, lang)
        new_state["duty"] = duty
    if "h-status" in out:
        out["status_class"] = health_class(snap)
    small = {"feed_more": feed_footer(snap, lang), "feed_count": str(snap.health.alerts_active)}
    seen = dict(new_state.get("small") or {}) if not full else {}
    for k, text in small.items():
        if seen.get(k) != text:
            out[k] = text
            seen[k] = text
    new_state["small"] = seen
    out["clock"] = snap.sim_time
    out["state"] = new_state
    return out


#: the feed's buttons and the action each asks for (processing.access)
_ACTIONS = {"alert-ack": "acknowledge", "alert-assign": "assign", "alert-resolve": "resolve"}


def register_callbacks(app: Dash, source: SnapshotSource, wards: Mapping[str, Any] | None, *,
                       map_style: Any = None, detail_window: int = 128, layers: Sequence[Layer] = ()) -> None:
    """Wire the control room's callbacks to ``source`` (``layers``: the city's GIS layers on the map)."""
    keys = (["map", "feed", "feed_more", "feed_count"] + list(KPI_IDS) + [f"{k}:class" for k in KPI_IDS]
            + list(HEALTH_IDS) + ["status_class", "legend", "duty", "clock", "state"])
    outputs = ([Output("sensor-map", "figure"), Output("alert-feed", "children"), Output("feed-more", "children"),
                Output("feed-count", "children")]
               + [Output(k, "children") for k in KPI_IDS] + [Output(k, "className") for k in KPI_IDS]
               + [Output(k, "children") for k in HEALTH_IDS]
               + [Output("h-status-box", "className"), Output("map-legend", "children"),
                  Output("on-duty", "children"), Output("sim-clock", "data"), Output("view-state", "data")])

    @app.callback(outputs + [Output("time-label", "children"), Output("time-live", "className")],
                  Input("tick", "n_intervals"), Input("lang-switch", "value"), Input("view-at", "data"),
                  State("view-state", "data"), State("layer-switch", "value"), State("replay", "data"))
    def _refresh(_n: int, lang: str, view_at: float | None, state: dict[str, Any] | None,
                 visible: list[str] | None, replay: Mapping[str, Any] | None) -> list[Any]:
        at, snap = _past_or_live(source, instant(view_at, replay, time.time()))
        # the past: as it stood then, read-only (no action on today's alerts from there)
        who = principal() if at is None else Principal(principal().name, "viewer")
        out = refresh(snap, lang, state, wards, who, map_style, layers, visible)
        if not out:
            raise PreventUpdate   # nothing new was published: send nothing at all
        label = t("time.live", lang) if at is None else f"{t('time.past', lang)} {_local(snap, at)}"
        return [out.get(k, no_update) for k in keys] + [label, "btn btn-live" + (" is-live" if at is None else "")]

    @app.callback(Output("time-slider", "min"), Output("time-slider", "max"), Output("time-slider", "marks"),
                  Output("time-slider", "value"),
                  Input("time-tick", "n_intervals"), State("view-at", "data"), State("replay", "data"))
    def _time_range(_n: int, view_at: float | None, replay: Mapping[str, Any] | None) -> tuple[Any, ...]:
        extent = getattr(source, "history_extent", lambda: None)()
        if extent is None:
            raise PreventUpdate
        lo, hi = int(extent[0] // 60 * 60), int(extent[1] // 60 * 60 + 60)
        snap = source.snapshot()
        step = max(3600, (hi - lo) // 6 // 3600 * 3600)
        marks = {k: _local(snap, k)[11:16] for k in range((lo // 3600 + 1) * 3600, hi, step)}
        return lo, hi, marks, (hi if view_at is None and not replay else no_update)     # live: at the right end

    @app.callback(Output("view-at", "data"), Output("replay", "data"),
                  Input("time-slider", "value"), Input("time-live", "n_clicks"), Input("replay-alert", "value"),
                  State("replay-speed", "value"), State("time-slider", "max"), State("replay", "data"),
                  prevent_initial_call=True)
    def _travel(value: float | None, _live: int | None, alert_id: int | None, speed: float | None,
                top: float | None, replay: Mapping[str, Any] | None) -> tuple[Any, Any]:
        """The slider picks a past instant (its right end is live); Live comes back; an alert picked
        for replay plays its hour, from 30 min before it opened, at the chosen speed."""
        trigger = ctx.triggered_id
        if trigger == "time-live":
            return None, None
        if trigger == "replay-alert":
            if alert_id is None:
                return no_update, None
            a = _stored_alert(source, int(alert_id))
            if a is None:
                raise PreventUpdate
            return None, {"t0": a.opened_at - 1800.0, "t1": a.opened_at + 1800.0, "speed": float(speed or 60),
                          "wall": time.time(), "alert": int(alert_id)}
        if value is None or top is None or value >= top - 90:      # the right end: live (a replay goes on)
            return None, (no_update if replay else None)
        return float(value), None

    @app.callback(Output("replay-alert", "options"), Input("time-tick", "n_intervals"), State("lang-switch", "value"))
    def _replayable(_n: int, lang: str) -> list[dict[str, Any]]:
        snap = source.snapshot()
        lookup = getattr(source, "stored_alerts", None)
        alerts = lookup(200) if lookup is not None else list(snap.alerts)
        return [{"label": f"#{a.id} {_local(snap, a.opened_at)[5:16]} · {kind_label(snap.registry.sensors[a.sensor].kind, lang)}"
                          f" · {snap.registry.sensors[a.sensor].ward}", "value": a.id}
                for a in sorted(alerts, key=lambda a: -a.opened_at) if a.kind != "silent"]

    slots = layer_entries(layers)[1]
    base = len(map_figure(source.snapshot(), wards, "vi", style=map_style).layout.map.layers)  # backdrop, tiles, wards

    @app.callback(Output("sensor-map", "figure", allow_duplicate=True), Input("layer-switch", "value"),
                  prevent_initial_call=True)
    def _switch_layers(visible: list[str] | None) -> Patch:
        """Show the layers ticked in the switcher, hide the others (only their visibility is sent)."""
        on = set(visible or ())
        patch = Patch()
        for lid, idx in slots.items():
            for k in idx:
                patch["layout"]["map"]["layers"][base + k]["visible"] = lid in on
        return patch

    @app.callback(Output({"type": "i18n", "key": ALL}, "children"),
                  Output("operator-comment", "placeholder"), Output("assign-officer", "placeholder"),
                  Output("replay-alert", "placeholder"),
                  Output("ioc-root", "lang"), Output("brand-city", "children"), Output("signed-in", "children"),
                  Input("lang-switch", "value"), State({"type": "i18n", "key": ALL}, "id"),
                  prevent_initial_call=True)
    def _language(lang: str, ids: list[dict[str, str]]) -> tuple[list[str], str, str, str, str, str, Any]:
        lang = lang if lang in LANGS else "vi"
        me = asker()
        return ([t(i["key"], lang) for i in ids], t("feed.comment.placeholder", lang),
                t("feed.assign.placeholder", lang), t("time.replay.placeholder", lang), lang,
                source.snapshot().city.text("title", lang),
                signed_in(me.who, me.session.csrf if me.session else None, lang).children)

    def act(action: str, comment: str | None, officer: str | None, lang: str) -> str:
        trigger = ctx.triggered_id
        if not isinstance(trigger, Mapping) or not (ctx.triggered and ctx.triggered[0].get("value")):
            raise PreventUpdate   # a row (re)appeared; nobody clicked
        alert_id = int(trigger["alert"])
        info = source.snapshot().alert_info.get(alert_id)
        who = require(action, info.team if info is not None else None)   # AccessError: 403, nothing done
        by = {"role": who.role, "address": asker().source}
        comment = (comment or "").strip()
        try:
            if action == "acknowledge":
                a = source.acknowledge(alert_id, who.name, comment, **by)
                return t("feed.acked_by", lang, who=a.acknowledged_by)
            if action == "assign":
                assign = getattr(source, "assign", None)
                if assign is None:
                    raise PreventUpdate
                if not officer:
                    return t("feed.need_officer", lang)
                assign(alert_id, officer, who.name, **by)
                names = dict(source.snapshot().officers)
                return t("feed.assigned_to", lang, who=names.get(officer, officer))
            if not comment:
                return t("feed.need_comment", lang)
            a = source.resolve(alert_id, who.name, comment, **by)
            return t("feed.resolved_by", lang, who=a.resolved_by)
        except AlertError as exc:
            return str(exc)

    # one callback per button: a row carries only the buttons its viewer may use, and a
    # MATCH callback needs every one of its inputs on the page
    for button, action in _ACTIONS.items():
        app.callback(Output({"type": "alert-note", "alert": MATCH}, "children", allow_duplicate=True),
                     Input({"type": button, "alert": MATCH}, "n_clicks"),
                     State("operator-comment", "value"), State("assign-officer", "value"),
                     State("lang-switch", "value"), prevent_initial_call=True)(
            lambda _n, comment, officer, lang, action=action: act(action, comment, officer, lang))

    @app.callback(Output("selected-sensor", "data"),
                  Input("sensor-map", "clickData"),
                  Input({"type": "alert-view", "alert": ALL, "sensor": ALL}, "n_clicks"),
                  Input("detail-close", "n_clicks"),
                  prevent_initial_call=True)
    def _select(click: Mapping[str, Any] | None, _views: list[int | None], _close: int | None) -> int | None:
        trigger = ctx.triggered_id
        if trigger == "detail-close":
            return None
        if trigger == "sensor-map":
            points = (click or {}).get("points") or []
            if points and isinstance(points[0].get("customdata"), (int, float)) and points[0]["customdata"] >= 0:
                return int(points[0]["customdata"])
            raise PreventUpdate
        if isinstance(trigger, Mapping) and ctx.triggered and ctx.triggered[0].get("value"):
            return int(trigger["sensor"])
        raise PreventUpdate

    @app.callback(Output("detail-graph", "figure"), Output("detail-graph", "extendData"),
                  Output("detail-header", "children"), Output("sensor-detail", "className"),
                  Output("detail-state", "data"),
                  Input("selected-sensor", "data"), Input("tick", "n_intervals"), Input("lang-switch", "value"),
                  Input("detail-range", "value"),
                  State("detail-state", "data"), State("view-at", "data"), State("replay", "data"))
    def _detail(sensor: int | None, _n: int, lang: str, span: str | None, state: Mapping[str, Any] | None,
                view_at: float | None, replay: Mapping[str, Any] | None) -> tuple[Any, ...]:
        hidden = "card detail-card is-hidden"
        if sensor is None:
            if state is None:
                raise PreventUpdate
            return no_update, no_update, "", hidden, None
        at, snap = _past_or_live(source, instant(view_at, replay, time.time()))
        if not 0 <= int(sensor) < len(snap.registry):
            return no_update, no_update, "", hidden, None
        sensor = int(sensor)
        header = _detail_header(snap, sensor, lang)
        kept = getattr(source, "history_extent", lambda: None)() is not None
        span_s = DETAIL_RANGES.get(span or "") if kept else None          # no history: the live window
        fresh = (state is None or state.get("sensor") != sensor or state.get("lang") != lang
                 or state.get("run") != snap.run_id or state.get("span") != span)
        if not fresh and (state.get("seq") == snap.seq or span_s is not None):
            raise PreventUpdate          # a chosen range is drawn once; the live window follows the stream
        if span_s is not None:           # a range from the history, downsampled (the peaks kept)
            end = snap.sim_time if at is None else at
            d = source.history(snap.registry.sensors[sensor].id, end - span_s, end, 800)  # type: ignore[attr-defined]
            nan = np.full(len(d), np.nan)
            recent = {"ts": d.ts, "value": d.high if span_s > 86400 else d.value, "score": d.score,
                      "baseline": nan, "scale": nan.copy()}
        else:
            recent = source.recent(sensor) if at is None else source.recent_at(at, sensor)   # type: ignore[attr-defined]
        ts = recent["ts"]
        newest = float(ts[-1]) if ts.size else None
        new_state = {"sensor": sensor, "lang": lang, "run": snap.run_id, "seq": snap.seq, "span": span,
                     "last": newest if newest is not None else (state or {}).get("last"),
                     "header": stable_hash(header)}
        if fresh:
            return (detail_figure(snap, sensor, recent, lang), no_update, header, "card detail-card", new_state)
        ext = None
        if state.get("last") is not None:
            ext = detail_extension(snap, recent, float(state["last"]), detail_window)
        header_changed = state.get("header") != new_state["header"]
        if ext is None and not header_changed:
            raise PreventUpdate   # no new reading of this sensor: send nothing
        return (no_update, ext if ext is not None else no_update, header if header_changed else no_update,
                no_update, new_state)

    app.clientside_callback(
        _AGE_JS,
        Output({"type": "alert-age", "alert": ALL, "t": ALL}, "children"),
        Input("sim-clock", "data"), Input("lang-switch", "value"), State("age-words", "data"),
        State({"type": "alert-age", "alert": ALL, "t": ALL}, "id"),
        prevent_initial_call=True,
    )


def _detail_header(snap: Snapshot, i: int, lang: str) -> list[Any]:
    from dash import html

    from dashboard.i18n import kind_label

    spec = snap.registry.sensors[i]
    status = STATUSES[int(snap.status[i])]
    value = snap.last_value[i]
    digits = 2 if math.isfinite(value) and abs(value) < 10 else 1
    return [
        html.Div([
            html.Span(spec.name, className="detail-name", title=spec.name),
            html.Span([html.Span(className=f"legend-mark mark-{status}"), t(f"status.{status}", lang)],
                      className=f"detail-status status-{status}"),
        ], className="detail-line1"),
        html.Div([
            html.Span(f"{kind_label(spec.kind, lang)} · {spec.ward} · {spec.id}", className="detail-meta"),
            html.Span(t("detail.last", lang, value=fmt_num(value, lang, digits), unit=spec.unit,
                        score=fmt_num(snap.score[i], lang, 2)), className="detail-last"),
        ], className="detail-line2"),
    ]
