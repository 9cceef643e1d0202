"""One machine's alert store copied into the cluster's (``ioc alerts copy-to-postgres``): every row,
ids kept, and the copy goes on where the original stopped -- against both backends as the target."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from ioc.alerting import load_config
from ioc.alerting.cli import add_parsers
from ioc.alerting.dispatcher import AlertService
from ioc.alerting.store import _TABLES, AlertStore, StoreError
from ioc.citydata import default_city_dir, load_registry
from processing.batch import ReadingBatch
from processing.reasons import Reason

CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
CFG = load_config(CITY / "alerting.toml", wards=REG.wards, sensor_ids=REG.ids)
T0 = 1772412000.0


class _Scores:
    def __init__(self, n: int) -> None:
        self.alert = np.ones(n, bool)
        self.score = np.full(n, 0.9)
        self.reasons = np.full(n, int(Reason.DEVIATION), dtype=np.uint16)


def _flag(svc: AlertService, sensors: list[int], t: float, horizon: dict | None = None) -> None:
    svc.step(ReadingBatch.from_arrays(sensors, [t] * len(sensors), [900.0] * len(sensors)), _Scores(len(sensors)),
             None, t, horizon=horizon)


def _seeded(folder: Path) -> AlertService:
    """A store with alerts, events, deliveries, an acknowledgement, an assignment, a resolution, a
    queued command, the audit log and a horizon, as a shift leaves it."""
    svc = AlertService(REG, CFG, AlertStore.in_folder(folder))
    _flag(svc, [0, 5, 40], T0)
    ids = sorted(r.id for r in svc.open_alerts())
    svc.acknowledge(ids[0], "Lan", T0 + 60, "đang xử lý", role="duty", address="10.0.0.7")
    svc.resolve(ids[1], "Minh", T0 + 120, "đã sửa", role="duty", address="10.0.0.8")
    svc.store.queue_command("Hoa", "acknowledge", ids[2], "", T0 + 130, role="operator", address="10.0.0.9")
    _flag(svc, [40, 41], T0 + 150, horizon={"source": "sim:seed=5", "t": T0 + 150})
    return svc


def _rows(store: AlertStore) -> dict[str, list[tuple]]:
    out = {}
    for table in _TABLES:
        cur = store._db.execute(f"SELECT * FROM {table}")
        cols = [d[0] for d in cur.description]
        out[table] = sorted(tuple(sorted(zip(cols, (round(v, 6) if isinstance(v, float) else v for v in r))))
                            for r in cur.fetchall())
    return out


def _target(store_at: str | None, tmp_path: Path) -> AlertStore:
    return AlertStore(store_at or tmp_path / "cluster" / AlertStore.FILENAME)


def test_every_row_is_copied_ids_kept_and_the_copy_goes_on(tmp_path: Path, store_at: str | None) -> None:
    svc = _seeded(tmp_path / "one")
    source = svc.store
    with _target(store_at, tmp_path) as target:
        copied = source.copy_into(target)
        assert copied["alerts"] == 4 and copied["audit"] >= 2 and copied["commands"] == 1 and copied["meta"] == 1
        assert copied["notifications"] > 0 and copied["events"] > 3
        assert _rows(target) == _rows(source)
        assert target.horizon() == source.horizon()
        # the cluster's service goes on from there: next ids after the copied ones, nothing re-sent
        svc2 = AlertService(REG, CFG, target)
        assert sorted(r.id for r in svc2.open_alerts()) == sorted(r.id for r in svc.open_alerts())
        _flag(svc2, [77], T0 + 200)
        (new,) = [r for r in svc2.open_alerts() if r.alert.sensor == 77]
        assert new.id == max(a.alert.id for a in source.alerts(None)) + 1
        svc2.acknowledge(new.id, "Lan", T0 + 210, role="duty", address="10.0.0.7")
        audit = target.audit_log(1000)
        assert len({e for e in audit}) == len(audit) == copied["audit"] + 1
        cid = target.queue_command("Hoa", "resolve", new.id, "x", T0 + 220)
        assert cid > max(r[0] for r in source._db.execute("SELECT id FROM commands").fetchall())
        assert not math.isnan(target.alerts(None)[0].alert.opened_at)
    source.close()


def test_a_store_that_holds_alerts_already_is_not_merged_into(tmp_path: Path, store_at: str | None) -> None:
    svc = _seeded(tmp_path / "one")
    with _target(store_at, tmp_path) as target:
        svc.store.copy_into(target)
        with pytest.raises(StoreError, match="holds alerts or an audit log already"):
            svc.store.copy_into(target)
        with pytest.raises(StoreError, match="into itself"):
            svc.store.copy_into(svc.store)
    svc.store.close()


@pytest.mark.integration
def test_the_command_copies_into_postgresql(tmp_path: Path, pg_schema: str, capsys, monkeypatch) -> None:
    svc = _seeded(tmp_path / "one")
    svc.store.close()
    p = argparse.ArgumentParser(prog="ioc")
    add_parsers(p.add_subparsers(dest="command", required=True))
    monkeypatch.delenv("IOC_POSTGRES_URL", raising=False)
    args = p.parse_args(["alerts", "copy-to-postgres", "--data", str(tmp_path / "one")])
    assert args.func(args) == 2 and "set IOC_POSTGRES_URL" in capsys.readouterr().err
    monkeypatch.setenv("IOC_POSTGRES_URL", pg_schema)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "4 alerts" in out and "1 commands" in out
    password = urlsplit(pg_schema).password
    assert password and password not in out                                     # no password printed
    with AlertStore(pg_schema) as target, AlertStore.in_folder(tmp_path / "one") as source:
        assert _rows(target) == _rows(source)
    assert args.func(args) == 2 and "holds alerts" in capsys.readouterr().err
