"""Figure builders: the city map and the drill-down chart, plus their incremental updates.

The map is a ``go.Scattermap`` over plotly's offline ``white-bg`` style (no
tile server, nothing fetched): a dark backdrop polygon, then the ward polygons
from ``wards.geojson``, as GeoJSON fill and line layers.  Panning is bounded to
the city so the backdrop always fills the view.  (A custom style object would
be simpler, but plotly re-applies such a style on every update, which makes
MapLibre report errors; a tile style name still works when configured.)

Every sensor is drawn by two stacked circle traces in registry order -- an
outer disc and an inner disc -- so a status has a colour *and* a shape
(colour-blind-safe Okabe-Ito colours):

=========  ===========  =====================================
status     colour       shape
=========  ===========  =====================================
normal     bluish green small solid dot
warning    yellow       ring (dark centre)
alert      vermillion   large bullseye (white centre), drawn on top
offline    grey         hollow ring (thin)
=========  ===========  =====================================

Marker colours are numeric status codes on a fixed colour scale and sizes are
small integers, so :func:`map_patch` can update a handful of sensors with a
``dash.Patch`` of single array elements, or replace the arrays wholesale when
many changed (whichever is smaller).  Alerts are repeated in two small overlay
traces so they are never hidden under neighbours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from dash import Patch

from dashboard.i18n import fmt_num, kind_label, t
from dashboard.source import ALERT, STATUSES, Snapshot
from processing.layers import Layer

__all__ = ["BG", "MAP_STYLE", "STATUS_COLORS", "STATUS_SHAPES", "TileSource", "detail_extension", "detail_figure",
           "layer_entries", "map_figure", "map_patch", "map_view", "local_iso"]

BG = "#0b1220"            # page background; ring centres take it
PANEL = "#111a2b"
GRID = "#23304a"
TEXT = "#e8edf5"
MUTED = "#9fb0c8"
FONT = "Inter, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif"

#: Okabe-Ito colours per status code.
STATUS_COLORS: tuple[str, ...] = ("#009E73", "#F0E442", "#D55E00", "#8C96A8")
#: (outer size, inner size, inner colour) per status code.
STATUS_SHAPES: tuple[tuple[int, int, str], ...] = (
    (12, 0, BG),           # normal: solid dot
    (19, 9, BG),           # warning: ring
    (28, 10, "#FFFFFF"),   # alert: bullseye
    (16, 11, BG),          # offline: thin hollow ring
)
_INNER_COLORS = tuple(shape[2] for shape in STATUS_SHAPES)
_NO_TEMPLATE = go.layout.Template()   # every colour is set here; plotly's default template only adds bytes
_OUTER, _INNER, _ALERT_OUTER, _ALERT_INNER, _WARDS = range(5)
_PATCH_OP_BYTES = 95      # JSON size of one element assignment in a Patch, roughly

#: plotly's offline style: no tiles, no sources, just a background (which a backdrop layer darkens).
MAP_STYLE = "white-bg"


@dataclass(frozen=True, slots=True)
class TileSource:
    """Raster map tiles under the city's layers, when a tile server is configured (``ioc run --tiles``):
    ``url`` with ``{z}/{x}/{y}``; ``attribution`` shown on the map as its licence asks."""
    url: str
    attribution: str = ""

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")) or not all(k in self.url for k in ("{z}", "{x}", "{y}")):
            raise ValueError(f"--tiles: an http(s) URL with {{z}}, {{x}} and {{y}}, got {self.url!r}")
_BACKDROP = "#0d1726"
_BOUNDS_MARGIN_DEG = 0.12      # how far beyond the wards the map may be panned


def _scale(colors: tuple[str, ...]) -> list[list[Any]]:
    """A colour scale mapping the integer codes 0..3 (cmin 0, cmax 3) to ``colors``."""
    return [[k / (len(colors) - 1), c] for k, c in enumerate(colors)]


def _extent(wards: Mapping[str, Any] | None, lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """(west, east, south, north) of the wards, or of the sensors when there are no wards."""
    xs: list[float] = []
    ys: list[float] = []
    for feat in (wards or {}).get("features", []):
        for ring in feat.get("geometry", {}).get("coordinates", [])[:1]:
            xs.extend(p[0] for p in ring)
            ys.extend(p[1] for p in ring)
    if not xs:
        xs, ys = [float(v) for v in lon], [float(v) for v in lat]
    if not xs:
        return 106.1, 106.3, 21.2, 21.34
    return min(xs), max(xs), min(ys), max(ys)


def map_view(wards: Mapping[str, Any] | None, lon: np.ndarray, lat: np.ndarray,
             size_px: tuple[int, int] = (1200, 680)) -> tuple[dict[str, float], float]:
    """Centre and zoom that fit the wards (or the sensors) into a map of ``size_px``."""
    x0, x1, y0, y1 = _extent(wards, lon, lat)
    center = {"lon": (x0 + x1) / 2, "lat": (y0 + y1) / 2}
    span_x = max(x1 - x0, 1e-4)
    span_y = max(y1 - y0, 1e-4) / math.cos(math.radians(center["lat"]))
    zoom = min(math.log2(size_px[0] * 360 / (512 * span_x)), math.log2(size_px[1] * 360 / (512 * span_y)))
    return center, round(zoom - 0.05, 2)


def layer_entries(layers: Sequence[Layer], visible: Iterable[str] | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """The map (MapLibre) layers that draw the city's GIS layers -- fills for polygons, lines for
    lines and polygon outlines, circles for points -- and, per layer id, the positions of its
    entries in that list (the layer switcher toggles them).  ``visible``: the ids shown (default:
    those configured visible)."""
    shown = {lay.spec.id for lay in layers if lay.spec.visible} if visible is None else set(visible)
    entries: list[dict[str, Any]] = []
    slots: dict[str, list[int]] = {}
    for lay in layers:
        spec, on = lay.spec, lay.spec.id in shown
        kinds: dict[str, list[dict[str, Any]]] = {"poly": [], "line": [], "point": []}
        for f in lay.features:
            g = f["geometry"]["type"]
            kinds["poly" if "Polygon" in g else "line" if "LineString" in g else "point"].append(f)
        mine = slots.setdefault(spec.id, [])

        def add(entry: dict[str, Any]) -> None:
            mine.append(len(entries))
            entries.append({**entry, "below": "traces", "visible": on, "name": f"layer:{spec.id}"})
        if kinds["poly"]:
            fc = {"type": "FeatureCollection", "features": kinds["poly"]}
            add({"source": fc, "type": "fill", "color": spec.style.color, "opacity": spec.style.opacity})
            add({"source": fc, "type": "line", "color": spec.style.color, "line": {"width": 1.2}})
        if kinds["line"]:
            add({"source": {"type": "FeatureCollection", "features": kinds["line"]}, "type": "line",
                 "color": spec.style.color, "line": {"width": spec.style.width}, "opacity": max(spec.style.opacity, 0.5)})
        if kinds["point"]:
            add({"source": {"type": "FeatureCollection", "features": kinds["point"]}, "type": "circle",
                 "color": spec.style.color, "circle": {"radius": 4}})
    return entries, slots


def _layers(wards: Mapping[str, Any] | None, extent: tuple[float, float, float, float],
            tiles: TileSource | None = None) -> list[dict[str, Any]]:
    """The dark backdrop (well beyond the pan bounds), or the configured tiles, and the ward fills and outlines."""
    x0, x1, y0, y1 = extent
    m = 20 * _BOUNDS_MARGIN_DEG
    backdrop = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
        [x0 - m, y0 - m], [x1 + m, y0 - m], [x1 + m, y1 + m], [x0 - m, y1 + m], [x0 - m, y0 - m]]]}}
    layers: list[dict[str, Any]] = [{"source": backdrop, "type": "fill", "below": "traces", "color": _BACKDROP}]
    if tiles is not None:
        layers.append({"sourcetype": "raster", "source": [tiles.url], "sourceattribution": tiles.attribution,
                       "below": "traces", "opacity": 0.85})
    if wards:
        layers += [
            {"source": wards, "type": "fill", "below": "traces", "color": "#16243a",
             "opacity": 0.95 if tiles is None else 0.15},
            {"source": wards, "type": "line", "below": "traces", "color": "#4a6288", "line": {"width": 1.4}},
        ]
    return layers


def _ward_points(wards: Mapping[str, Any] | None) -> tuple[list[float], list[float], list[str]]:
    """A centroid per ward polygon, carrying its name for hovering (map text needs online glyphs)."""
    lons, lats, names = [], [], []
    for feat in (wards or {}).get("features", []):
        coords = feat.get("geometry", {}).get("coordinates", [])
        if not coords:
            continue
        ring = np.asarray(coords[0], dtype=np.float64)
        lons.append(round(float(ring[:-1, 0].mean()), 5))
        lats.append(round(float(ring[:-1, 1].mean()), 5))
        names.append(str(feat.get("properties", {}).get("name", "")))
    return lons, lats, names


def _alerts_overlay(snap: Snapshot, lon: np.ndarray, lat: np.ndarray) -> tuple[list, list, list]:
    idx = np.flatnonzero(snap.status == ALERT)
    return lon[idx].tolist(), lat[idx].tolist(), idx.tolist()


def sensor_coords(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    lon = np.round(np.array([s.lon for s in snap.registry.sensors], dtype=np.float64), 5)
    lat = np.round(np.array([s.lat for s in snap.registry.sensors], dtype=np.float64), 5)
    return lon, lat


def map_figure(snap: Snapshot, wards: Mapping[str, Any] | None, lang: str, *,
               style: str | Mapping[str, Any] | TileSource | None = None, layers: Sequence[Layer] = (),
               visible: Iterable[str] | None = None) -> go.Figure:
    """The whole map for a first render (or after a language switch): the wards, the city's GIS
    ``layers`` (``visible``: the ids shown; see :func:`layer_entries`) and the sensors."""
    reg = snap.registry
    lon, lat = sensor_coords(snap)
    codes = snap.status.astype(int)
    shapes = np.array([s[:2] for s in STATUS_SHAPES])
    # plain lists (not numpy, which plotly would send as packed binary) so Patch can set single elements
    code_list = codes.tolist()
    hover = [f"<b>{s.name}</b><br>{kind_label(s.kind, lang)} · {s.ward} · {s.id}" for s in reg.sensors]
    index = np.arange(len(reg))
    a_lon, a_lat, a_idx = _alerts_overlay(snap, lon, lat)
    w_lon, w_lat, w_names = _ward_points(wards)
    fig = go.Figure([
        go.Scattermap(lon=lon, lat=lat, customdata=index, name="outer", mode="markers", showlegend=False,
                      hoverinfo="text", hovertext=hover, marker=dict(color=code_list, cmin=0, cmax=3, colorscale=_scale(STATUS_COLORS),
                                  size=shapes[codes, 0].tolist(), opacity=1.0)),
        go.Scattermap(lon=lon, lat=lat, name="inner", mode="markers", showlegend=False, hoverinfo="skip",
                      marker=dict(color=code_list, cmin=0, cmax=3, colorscale=_scale(_INNER_COLORS),
                                  size=shapes[codes, 1].tolist(), opacity=1.0)),
        go.Scattermap(lon=a_lon, lat=a_lat, customdata=a_idx, name="alert", mode="markers", showlegend=False,
                      hoverinfo="text", hovertext=[hover[i] for i in a_idx],
                      marker=dict(color=STATUS_COLORS[ALERT], size=STATUS_SHAPES[ALERT][0])),
        go.Scattermap(lon=a_lon, lat=a_lat, customdata=a_idx, name="alert-centre", mode="markers",
                      showlegend=False, hoverinfo="skip",
                      marker=dict(color=STATUS_SHAPES[ALERT][2], size=STATUS_SHAPES[ALERT][1])),
        go.Scattermap(lon=w_lon, lat=w_lat, customdata=[-1] * len(w_lon), name="wards", mode="markers",
                      showlegend=False, hoverinfo="text", text=w_names,       # the labels (assets/ward_labels.js)
                      hovertext=[f"{t('map.ward', lang)}: <b>{n}</b>" for n in w_names],
                      marker=dict(size=14, color="rgba(0,0,0,0)")),
    ])
    center, zoom = map_view(wards, lon, lat)
    extent = _extent(wards, lon, lat)
    m = _BOUNDS_MARGIN_DEG
    bounds = dict(west=extent[0] - m, east=extent[1] + m, south=extent[2] - m, north=extent[3] + m)
    fig.update_layout(
        map=dict(style=MAP_STYLE if style is None or isinstance(style, TileSource) else style, center=center,
                 zoom=zoom, bounds=bounds,
                 layers=_layers(wards, extent, style if isinstance(style, TileSource) else None)
                 + layer_entries(layers, visible)[0]),
        margin=dict(l=0, r=0, t=0, b=0), paper_bgcolor=PANEL, plot_bgcolor=PANEL, uirevision="map",
        hoverlabel=dict(bgcolor="#1b2740", bordercolor="#6b7fa3", font=dict(size=17, family=FONT, color=TEXT)),
        font=dict(family=FONT, color=TEXT), clickmode="event", dragmode="pan", template=_NO_TEMPLATE,
    )
    return fig


def map_patch(snap: Snapshot, since_seq: int, overlay: list[int] | None, *,
              max_changed: int | None = None) -> tuple[Patch | None, list[int]]:
    """A Patch bringing a map rendered from snapshot ``since_seq`` up to ``snap``, or None if nothing changed.

    Up to ``max_changed`` changed sensors are patched element by element, more by
    replacing the marker arrays (default: whichever is fewer bytes).  Returns the
    patch and the alert overlay now shown (the client keeps it in its state).
    """
    changed = np.flatnonzero(snap.status_rev > since_seq)
    lon, lat = None, None
    new_overlay = np.flatnonzero(snap.status == ALERT).tolist()
    if changed.size == 0 and new_overlay == (overlay or []):
        return None, new_overlay
    patch = Patch()
    codes = snap.status.astype(int)
    shapes = np.array([s[:2] for s in STATUS_SHAPES])
    n = codes.size
    if max_changed is None:
        # 4 element assignments per changed sensor, against 4 whole arrays of ~2 and ~3 characters per sensor
        max_changed = (n * 11) // (4 * _PATCH_OP_BYTES)
    if changed.size <= max_changed:
        for i in changed.tolist():
            c = int(codes[i])
            patch["data"][_OUTER]["marker"]["color"][i] = c
            patch["data"][_OUTER]["marker"]["size"][i] = int(shapes[c, 0])
            patch["data"][_INNER]["marker"]["color"][i] = c
            patch["data"][_INNER]["marker"]["size"][i] = int(shapes[c, 1])
    elif changed.size:
        patch["data"][_OUTER]["marker"]["color"] = codes.tolist()
        patch["data"][_OUTER]["marker"]["size"] = shapes[codes, 0].tolist()
        patch["data"][_INNER]["marker"]["color"] = codes.tolist()
        patch["data"][_INNER]["marker"]["size"] = shapes[codes, 1].tolist()
    if new_overlay != (overlay or []):
        lon, lat = sensor_coords(snap)
        for k in (_ALERT_OUTER, _ALERT_INNER):
            patch["data"][k]["lon"] = lon[new_overlay].tolist()
            patch["data"][k]["lat"] = lat[new_overlay].tolist()
            patch["data"][k]["customdata"] = new_overlay
        reg = snap.registry
        patch["data"][_ALERT_OUTER]["hovertext"] = [
            f"<b>{reg.sensors[i].name}</b><br>{reg.sensors[i].ward} · {reg.sensors[i].id}" for i in new_overlay]
    return patch, new_overlay


# --------------------------------------------------------------- drill-down

def local_iso(ts: np.ndarray, offset_s: int) -> list[str]:
    """Epoch seconds -> local (UTC + ``offset_s``) ISO strings for a plotly date axis."""
    ts = np.asarray(ts, dtype=np.float64)
    if ts.size == 0:
        return []
    return np.datetime_as_string((ts + offset_s).astype("datetime64[s]"), unit="s").tolist()


def _series(recent: Mapping[str, np.ndarray], band_k: float, warn: float, since: float | None, offset_s: int
            ) -> tuple[list[list[Any]], list[list[Any]]]:
    ts = np.asarray(recent["ts"], dtype=np.float64)
    keep = np.isfinite(ts) if since is None else np.isfinite(ts) & (ts > since)
    ts = ts[keep]
    value = np.asarray(recent["value"], dtype=np.float64)[keep]
    base = np.asarray(recent["baseline"], dtype=np.float64)[keep]
    scale = np.asarray(recent["scale"], dtype=np.float64)[keep]
    score = np.asarray(recent["score"], dtype=np.float64)[keep]
    x = local_iso(ts, offset_s)
    lo = base - band_k * scale
    hi = base + band_k * scale

    def clean(a: np.ndarray) -> list[float | None]:
        return [round(float(v), 4) if math.isfinite(v) else None for v in a]

    # flagged points share the value trace's x (None where not flagged), so every trace keeps the
    # same window when extendData trims to the newest points
    flagged = np.where(score >= warn, value, np.nan)
    return [x, x, x, x, x], [clean(lo), clean(hi), clean(base), clean(value), clean(flagged)]


def detail_figure(snap: Snapshot, sensor: int, recent: Mapping[str, np.ndarray], lang: str) -> go.Figure:
    """Recent readings of one sensor with its rolling baseline +- k scales and the flagged points."""
    spec = snap.registry.sensors[sensor]
    xs, ys = _series(recent, snap.band_k, snap.warn_score, None, snap.city.utc_offset_s)
    k = fmt_num(snap.band_k, lang, 0)
    fig = go.Figure([
        go.Scatter(x=xs[0], y=ys[0], mode="lines", line=dict(width=0), hoverinfo="skip", showlegend=False,
                   name="band-low"),
        go.Scatter(x=xs[1], y=ys[1], mode="lines", line=dict(width=0), fill="tonexty",
                   fillcolor="rgba(86,180,233,0.20)", name=t("detail.band", lang, k=k), hoverinfo="skip"),
        go.Scatter(x=xs[2], y=ys[2], mode="lines", line=dict(color="#56B4E9", width=2, dash="dash"),
                   name=t("detail.baseline", lang)),
        go.Scatter(x=xs[3], y=ys[3], mode="lines+markers", line=dict(color=TEXT, width=2.5),
                   marker=dict(size=5, color=TEXT), name=t("detail.value", lang)),
        go.Scatter(x=xs[4], y=ys[4], mode="markers", name=t("detail.flagged", lang),
                   marker=dict(size=14, color=STATUS_COLORS[ALERT], symbol="diamond",
                               line=dict(color="#FFFFFF", width=1.5))),
    ])
    for limit in (spec.limit_low, spec.limit_high):
        if limit is not None:
            fig.add_hline(y=limit, line=dict(color="#E69F00", width=2, dash="dot"),
                          annotation_text=f"{t('detail.limit', lang)} {fmt_num(limit, lang, 1)}",
                          annotation_font=dict(color="#E69F00", size=15), annotation_position="bottom right")
    fig.update_layout(
        template=_NO_TEMPLATE, paper_bgcolor=PANEL, plot_bgcolor=PANEL, font=dict(family=FONT, color=TEXT, size=16),
        margin=dict(l=70, r=24, t=12, b=44), uirevision=f"detail-{sensor}", hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=15), bgcolor="rgba(0,0,0,0)"),
        xaxis=dict(gridcolor=GRID, zeroline=False, tickformat="%H:%M"),
        yaxis=dict(gridcolor=GRID, zeroline=False, title=dict(text=spec.unit, font=dict(size=15))),
    )
    return fig


def detail_extension(snap: Snapshot, recent: Mapping[str, np.ndarray], since: float, window: int
                     ) -> tuple[dict[str, list[list[Any]]], list[int], int] | None:
    """``extendData`` for the readings newer than ``since`` (None when there are none)."""
    xs, ys = _series(recent, snap.band_k, snap.warn_score, since, snap.city.utc_offset_s)
    if not xs[3]:
        return None
    return {"x": xs, "y": ys}, [0, 1, 2, 3, 4], int(window)


def status_label(snap: Snapshot, i: int, lang: str) -> str:
    return t(f"status.{STATUSES[int(snap.status[i])]}", lang)
