"""Hand-built snapshots for the dashboard tests (no pipeline needed)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from dashboard.source import Health, Kpis, Metrics, SensorExtras, Snapshot
from ioc.citydata import load_city
from processing.alerts import Alert
from processing.kinds import KINDS
from processing.registry import Registry, SensorSpec
from tests.dashboard.fakes import PASSWORD, USERS

T0 = 1_772_420_400.0     # 2026-03-02 10:00 local
CITY = load_city()       # the shipped city: Bắc Giang, UTC+7


def small_registry() -> Registry:
    rows = [("BG-TRF-001", "avg_speed", "Ngô Quyền", 106.195, 21.275),
            ("BG-ENV-001", "water_level", "Song Mai", 106.155, 21.302),
            ("BG-ENV-010", "pm25", "Ngô Quyền", 106.1945, 21.2738),
            ("BG-UTL-001", "water_pressure", "Trần Phú", 106.197, 21.274),
            ("BG-UTL-030", "feeder_load", "Đa Mai", 106.19, 21.28)]
    limits = {"water_level": (None, 6.3), "pm25": (None, 150.0), "water_pressure": (1.0, None),
              "feeder_load": (None, 10.0)}
    return Registry(tuple(
        SensorSpec(id=i, name=f"Trạm {KINDS[k].label_vi} – {w}", domain=KINDS[k].domain, kind=k, unit=KINDS[k].unit,
                   ward=w, lon=x, lat=y, interval_s=300.0, limit_low=limits.get(k, (None, None))[0],
                   limit_high=limits.get(k, (None, None))[1])
        for i, k, w, x, y in rows))


def alert(i: int, sensor: int, *, kind: str = "deviation", severity: str = "warning", state: str = "open",
          opened: float = T0 - 120.0, rev: int = 1, value: float = 5.0, **kw: Any) -> Alert:
    reg = small_registry()
    return Alert(id=i, sensor=sensor, sensor_id=reg.sensors[sensor].id, kind=kind, severity=severity, state=state,
                 opened_at=opened, last_at=opened, peak_score=0.9, last_value=value, reasons=1, readings=3,
                 rev=rev, **kw)


@pytest.fixture
def make_snapshot() -> Callable[..., Snapshot]:
    def make(*, seq: int = 5, status: list[int] | None = None, status_rev: list[int] | None = None,
             alerts: tuple[Alert, ...] = (), run_id: str = "run1", kpis: Kpis | None = None,
             health: Health | None = None, sim_time: float = T0) -> Snapshot:
        reg = small_registry()
        n = len(reg)
        extras = SensorExtras.empty(n)
        extras.alert_levels[1] = [4.3, 5.3, 6.3]
        extras.rated[4] = 10.0
        return Snapshot(
            run_id=run_id, seq=seq, sim_time=sim_time, wall_time=1000.0, speed=60.0, registry=reg, extras=extras,
            last_value=np.array([35.0, 2.5, 30.0, 2.2, 6.0]), last_ts=np.full(n, sim_time - 30.0),
            score=np.array([0.1, 0.2, 0.9, 0.0, 0.3]),
            status=np.array(status if status is not None else [0, 0, 2, 0, 3], dtype=np.int8),
            status_rev=np.array(status_rev if status_rev is not None else [1, 1, 1, 1, 1], dtype=np.int64),
            alerts=alerts, alerts_rev=max((a.rev for a in alerts), default=0),
            kpis=kpis or Kpis(traffic_speed=35.2, traffic_congested=1, traffic_sites=4, aqi=87.0, aqi_category=1,
                              aqi_sensor=2, aqi_hour=T0 - 3600.0, aqi_stations=1, flood_level=2.5, flood_sensor=1,
                              flood_stage=0, pressure_min=2.2, pressure_sensor=3, feeder_total=6.0,
                              feeder_max_pct=60.0, feeder_sensor=4, online=4, total=5, stale=1, never=0),
            health=health or Health(status="ok", readings_per_s=12.5, readings_total=1000, deadletters_total=2,
                                    alerts_open=1, alerts_active=1, newest_age_s=12.0),
            metrics=Metrics(readings_total=1000, deadletters_total=2), city=CITY)
    return make


@pytest.fixture
def wards() -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Ngô Quyền"}, "geometry": {"type": "Polygon", "coordinates": [
            [[106.18, 21.26], [106.21, 21.26], [106.21, 21.29], [106.18, 21.29], [106.18, 21.26]]]}},
        {"type": "Feature", "properties": {"name": "Song Mai"}, "geometry": {"type": "Polygon", "coordinates": [
            [[106.14, 21.29], [106.17, 21.29], [106.17, 21.31], [106.14, 21.31], [106.14, 21.29]]]}},
    ]}


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    return alert


# ------------------------------------------------------------------ sign-in


@pytest.fixture(scope="session")
def auth(tmp_path_factory):
    """One user store for the dashboard tests: a user of every role, and a duty officer of
    another team (``giao``); Argon2 hashing takes ~0.15 s a user, so it is made once."""
    import time

    from ioc.auth.store import AuthStore

    store = AuthStore.in_folder(tmp_path_factory.mktemp("auth"))
    for name, (role, teams) in USERS.items():
        store.add_user(name, role, PASSWORD, time.time(), teams=teams)
    yield store
    store.close()


def _sign_in(client, name: str, password: str = PASSWORD):
    r = client.post("/login", data={"name": name, "password": password})
    assert r.status_code == 303, r.data
    client.environ_base["HTTP_X_CSRFTOKEN"] = client.get_cookie("_csrf_token").value
    return client


@pytest.fixture
def sign_in() -> Callable[..., Any]:
    """``sign_in(client, name)``: signs a Flask test client in as ``name``; it then sends the CSRF
    header Dash's renderer sends (``X-CSRFToken``, from the ``_csrf_token`` cookie)."""
    return _sign_in
