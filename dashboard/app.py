"""The Dash app factory: ``create_app(source)`` builds the control room on one Flask server.

Nothing is loaded at import time: the ward GeoJSON is read when the app is
created, and the page is built from the source's current snapshot on every
page load (``app.layout`` is a function).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from dash import Dash

from dashboard.api import register_api
from dashboard.callbacks import register_callbacks
from dashboard.i18n import DEFAULT_LANG, add_strings, t
from dashboard.layout import build_layout
from dashboard.ogc import register_ogc
from dashboard.pages import register_pages
from dashboard.security import harden
from dashboard.signin import asker, has_asker, install_signin
from dashboard.source import SnapshotSource
from ioc.auth.store import AuthStore
from processing.access import Principal
from processing.admin_units import AdminUnits
from processing.layers import Layer

__all__ = ["create_app", "load_wards_geojson"]

_ASSETS = Path(__file__).resolve().parent / "assets"


def load_wards_geojson(path: str | Path | None) -> dict[str, Any] | None:
    """The ward polygons as plain GeoJSON for the map layers (None if there is no file)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return None
    data = json.loads(p.read_text(encoding="utf-8-sig"))
    # only what the map needs: geometry and name (smaller page)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f.get("properties", {}).get("name", "")},
         "geometry": f.get("geometry")} for f in data.get("features", []) if f.get("geometry")]}


def create_app(source: SnapshotSource, *, auth: AuthStore, wards: Mapping[str, Any] | None = None,
               wards_path: str | Path | None = None, refresh_ms: int = 1000, map_style: Any = None,
               lang: str = DEFAULT_LANG, clock: Callable[[], float] = time.time,
               loopback_open: tuple[str, ...] = ("/api/health", "/metrics"),
               layers: Sequence[Layer] = (), admin_units: AdminUnits | None = None) -> Dash:
    """The control-room Dash app reading ``source``; its Flask server is ``app.server``.

    Everyone signs in against ``auth`` (or sends an API token; :mod:`dashboard.signin`), and
    sees and may do what their role allows; ``loopback_open``: paths answered without either
    to a client on loopback (``()``: none).

    ``wards`` (parsed GeoJSON) or ``wards_path`` gives the ward layers; ``refresh_ms``
    the refresh period (at most 2000); ``map_style`` a plotly map style (default: the
    offline dark background; ``"white-bg"`` or a tile style name also work); ``layers``: the
    city's map layers (:func:`ioc.citydata.load_layers`), published with the sensors, alerts and
    wards by the OGC API at ``/ogc/`` (:mod:`dashboard.ogc`); ``admin_units``: the administrative
    units the wards are (their codes and parents in the OGC ``wards`` collection).
    """
    if not 100 <= refresh_ms <= 2000:
        raise ValueError(f"refresh_ms must be between 100 and 2000, got {refresh_ms}")
    ward_layers = wards if wards is not None else load_wards_geojson(wards_path)
    add_strings({f"layer.{lay.spec.id}": {"vi": lay.spec.name_vi, "en": lay.spec.name_en} for lay in layers})
    app = Dash(__name__, assets_folder=str(_ASSETS), title=f"{t('title', lang)} — {source.snapshot().city.text('title', lang)}",
               update_title=None, suppress_callback_exceptions=True, serve_locally=True)

    def has_history() -> bool:
        """Whether the source keeps a history to travel back in (the time bar is shown then)."""
        extent = getattr(source, "history_extent", None)
        return extent is not None and callable(getattr(source, "snapshot_at", None)) and extent() is not None

    def layout() -> Any:
        if not has_asker():
            # Dash checks the layout once, on the server's first request, before sign-in is looked
            # at; it is built for nobody then (a viewer's page, never sent: /_dash-layout needs sign-in)
            return build_layout(source.snapshot(), ward_layers, who=Principal("-", "viewer"), lang=lang,
                                refresh_ms=refresh_ms, map_style=map_style, layers=layers, history=has_history())
        me = asker()
        return build_layout(source.snapshot(), ward_layers, who=me.who, csrf=me.session.csrf if me.session else None,
                            lang=lang, refresh_ms=refresh_ms, map_style=map_style, layers=layers,
                            history=has_history())

    app.layout = layout
    install_signin(app, auth, clock=clock, loopback_open=loopback_open)
    register_callbacks(app, source, ward_layers, map_style=map_style, layers=layers)
    register_api(app.server, source)
    register_pages(app.server, source)
    register_ogc(app.server, source.snapshot, ward_layers, layers,
                 title=f"{t('title', lang)} — {source.snapshot().city.text('title', lang)}", lang=lang,
                 admin=admin_units)
    harden(app)
    return app
