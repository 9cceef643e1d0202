"""``ioc alerts …`` / ``ioc roster now`` and the TOML loader's one-line errors."""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ioc.alerting import load_config
from ioc.alerting.cli import add_parsers
from ioc.alerting.dispatcher import AlertService
from ioc.alerting.store import AlertStore
from ioc.citydata import default_city_dir, load_registry
from processing.alerting.config import ConfigError
from processing.batch import ReadingBatch
from processing.reasons import Reason

CITY = default_city_dir()
REG = load_registry(CITY / "sensors.geojson")
CFG = load_config(CITY / "alerting.toml", wards=REG.wards, sensor_ids=REG.ids)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=7))).timestamp()


def run(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="ioc")
    add_parsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(list(argv))
    return int(args.func(args))


def seeded(tmp: Path) -> AlertService:
    svc = AlertService(REG, CFG, AlertStore.in_folder(tmp))

    class S:
        alert = np.array([True])
        score = np.array([0.9])
        reasons = np.array([int(Reason.DEVIATION)], dtype=np.uint16)
    svc.step(ReadingBatch.from_arrays([0], [T0], [900.0]), S, None, T0)
    return svc


def test_load_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def test_roster_now(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("roster", "now", "--at", "2026-03-03T02:00:00+07:00") == 0
    out = capsys.readouterr().out
    assert "Đội điều hành giao thông [giao_thong]: Lê Quang Cường" in out and "+07:00" in out


def test_list_ack_queue_and_resolve_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svc = seeded(tmp_path)
    assert run("alerts", "list", "--data", str(tmp_path)) == 0
    assert "BG-TRF-001" in capsys.readouterr().out
    # queued for the running pipeline, applied on its next step
    assert run("alerts", "ack", "1", "--by", "Nguyễn Văn An", "--comment", "đã nhận", "--data", str(tmp_path),
               "--wait", "0") == 0
    assert "queued" in capsys.readouterr().out
    assert svc.apply_commands(T0 + 60) == 1
    assert svc.engine.get(1).alert.acknowledged_by == "Nguyễn Văn An"
    assert svc.store.acknowledgements(1)[0][0] == "Nguyễn Văn An"
    svc.store.close()
    assert run("alerts", "resolve", "1", "--by", "Trần Thị Bình", "--comment", "đã xử lý", "--offline",
               "--data", str(tmp_path)) == 0
    with AlertStore.in_folder(tmp_path) as store:
        (a,) = store.alerts()
        assert (a.alert.state, a.alert.resolved_by, a.alert.comment) == ("resolved", "Trần Thị Bình", "đã xử lý")
        assert [x[2] for x in store.audit_log()] == ["resolve", "acknowledge"]
    assert run("alerts", "resolve", "1", "--by", "x", "--offline", "--data", str(tmp_path)) == 2
    assert "already resolved" in capsys.readouterr().err
    assert run("alerts", "deliveries", "--data", str(tmp_path)) == 0
    assert "pending=" in capsys.readouterr().out
    assert run("audit", "list", "--data", str(tmp_path)) == 0                  # newest first, local time
    lines = capsys.readouterr().out.splitlines()
    # who, with role and address: taken with 'ioc alerts' on this machine, so local, from the CLI
    assert lines[0].split()[1:7] == ["Trần", "Thị", "Bình", "(local)", "cli", "resolve"]
    assert lines[0].endswith("1  đã xử lý")
    assert "Nguyễn Văn An (local)" in lines[1] and "acknowledge" in lines[1] and lines[2] == "2 action(s)"
    assert lines[0].split()[0].endswith("+07:00")
    assert run("audit", "list", "--json", "--limit", "1", "--data", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert '"actor": "Trần Thị Bình"' in out and '"role": "local"' in out and '"address": "cli"' in out
    assert run("audit", "list", "--data", str(tmp_path / "none")) == 2
    assert "no alert store yet" in capsys.readouterr().err
