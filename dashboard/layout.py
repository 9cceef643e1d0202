"""Layout builders: the page, the KPI tiles, the alert-feed rows and the health bar.

Pure functions of a :class:`~dashboard.source.Snapshot` and a language; no
callbacks here.  Tiles are first reduced to a small frozen :class:`Tile` model
so a refresh can tell (by its hash) whether a tile changed before rendering it.

Stable element ids for automation: ``sensor-map``, ``alert-feed``,
``kpi-traffic``, ``kpi-air``, ``kpi-flood``, ``kpi-utility``, ``kpi-health``, ``kpi-alarms``,
``sensor-detail``, ``lang-switch``, ``health-bar``, ``signed-in`` (who and their role),
``sign-out``, ``operator-comment``, ``assign-officer``, ``on-duty``.  Repeated elements use
pattern-matching ids: ``{"type": "alert-ack", "alert": <id>}``, ``alert-resolve``,
``alert-assign``, ``alert-view``, ``alert-note`` and friends,
``{"type": "i18n", "key": <string key>}`` for static text.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import astuple, dataclass
from typing import Any, Mapping, Sequence

from dash import dcc, html

from dashboard.figures import map_figure
from dashboard.i18n import LANGS, STRINGS, fmt_age, fmt_clock, fmt_num, kind_label, t
from dashboard.source import STATUSES, AlertInfo, Snapshot
from processing.alarm_rate import FLOOD_COUNT, ISA_ACCEPTABLE_PER_H, RATINGS, rating
from processing.alerts import Alert, feed_sort_key
from processing.access import Principal, allowed
from processing.aqi import CATEGORIES
from processing.layers import Layer

__all__ = ["FEED_LIMIT", "KPI_IDS", "Tile", "build_layout", "delivery_text", "duty_items", "feed_entries",
           "feed_rows", "feed_state", "health_texts", "i18n_span", "kpi_tiles", "legend_items", "render_tile", "signed_in",
           "alert_row", "initial_state", "row_rev", "stable_hash"]

KPI_IDS: tuple[str, ...] = ("kpi-traffic", "kpi-air", "kpi-flood", "kpi-utility", "kpi-health", "kpi-alarms")
FEED_LIMIT = 40            # alert rows on screen; the rest are counted
HEALTH_IDS: tuple[str, ...] = ("h-status", "h-rate", "h-dead", "h-open", "h-age", "h-clock", "h-date", "h-speed")
_SEV_ICON = {"critical": "▲", "warning": "◆", "info": "●"}
_DARK_TEXT_ON = {"#00E400", "#FFFF00", "#FF7E00"}
_RATING_TONE = {"acceptable": "normal", "manageable": "watch", "overloaded": "warn", "flood": "alert"}
_RATING_COLOR = {"acceptable": "#00E400", "manageable": "#FFFF00", "overloaded": "#FF7E00", "flood": "#FF0000"}


def stable_hash(value: Any) -> int:
    """A hash that is the same in every process (unlike ``hash`` of a str)."""
    return zlib.crc32(repr(value).encode("utf-8"))


def i18n_span(key: str, lang: str, **kw: Any) -> html.Span:
    """Static text re-rendered by the language callback (pattern-matching id)."""
    return html.Span(t(key, lang), id={"type": "i18n", "key": key}, **kw)


# ------------------------------------------------------------------ KPI tiles

@dataclass(frozen=True, slots=True)
class Tile:
    title: str
    value: str
    unit: str
    detail: str
    tone: str = "normal"          # normal | watch | warn | alert | idle
    badge: str = ""               # AQI category name
    badge_color: str = ""
    extra: str = ""               # a second, smaller detail line
    hint: str = ""                # tooltip of the tile (default: the detail)


def _name(snap: Snapshot, i: int) -> str:
    return snap.registry.sensors[i].name if i >= 0 else ""


def _short(name: str, limit: int = 46) -> str:
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "…"


def kpi_tiles(snap: Snapshot, lang: str) -> dict[str, Tile]:
    """The five KPI tile models, keyed by element id."""
    k = snap.kpis
    idle = t("no_data", lang)
    tiles: dict[str, Tile] = {}

    if math.isfinite(k.traffic_speed):
        tone = "alert" if k.traffic_sites and k.traffic_congested > k.traffic_sites / 3 else (
            "warn" if k.traffic_congested else "normal")
        tiles["kpi-traffic"] = Tile(t("kpi.traffic", lang), fmt_num(k.traffic_speed, lang, 0), "km/h",
                                    t("kpi.traffic.congested", lang, n=k.traffic_congested, total=k.traffic_sites),
                                    tone)
    else:
        tiles["kpi-traffic"] = Tile(t("kpi.traffic", lang), "–", "", idle, "idle")

    if math.isfinite(k.aqi) and 0 <= k.aqi_category < len(CATEGORIES):
        cat = CATEGORIES[k.aqi_category]
        label = cat.label_en if lang == "en" else cat.label_vi
        station = _short(_name(snap, k.aqi_sensor).split(" – ")[0].replace("Trạm quan trắc không khí ", ""), 34)
        tone = ("normal", "normal", "watch", "warn", "alert", "alert")[k.aqi_category]
        tiles["kpi-air"] = Tile(t("kpi.air", lang), f"{int(k.aqi)}", "",
                                t("kpi.air.detail", lang, hour=fmt_clock(k.aqi_hour, offset_s=snap.city.utc_offset_s, seconds=False), station=station),
                                tone, label, cat.color)
    else:
        tiles["kpi-air"] = Tile(t("kpi.air", lang), "–", "", idle, "idle")

    if math.isfinite(k.flood_level):
        levels = snap.extras.alert_levels[k.flood_sensor]
        l1 = levels[0] if math.isfinite(levels[0]) else float("nan")
        stage = t(f"kpi.flood.stage{k.flood_stage}", lang, l1=fmt_num(l1, lang, 1))
        where = _short(_name(snap, k.flood_sensor).split(" – ")[-1], 30)
        tiles["kpi-flood"] = Tile(t("kpi.flood", lang), fmt_num(k.flood_level, lang, 2), "m", f"{stage} · {where}",
                                  ("normal", "warn", "alert", "alert")[min(k.flood_stage, 3)])
    else:
        tiles["kpi-flood"] = Tile(t("kpi.flood", lang), "–", "", idle, "idle")

    if math.isfinite(k.pressure_min):
        low = snap.registry.sensors[k.pressure_sensor].limit_low
        tone = "alert" if (low is not None and k.pressure_min < low) or k.feeder_max_pct > 100 else (
            "warn" if k.feeder_max_pct > 90 else "normal")
        detail = t("kpi.utility.feeder", lang, total=fmt_num(k.feeder_total, lang, 1),
                   pct=fmt_num(k.feeder_max_pct, lang, 0)) if math.isfinite(k.feeder_total) else ""
        tiles["kpi-utility"] = Tile(t("kpi.utility", lang), fmt_num(k.pressure_min, lang, 2),
                                    f"bar {t('kpi.utility.pressure', lang)}", detail, tone)
    else:
        tiles["kpi-utility"] = Tile(t("kpi.utility", lang), "–", "", idle, "idle")

    if k.total:
        share = 100.0 * k.online / k.total
        tone = "alert" if share < 70 else ("warn" if share < 95 else "normal")
        tiles["kpi-health"] = Tile(t("kpi.health", lang), fmt_num(share, lang, 0), "%",
                                   t("kpi.health.detail", lang, online=k.online, total=k.total,
                                     stale=k.stale + k.never), tone)
    else:
        tiles["kpi-health"] = Tile(t("kpi.health", lang), "–", "", idle, "idle")
    tiles["kpi-alarms"] = alarm_tile(snap, lang)
    return tiles


def alarm_tile(snap: Snapshot, lang: str) -> Tile:
    """Alerts per hour over the last hour against ISA-18.2 / EEMUA 191: the value is the city's
    total; the badge and tone are the verdict of the busiest team (one duty officer each);
    the detail gives the benchmark and the share of alerts that cleared by themselves within
    10 minutes; the second line the whole run's rate and the busiest teams'."""
    title = t("kpi.alarms", lang)
    if snap.alarm_rate is None:
        return Tile(title, "–", "", t("no_data", lang), "idle")
    hour, run = snap.alarm_rate
    names = {d.team: (d.name_en if lang == "en" else d.name) for d in snap.on_duty}
    verdicts = [rating(float(r), bool(f)) for r, f in zip(hour.per_hour, hour.flood)]
    if hour.total_flood:
        verdicts.append("flood")
    worst = max(verdicts, key=RATINGS.index, default="acceptable")
    share = hour.total_nuisance_share
    detail = t("kpi.alarms.detail", lang, limit=fmt_num(ISA_ACCEPTABLE_PER_H, lang, 0),
               share="–" if not math.isfinite(share) else f"{fmt_num(100.0 * share, lang, 0)} %")
    busiest = sorted(zip(hour.teams.tolist(), hour.per_hour.tolist()), key=lambda x: (-x[1], x[0]))[:3]
    extra = " · ".join([t("kpi.alarms.teams", lang, run=fmt_num(run.total_per_hour, lang, 1))]
                       + [f"{names.get(tm, tm)} {fmt_num(v, lang, 1)}" for tm, v in busiest])
    hint = t("kpi.alarms.title", lang, n=hour.total_count, min=int(round(hour.window_s / 60.0)), peak=hour.total_peak,
             flood=FLOOD_COUNT)
    return Tile(title, fmt_num(hour.total_per_hour, lang, 1), t("kpi.alarms.unit", lang), detail,
                _RATING_TONE[worst], t(f"rating.{worst}", lang), _RATING_COLOR[worst], extra, hint)


def render_tile(tile: Tile) -> list[Any]:
    """Children of a KPI tile element."""
    main: list[Any] = [html.Span(tile.value, className="tile-value")]
    if tile.unit:
        main.append(html.Span(tile.unit, className="tile-unit"))
    if tile.badge:
        fg = "#111111" if tile.badge_color.upper() in _DARK_TEXT_ON else "#FFFFFF"
        main.append(html.Span(tile.badge, className="tile-badge",
                              style={"backgroundColor": tile.badge_color, "color": fg}))
    out = [
        html.Div([html.Span(className=f"tone-dot tone-{tile.tone}"), tile.title], className="tile-title",
                 title=tile.hint or None),
        html.Div(main, className="tile-main"),
        html.Div(tile.detail, className="tile-detail", title=tile.hint or tile.detail),
    ]
    if tile.extra:
        out.append(html.Div(tile.extra, className="tile-extra", title=tile.extra))
    return out


def tile_class(tile: Tile) -> str:
    return f"tile tone-{tile.tone}"


# ------------------------------------------------------------------ alert feed

def feed_entries(snap: Snapshot, limit: int = FEED_LIMIT) -> tuple[list[Alert], int]:
    """The alerts to show (open and acknowledged, most urgent first) and how many more there are."""
    live = sorted((a for a in snap.alerts if a.state != "resolved"), key=feed_sort_key)
    return live[:limit], max(0, len(live) - limit)


def _value_text(snap: Snapshot, a: Alert, lang: str) -> str:
    spec = snap.registry.sensors[a.sensor]
    if not math.isfinite(a.last_value):
        return ""
    return f"{fmt_num(a.last_value, lang, 2 if abs(a.last_value) < 10 else 1)} {spec.unit}"


def row_rev(snap: Snapshot, a: Alert) -> int:
    """What the browser remembers of a feed row: the alert's rev, mixed with its routing and delivery
    state when the snapshot has it (an assignment or a delivery changes the row, not the alert)."""
    info = snap.alert_info.get(a.id)
    return a.rev if info is None else stable_hash((a.rev, info))


def feed_state(snap: Snapshot, entries: list[Alert]) -> list[list[int]]:
    return [[a.id, row_rev(snap, a)] for a in entries]


def delivery_text(info: AlertInfo, lang: str) -> tuple[str, str]:
    """``(text, tone)`` of an alert's delivery counts; tone ``failed`` | ``pending`` | ``sent`` | ``idle``."""
    parts = [t(f"deliv.{k}", lang, n=n) for k, n in (("sent", info.sent), ("pending", info.pending),
                                                       ("failed", info.failed), ("unconfigured", info.unconfigured))
             if n]
    tone = ("failed" if info.failed else "pending" if info.pending else "sent" if info.sent else "idle")
    return (" · ".join(parts) if parts else t("deliv.none", lang)), tone


def _info_line(info: AlertInfo, lang: str) -> html.Div:
    """Third line of a routed alert: team, escalation, assignee, flaps, incident, silence, deliveries."""
    team = info.team_name_en if lang == "en" else info.team_name
    items: list[Any] = [html.Span(team, className="alert-team", title=team)]
    if info.level > 0:
        items.append(html.Span(t("feed.level", lang, n=info.level), className="alert-level"))
    if info.assignee:
        items.append(html.Span(t("feed.assigned_to", lang, who=info.assignee_name or info.assignee),
                               className="alert-assignee"))
    if info.flapping:
        items.append(html.Span(t("feed.flapping", lang, n=info.flaps), className="alert-flapping"))
    if info.incident is not None:
        items.append(html.Span(t("feed.incident", lang, n=info.incident), className="alert-incident"))
    if info.silenced_by:
        items.append(html.Span(t("feed.silenced", lang), className="alert-silenced", title=info.silenced_by))
    text, tone = delivery_text(info, lang)
    items.append(html.Span([html.Span("✉", className="deliv-icon"), text], className=f"alert-deliv deliv-{tone}",
                           title=t("deliv.title", lang)))
    return html.Div(items, className="alert-line3")


def alert_row(snap: Snapshot, a: Alert, lang: str, who: Principal) -> html.Div:
    """One alert in two lines: severity, reason, sensor kind, value, state and age; then the
    sensor's name and ward, and the buttons of the actions ``who`` may take on it (none for a
    viewer; the server checks again when one is pressed); with alerting, a third line: team,
    escalation, assignee, and the delivery status (failed deliveries highlighted)."""
    spec = snap.registry.sensors[a.sensor]
    info = snap.alert_info.get(a.id)
    team = info.team if info is not None else None
    if a.state == "acknowledged":
        state = t("feed.acked_by", lang, who=a.acknowledged_by)
    else:
        state = t(f"state.{a.state}", lang)
    value = _value_text(snap, a, lang)
    first: list[Any] = [
        html.Span([html.Span(_SEV_ICON[a.severity], className="sev-icon"),
                   html.Span(t(f"severity.{a.severity}", lang), className="sev-text")], className="sev-badge"),
        html.Span(t(f"reason.{a.kind}", lang), className="alert-reason"),
        html.Span(kind_label(spec.kind, lang), className="alert-kind"),
        html.Span(className="alert-gap"),
    ]
    if value:
        first.append(html.Span(value, className="alert-value"))
    if a.cleared_at is not None:
        first.append(html.Span(t("feed.cleared", lang), className="alert-cleared"))
    elif a.occurrences > 1:
        first.append(html.Span(t("feed.repeat", lang, n=a.occurrences), className="alert-repeat"))
    first += [html.Span(state, className="alert-state"),
              html.Span(fmt_age(snap.sim_time - a.opened_at, lang),
                        id={"type": "alert-age", "alert": a.id, "t": a.opened_at}, className="alert-age")]
    second = [
        html.Span(f"{spec.name} · {spec.ward}", className="alert-where", title=f"{spec.name} · {spec.id}"),
        html.Div(id={"type": "alert-note", "alert": a.id}, className="alert-note"),
        html.Button(t("feed.view", lang), id={"type": "alert-view", "alert": a.id, "sensor": a.sensor},
                    className="btn btn-view", n_clicks=0),
    ]
    if allowed(who, "acknowledge", team):
        second.append(html.Button(t("feed.ack", lang), id={"type": "alert-ack", "alert": a.id},
                                  className="btn btn-ack", disabled=a.state != "open", n_clicks=0))
    if allowed(who, "assign", team) and snap.officers:
        second.append(html.Button(t("feed.assign", lang), id={"type": "alert-assign", "alert": a.id},
                                  className="btn btn-assign", n_clicks=0, disabled=a.state == "resolved"))
    if allowed(who, "resolve", team):
        second.append(html.Button(t("feed.resolve", lang), id={"type": "alert-resolve", "alert": a.id},
                                  className="btn btn-resolve", n_clicks=0))
    lines = [html.Div(first, className="alert-line1"), html.Div(second, className="alert-line2")]
    if info is not None:
        lines.append(_info_line(info, lang))
    classes = f"alert-row sev-{a.severity} state-{a.state}" + (" is-cleared" if a.cleared_at is not None else "")
    if info is not None and info.failed:
        classes += " has-failed"
    return html.Div(lines, className=classes, id={"type": "alert-row", "alert": a.id})


def feed_rows(snap: Snapshot, lang: str, who: Principal, limit: int = FEED_LIMIT) -> list[html.Div]:
    entries, _ = feed_entries(snap, limit)
    if not entries:
        return [html.Div(t("feed.empty", lang), className="feed-empty")]
    return [alert_row(snap, a, lang, who) for a in entries]


def feed_footer(snap: Snapshot, lang: str, limit: int = FEED_LIMIT) -> str:
    _, more = feed_entries(snap, limit)
    return t("feed.more", lang, n=more) if more else ""


def duty_items(snap: Snapshot, lang: str) -> list[Any]:
    """Who is on duty now: one chip per officer on shift (team and phone in its tooltip)."""
    chips: list[Any] = []
    for team in snap.on_duty:
        name = team.name_en if lang == "en" else team.name
        if not team.officers:
            chips.append(html.Span([html.Span(t("duty.nobody", lang), className="duty-name"),
                                    html.Span(name, className="duty-team")], className="duty-chip duty-empty",
                                   title=name))
        for _oid, officer, phone in team.officers:
            chips.append(html.Span([html.Span(officer, className="duty-name"), html.Span(name, className="duty-team")],
                                   className="duty-chip", title=f"{officer} · {name}" + (f" · {phone}" if phone else "")))
    return chips


# ------------------------------------------------------------------ health bar

def health_texts(snap: Snapshot, lang: str) -> dict[str, str]:
    """Texts of the health bar's value slots, keyed by element id."""
    h = snap.health
    age = fmt_age(h.newest_age_s, lang)
    return {
        "h-status": t(f"health.status.{h.status}", lang),
        "h-rate": fmt_num(h.readings_per_s, lang, 1),
        "h-dead": fmt_num(h.deadletters_total, lang, 0),
        "h-open": fmt_num(h.alerts_open, lang, 0),
        "h-age": t("age.ago", lang, age=age) if age != t("age.now", lang) and age != "–" else age,
        "h-clock": fmt_clock(snap.sim_time, offset_s=snap.city.utc_offset_s),
        "h-date": (fmt_clock(snap.sim_time, offset_s=snap.city.utc_offset_s, date=True).split(" ")[1]
                   if math.isfinite(snap.sim_time) else ""),
        "h-speed": t("sim_speed", lang, speed=fmt_num(snap.speed, lang, 0 if snap.speed >= 1 else 2)),
    }


def health_class(snap: Snapshot) -> str:
    return f"health-status status-{snap.health.status}"


def legend_items(snap: Snapshot, lang: str) -> list[html.Div]:
    """The map legend: each status's marker shape and colour, its name and how many sensors have it."""
    counts = snap.status_counts()
    return [html.Div([html.Span(className=f"legend-mark mark-{name}"),
                      html.Span(t(f"status.{name}", lang), className="legend-label"),
                      html.Span(fmt_num(counts[code], lang, 0), className="legend-count")],
                     className=f"legend-item legend-{name}")
            for code, name in enumerate(STATUSES)]


# ------------------------------------------------------------------ the page

def initial_state(snap: Snapshot, lang: str, tiles: Mapping[str, Tile], health: Mapping[str, str]) -> dict[str, Any]:
    """What the browser holds after a full render (sent back with each refresh)."""
    entries, _ = feed_entries(snap)
    return {
        "run": snap.run_id, "seq": snap.seq, "lang": lang,
        "feed": feed_state(snap, entries),
        "duty": stable_hash(snap.on_duty),
        "overlay": [int(i) for i in (snap.status == 2).nonzero()[0]],
        "kpi": {k: stable_hash(astuple(v)) for k, v in tiles.items()},
        "health": {k: stable_hash(v) for k, v in health.items()},
        "legend": list(snap.status_counts()),
    }


def _age_words() -> dict[str, dict[str, str]]:
    return {lang: {k: STRINGS[f"age.{k}"][lang] for k in ("now", "s", "min", "h", "d")} for lang in LANGS}


def signed_in(who: Principal, csrf: str | None, lang: str) -> html.Div:
    """Who is signed in and their role, the audit log's link for an admin, and the sign-out
    button (a form posting the session's CSRF token; none for an API token)."""
    parts: list[Any] = [html.Span(who.name, className="who-name"),
                        html.Span(t(f"role.{who.role}", lang), className="who-role")]
    if allowed(who, "audit"):
        parts.append(html.A(t("audit.link", lang), href="/audit", className="who-audit", id="audit-link"))
    if csrf is not None:
        parts.append(html.Form([dcc.Input(type="hidden", name="csrf", value=csrf),
                                html.Button(t("sign_out", lang), type="submit", className="btn btn-signout")],
                               action="/logout", method="POST", id="sign-out", className="sign-out"))
    return html.Div(parts, id="signed-in", className="signed-in", title=f"{who.name} · {who.role}")


def layer_switch(layers: Sequence[Layer], lang: str) -> Any:
    """The layer switcher: a tick per GIS layer, with its colour; its names follow the language."""
    return dcc.Checklist(
        id="layer-switch", value=[lay.spec.id for lay in layers if lay.spec.visible], inline=True,
        className="layer-switch", inputClassName="layer-input",
        options=[{"label": html.Span([html.Span(className="layer-swatch", style={"background": lay.spec.style.color}),
                                      i18n_span(f"layer.{lay.spec.id}", lang)], title=lay.spec.source),
                  "value": lay.spec.id} for lay in layers],
        style=None if layers else {"display": "none"})


def time_bar(lang: str, shown: bool) -> Any:
    """Back in time: Live, the slider over the history kept, the instant shown, an incident to replay."""
    return html.Div([
        html.Button(i18n_span("time.live", lang), id="time-live", className="btn btn-live is-live", n_clicks=0),
        html.Div(dcc.Slider(id="time-slider", min=0, max=1, value=1, step=60, marks=None, updatemode="mouseup",
                            included=False, allow_direct_input=False), className="time-slider"),
        html.Span(t("time.live", lang), id="time-label", className="time-label"),
        dcc.Dropdown(id="replay-alert", options=[], placeholder=t("time.replay.placeholder", lang), clearable=True,
                     className="replay-alert"),
        dcc.Dropdown(id="replay-speed", value=60, clearable=False, className="replay-speed",
                     options=[{"label": f"×{k}", "value": k} for k in (10, 60, 300)]),
    ], id="time-bar", className="time-bar", style=None if shown else {"display": "none"})


def build_layout(snap: Snapshot, wards: Mapping[str, Any] | None, *, who: Principal, csrf: str | None = None,
                 lang: str = "vi", refresh_ms: int = 1000, map_style: Any = None,
                 layers: Sequence[Layer] = (), history: bool = False) -> html.Div:
    """The whole control-room page for one snapshot, as ``who`` may use it (``csrf``: their
    session's token, for the sign-out form)."""
    tiles = kpi_tiles(snap, lang)
    health = health_texts(snap, lang)
    figure = map_figure(snap, wards, lang, style=map_style, layers=layers)

    def chip(label_key: str, value_id: str, href: str | None = None) -> Any:
        parts = [html.Span(health[value_id], id=value_id, className="chip-value"),
                 i18n_span(label_key, lang, className="chip-label")]
        if href is not None:
            return html.A(parts, href=href, className="chip chip-link", id=f"{value_id}-link")
        return html.Div(parts, className="chip")

    header = html.Header([
        html.Div([
            html.Div(i18n_span("title", lang), className="brand-title"),
            html.Div(html.Span(snap.city.text("title", lang), id="brand-city"), className="brand-city"),
        ], className="brand"),
        html.Div([
            html.Div([html.Span(className="status-dot"), html.Span(health["h-status"], id="h-status")],
                     id="h-status-box", className=health_class(snap)),
            chip("health.rate", "h-rate"),
            chip("health.dead", "h-dead", href="/deadletters"),     # why messages were refused
            chip("health.open", "h-open"),
            chip("health.age", "h-age"),
        ], id="health-bar", className="health-bar"),
        html.Div([
            html.Div(health["h-clock"], id="h-clock", className="clock-time"),
            html.Div([html.Span(health["h-date"], id="h-date"), html.Span(health["h-speed"], id="h-speed",
                                                                          className="clock-speed")],
                     className="clock-sub"),
        ], className="clock"),
        dcc.RadioItems(id="lang-switch", value=lang, inline=True, className="lang-switch",
                       options=[{"label": html.Span("VI", title=STRINGS["lang.vi"]["vi"]), "value": "vi"},
                                {"label": html.Span("EN", title=STRINGS["lang.en"]["en"]), "value": "en"}],
                       inputClassName="lang-input", labelClassName="lang-label"),
        signed_in(who, csrf, lang),
    ], className="topbar")

    kpis = html.Section([html.Div(render_tile(tiles[k]), id=k, className=tile_class(tiles[k])) for k in KPI_IDS],
                        className="kpi-row")

    map_card = html.Div([
        html.Div([html.Div(i18n_span("map.title", lang), className="card-title"),
                  html.Div(legend_items(snap, lang), id="map-legend", className="legend")],
                 className="card-head"),
        layer_switch(layers, lang),
        time_bar(lang, history),
        dcc.Graph(id="sensor-map", figure=figure, className="map-graph", style={"height": "100%"},
                  config={"displayModeBar": False, "scrollZoom": True, "doubleClick": "reset"}),
    ], className="card map-card")

    detail = html.Div([
        html.Div([
            html.Div(id="detail-header", className="detail-header"),
            dcc.RadioItems(id="detail-range", value="recent", inline=True, className="detail-range",
                           options=[{"label": i18n_span("detail.recent", lang), "value": "recent"}]
                           + [{"label": k, "value": k} for k in ("24h", "7d", "30d")],
                           style=None if history else {"display": "none"}),
            html.Button(i18n_span("detail.close", lang), id="detail-close", className="btn btn-close", n_clicks=0),
        ], className="card-head detail-head"),
        dcc.Graph(id="detail-graph", className="detail-graph", style={"height": "100%"},
                  config={"displayModeBar": False}, figure={"data": [], "layout": {
                      "paper_bgcolor": "#111a2b", "plot_bgcolor": "#111a2b",
                      "xaxis": {"visible": False}, "yaxis": {"visible": False}}}),
    ], id="sensor-detail", className="card detail-card is-hidden")

    feed = html.Div([
        html.Div([html.Div(i18n_span("feed.title", lang), className="card-title"),
                  html.Span(str(snap.health.alerts_active), id="feed-count", className="feed-count")],
                 className="card-head"),
        html.Div([html.Label(i18n_span("feed.comment", lang), htmlFor="operator-comment", className="operator-label"),
                  dcc.Input(id="operator-comment", type="text", debounce=False, maxLength=500,
                            placeholder=t("feed.comment.placeholder", lang), className="operator-input"),
                  dcc.Dropdown(id="assign-officer", options=[{"label": name, "value": oid}
                                                             for oid, name in snap.officers],
                               placeholder=t("feed.assign.placeholder", lang), clearable=True, searchable=True,
                               className="assign-officer", style=None if snap.officers else {"display": "none"})],
                 className="operator operator-actions",
                 style=None if allowed(who, "comment") else {"display": "none"}),     # a viewer's: not shown
        html.Div([i18n_span("duty.title", lang, className="duty-title"),
                  html.Div(duty_items(snap, lang), id="on-duty", className="duty-list")],
                 className="duty", hidden=not snap.on_duty),
        html.Div(feed_rows(snap, lang, who), id="alert-feed", className="alert-feed"),
        html.Div(feed_footer(snap, lang), id="feed-more", className="feed-more"),
    ], className="card feed-card")

    stores = [
        dcc.Interval(id="tick", interval=refresh_ms, n_intervals=0),
        dcc.Store(id="view-state", data=initial_state(snap, lang, tiles, health)),
        dcc.Store(id="sim-clock", data=snap.sim_time),
        dcc.Store(id="selected-sensor", data=None),
        dcc.Store(id="detail-state", data=None),
        dcc.Store(id="age-words", data=_age_words()),
        dcc.Store(id="view-at", data=None),           # a past instant shown (None: live)
        dcc.Store(id="replay", data=None),            # an incident being replayed
        dcc.Interval(id="time-tick", interval=5000, n_intervals=0),
    ]
    return html.Div([*stores, header, kpis,
                     html.Main([map_card, html.Div([feed, detail], className="right-col")], className="main-grid")],
                    id="ioc-root", className="ioc-root", lang=lang)
