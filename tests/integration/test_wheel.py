"""``pip install .`` (not editable) into a fresh virtual environment, then the ``ioc`` it installed,
run from a folder that is not the checkout: it finds its city, its broker templates and a data
folder of its own (issue 10: the city and deploy files ship as package data).

The venv sees the machine's site-packages for the dependencies (no download besides the build
backend), while the project itself comes from the built wheel: the test checks that ``ioc`` is
imported from the venv and not from this checkout."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from live import add_token, free_port, get_json, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(the venv's bin folder, an environment for it, a working folder outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # from a copy of the source (as an sdist would be): a build/ folder left in the checkout by
    # an earlier build would otherwise put files into the wheel that the source no longer has
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "var", "artifacts", "*.egg-info", "__pycache__", ".pytest_cache"))
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                          "--disable-pip-version-check", str(source)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("IOC_CITY_DIR", "IOC_DATA_DIR", "PYTHONPATH")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PYTHONDONTWRITEBYTECODE="1")
    work = root / "elsewhere"
    work.mkdir()
    return venv / "bin", env, work


def run(bin_dir: Path, env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> str:
    out = subprocess.run([str(bin_dir / "ioc"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"ioc {' '.join(args)}: {out.stderr[-2000:]}"
    return out.stdout


def test_the_wheel_holds_the_city_and_the_broker_templates(installed) -> None:
    bin_dir, env, work = installed
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "import json, ioc, ioc.paths as p; print(json.dumps([ioc.__file__, str(p.city_dir()), "
         "str(p.deploy_dir()), str(p.data_dir()), p.source_checkout() is None]))"],
        cwd=work, env=env, capture_output=True, text=True, check=True)
    module, city, deploy, data, installed_copy = json.loads(probe.stdout)
    venv = str(bin_dir.parent)
    assert module.startswith(venv) and city.startswith(venv) and deploy.startswith(venv), module
    assert installed_copy                                     # not this checkout
    assert data == env["XDG_DATA_HOME"] + "/city-ioc"         # never a folder inside site-packages
    for name in ("city.toml", "sensors.geojson", "wards.geojson", "alerting.toml"):
        assert (Path(city) / name).read_bytes() == (REPO / "config" / "bac_giang" / name).read_bytes()
    for name in ("mosquitto/mosquitto.conf", "kafka/server.properties", "kafka/pom.xml"):
        assert (Path(deploy) / name).read_bytes() == (REPO / "deploy" / name).read_bytes()


def test_installed_ioc_run_serves_the_control_room_from_another_folder(installed) -> None:
    bin_dir, env, work = installed
    port = free_port()
    proc = subprocess.Popen([str(bin_dir / "ioc"), "run", "--port", str(port), "--speed", "60",
                             "--preroll-hours", "1"], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/health").get("readings_total"), 120,
                 "readings scored by the installed ioc run")
        assert get_json(f"http://127.0.0.1:{port}/api/health")["sensors_total"] == 218   # the shipped city
        token = add_token(None, ioc=[str(bin_dir / "ioc")], cwd=work, env=env)   # its own data folder
        assert get_json(f"http://127.0.0.1:{port}/api/sensors/BG-ENV-001", token)["ward"]
        page_request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(page_request, timeout=10) as resp:
            page = resp.read().decode()
        assert resp.status == 200 and "_dash-config" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/assets/control_room.css", timeout=10) as resp:
            assert resp.status == 200 and len(resp.read()) > 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    store = Path(env["XDG_DATA_HOME"]) / "city-ioc" / "alerts" / "alerts.sqlite3"
    assert store.is_file()                                   # its data folder, outside the checkout
    assert (Path(env["XDG_DATA_HOME"]) / "city-ioc" / "checkpoint" / "core.ckpt").is_file()


def test_installed_simulate_detect_and_brokers_work_from_another_folder(installed) -> None:
    bin_dir, env, work = installed
    run(bin_dir, env, work, "simulate", "--out", "corpus", "--days", "0.2", "--seed", "3")
    csvs = sorted((work / "corpus").rglob("*.csv"))
    data = [p for p in csvs if "label" not in p.name]
    assert len(data) >= 218                                  # one file per sensor of the shipped city
    run(bin_dir, env, work, "detect", str(data[0]), "--out", "scored")
    scored = list((work / "scored").rglob("*.csv"))
    assert len(scored) == 1 and scored[0].read_text().count("\n") > 10
    status = run(bin_dir, env, work, "brokers", "status")
    assert "mqtt" in status and "kafka" in status and str(Path(env["XDG_DATA_HOME"]) / "city-ioc") in status


def test_the_wheel_leaves_the_benchmarks_out_and_says_where_they_run(installed) -> None:
    bin_dir, env, work = installed
    site = subprocess.run([str(bin_dir / "python"), "-c",
                           "import ioc, pathlib; print(pathlib.Path(ioc.__file__).parents[1])"],
                          cwd=work, env=env, capture_output=True, text=True, check=True).stdout.strip()
    names = {p.name for p in Path(site).glob("**/*.py") if "bench" in p.name or p.parent.name == "bench"}
    assert not [n for n in names if n.startswith("bench") or n.endswith("_bench.py")], names
    out = subprocess.run([str(bin_dir / "ioc"), "bench"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "source checkout" in out.stderr and "Traceback" not in out.stderr
