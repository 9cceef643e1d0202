"""docker-compose.yml is valid, without a Docker engine: Debian's ``docker-compose``
(the Python v1 tool) checks and resolves the file offline with ``config``."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not installed (Debian: apt-get install -y docker-compose); "
                    "it validates docker-compose.yml without a Docker engine")
    return exe


def _config(docker_compose: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([docker_compose, "-f", str(COMPOSE), "config", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid(docker_compose):
    result = _config(docker_compose, "-q")
    assert result.returncode == 0, result.stderr


def test_compose_services_and_loopback_ports(docker_compose):
    services = _config(docker_compose, "--services")
    assert services.returncode == 0, services.stderr
    assert {"mosquitto", "kafka", "ioc", "postgres", "worker-1", "worker-2", "alerting-1", "alerting-2",
            "dashboard-1", "dashboard-2"} <= set(services.stdout.split())
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load(COMPOSE.read_text())
    ports = {name: svc.get("ports", []) for name, svc in spec["services"].items()}
    # Every published port binds to loopback only ("127.0.0.1:host:container").
    assert all(isinstance(p, str) and p.startswith("127.0.0.1:") for ps in ports.values() for p in ps), ports
    assert {p.split(":")[1] for ps in ports.values() for p in ps} == {"1883", "9092", "8050", "8051", "8052"}
    assert ports["ioc"] == ["127.0.0.1:8050:8050"]


def test_compose_wiring():
    text = COMPOSE.read_text()
    assert "image: eclipse-mosquitto:2" in text and "image: apache/kafka:" in text
    assert "./deploy/mosquitto:" in text
    assert "image: postgres:15" in text and text.count('"ioc", "worker", "--source"') == 2
    assert "ioc.scores:6 ioc.alert-events:6" in text
    assert text.count('"ioc", "alerting", "--source"') == 2      # the owner and its standby
    assert text.count('"ioc", "dashboard", "--source"') == 1 and "<<: *dashboard" in text
    assert '"ioc", "run", "--host", "0.0.0.0", "--source", "kafka://kafka:9092"' in text
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "RUN pip install ." in dockerfile and "EXPOSE 8050" in dockerfile
