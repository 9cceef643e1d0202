"""``ioc brokers``: templates, PID bookkeeping, and the real Mosquitto and Kafka.

The integration tests run one BrokerSet of their own (not the session ``brokers``
fixture, which other tests keep running): start, status, a message through each broker
with its own C clients (``mosquitto_pub``/``mosquitto_sub``, ``kcat``), idempotent
start, a restart of each broker keeping a persisted message, stop. They run in file
order; the last one stops the brokers.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ioc import brokers as B
from ioc.brokers import BrokerError, BrokerSet, ensure_kafka_libs, kafka_version, new_cluster_id

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------
# Without brokers
# ----------------------------------------------------------------------------------

def test_templates_render_completely():
    conf = B._render(B.DEPLOY / "mosquitto" / "mosquitto.conf",
                     {"BIND": "127.0.0.1", "PORT": "1884", "DATA_DIR": "/d/mq", "USER": "ioc"})
    assert re.search(r"^listener 1884 127\.0\.0\.1$", conf, re.M)
    assert re.search(r"^persistence true$", conf, re.M)
    assert re.search(r"^persistence_location /d/mq/$", conf, re.M)
    assert re.search(r"^log_dest file /d/mq/mosquitto\.log$", conf, re.M)
    assert re.search(r"^max_queued_messages 100000$", conf, re.M)
    assert re.search(r"^#password_file ", conf, re.M) and re.search(r"^#listener 8883 ", conf, re.M)

    props = B._render(B.DEPLOY / "kafka" / "server.properties",
                      {"KAFKA_PORT": "9100", "CONTROLLER_PORT": "9101", "LOG_DIRS": "/d/kafka/data",
                       "KAFKA_DIR": "/d/kafka"})
    settings = dict(line.split("=", 1) for line in props.splitlines() if line and not line.startswith("#"))
    assert settings["process.roles"] == "broker,controller"
    assert settings["node.id"] == "1"
    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:9100,CONTROLLER://127.0.0.1:9101"
    assert settings["controller.quorum.bootstrap.servers"] == "127.0.0.1:9101"
    assert settings["log.dirs"] == "/d/kafka/data"
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["num.partitions"] == "6"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["group.initial.rebalance.delay.ms"] == "0"
    assert not any(k.startswith(("sasl.", "ssl.")) for k in settings)      # the SASL_SSL section: commented out
    assert re.search(r"^#ssl\.keystore\.location=/d/kafka/broker\.pem$", props, re.M)


def test_unknown_placeholder_is_an_error(tmp_path):
    template = tmp_path / "t.conf"
    template.write_text("port @PORT@\nhost @HOST@\n")
    with pytest.raises(BrokerError, match="@HOST@"):
        B._render(template, {"PORT": "1"})


def test_cluster_id_follows_kafka_rules():
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_version_matches_the_compose_image():
    compose = (REPO / "docker-compose.yml").read_text()
    tags = set(re.findall(r"image:\s*apache/kafka:(\S+)", compose))
    assert tags == {kafka_version()}


def test_cached_kafka_libs_do_not_call_maven(tmp_path):
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / f".ioc-kafka-{kafka_version()}").touch()
    assert ensure_kafka_libs(libs, mvn="/nonexistent/mvn") == kafka_version()


def test_missing_program_without_root_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(B.os, "geteuid", lambda: 1000)
    with pytest.raises(BrokerError, match=r"^no-such-broker-xyz not found: install Debian's pkg-a pkg-b "
                                          r"\(sudo apt-get install -y pkg-a pkg-b\)$"):
        B._require("no-such-broker-xyz", ["pkg-a", "pkg-b"], lambda _msg: None, tmp_path / "install.log")
    assert not (tmp_path / "install.log").exists()


def test_status_of_nothing_and_stale_pid_files(tmp_path):
    brokers = BrokerSet(tmp_path, mqtt_port=1, kafka_port=2)
    assert [(s.name, s.running, s.pid) for s in brokers.status()] == [("mosquitto", False, None),
                                                                        ("kafka", False, None),
                                                                        ("postgres", False, None)]
    # A PID file naming a live process that is not this broker (pytest itself), and one
    # naming no process at all: both stale, neither gets a signal.
    (tmp_path / "mosquitto").mkdir()
    (tmp_path / "mosquitto" / "mosquitto.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "kafka.pid").write_text("999999999\n")
    assert not any(s.running for s in brokers.status())
    assert brokers.stop() == ["postgres: not running", "kafka: not running", "mosquitto: not running"]
    assert not list(tmp_path.glob("*/*.pid"))


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ioc")
    B.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_status_when_stopped(tmp_path, capsys):
    assert _cli(["brokers", "status", "--data-dir", str(tmp_path), "--mqtt-port", "1999"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["mosquitto", "stopped", "-"] and "mqtt://127.0.0.1:1999" in out[0]
    assert out[1].split()[:4] == ["kafka", "stopped", "-", "127.0.0.1:9092"]
    assert out[2].split()[:4] == ["postgres", "stopped", "-", "postgresql://ioc:***@127.0.0.1:5432/ioc"]
    assert _cli(["brokers", "status", "--data-dir", str(tmp_path), "--only", "kafka"]) == 0
    assert capsys.readouterr().out.split()[0] == "kafka"


# ----------------------------------------------------------------------------------
# With the real brokers
# ----------------------------------------------------------------------------------

def _tool(name: str) -> str:
    path = B.find_program(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian: apt-get install -y mosquitto-clients kcat)")
    return path


def _run(cmd: list[str], timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True, **kw)


@pytest.fixture(scope="module")
def own_brokers(brokers_or_skip, kafka_libs, tmp_path_factory):
    brokers = BrokerSet.on_free_ports(tmp_path_factory.mktemp("own-brokers"), kafka_libs=kafka_libs)
    try:
        brokers.start()
    except BrokerError as exc:
        brokers.stop()
        pytest.fail(f"brokers did not start: {exc}", pytrace=False)
    yield brokers
    brokers.stop()
    brokers.postgres.remove()


@pytest.mark.integration
def test_start_reports_all_running(own_brokers):
    mq, kafka, pg = own_brokers.status()
    assert (mq.name, mq.running, mq.address) == ("mosquitto", True, f"mqtt://127.0.0.1:{own_brokers.mqtt_port}")
    assert (kafka.name, kafka.running, kafka.address) == ("kafka", True, own_brokers.kafka_bootstrap)
    assert (pg.name, pg.running, pg.address) == ("postgres", True, f"postgresql://ioc:***@127.0.0.1:"
                                                                   f"{own_brokers.postgres_port}/ioc")
    for st in (mq, kafka, pg):
        assert st.pid and Path(f"/proc/{st.pid}").exists()
        assert (st.data_dir / f"{st.name}.pid").read_text().strip() == str(st.pid)
        assert st.log.exists() and st.data_dir.parent == own_brokers.data_dir
        # Own process group: a Ctrl-C in the terminal that started them does not reach them.
        assert os.getpgid(st.pid) == st.pid
    assert b"kafka.Kafka" in Path(f"/proc/{kafka.pid}/cmdline").read_bytes()
    for port in (own_brokers.mqtt_port, own_brokers.kafka_port, own_brokers.kafka_controller_port,
                 own_brokers.postgres_port):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


@pytest.mark.integration
def test_topics_created_with_their_partitions(own_brokers):
    meta = json.loads(_run([_tool("kcat"), "-L", "-J", "-b", own_brokers.kafka_bootstrap]).stdout)
    partitions = {t["topic"]: len(t["partitions"]) for t in meta["topics"]}
    assert {t: partitions.get(t) for t in B.KAFKA_TOPICS} == {"ioc.readings": 6, "ioc.alerts": 1,
                                                              "ioc.deadletter": 1, "ioc.scores": 6,
                                                              "ioc.alert-events": 6}


@pytest.mark.integration
def test_second_start_is_idempotent(own_brokers, kafka_libs, capsys):
    pids = own_brokers.pids()
    lines = own_brokers.start()
    assert [ln.split(",")[0] for ln in lines] == ["mosquitto: already running", "kafka: already running",
                                                  "postgres: already running"]
    assert own_brokers.pids() == pids
    # The command line says the same and exits 0.
    args = ["--data-dir", str(own_brokers.data_dir), "--mqtt-port", str(own_brokers.mqtt_port),
            "--kafka-port", str(own_brokers.kafka_port),
            "--kafka-controller-port", str(own_brokers.kafka_controller_port), "--kafka-libs", str(kafka_libs),
            "--postgres-port", str(own_brokers.postgres_port)]
    assert _cli(["brokers", "start", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("already running") == 3
    assert own_brokers.postgres.password() not in out        # the address is printed without the password
    # The jars are cached: no Maven run (a Maven that fails would raise).
    assert ensure_kafka_libs(kafka_libs, mvn="/bin/false") == kafka_version()


@pytest.mark.integration
def test_port_taken_is_one_clear_error(own_brokers, tmp_path):
    other = BrokerSet(tmp_path, mqtt_port=own_brokers.mqtt_port, kafka_port=B.free_port())
    with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{own_brokers.mqtt_port} is already in use"):
        other.start("mqtt")
    assert other.pids()["mqtt"] is None


@pytest.mark.integration
def test_mqtt_message_through_mosquitto(own_brokers):
    pub, sub = _tool("mosquitto_pub"), _tool("mosquitto_sub")
    port = str(own_brokers.mqtt_port)
    listener = subprocess.Popen([sub, "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "city/test/roundtrip",
                                 "-C", "1", "-W", "20"], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while listener.poll() is None and time.monotonic() < deadline:   # until the subscriber is in
            _run([pub, "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "city/test/roundtrip",
                  "-m", '{"id":"BG-T1","ts":1700000000,"v":42.5}'])
            time.sleep(0.2)
        out, _ = listener.communicate(timeout=5)
    finally:
        listener.kill()
    assert out.strip() == '{"id":"BG-T1","ts":1700000000,"v":42.5}'


@pytest.mark.integration
def test_kafka_message_through_kafka(own_brokers):
    kcat = _tool("kcat")
    b = own_brokers.kafka_bootstrap
    _run([kcat, "-P", "-b", b, "-t", "ioc.readings", "-k", "BG-T2"], input='{"id":"BG-T2","ts":1,"v":7}\n')
    out = _run([kcat, "-C", "-b", b, "-t", "ioc.readings", "-o", "beginning", "-e", "-q", "-f", "%k %s\n"]).stdout
    assert 'BG-T2 {"id":"BG-T2","ts":1,"v":7}' in out.splitlines()


@pytest.mark.integration
def test_mosquitto_restart_keeps_a_persistent_session(own_brokers):
    pub, sub = _tool("mosquitto_pub"), _tool("mosquitto_sub")
    port = str(own_brokers.mqtt_port)
    session = [sub, "-h", "127.0.0.1", "-p", port, "-V", "5", "-c", "-i", "ioc-test-persistent", "-x", "600",
               "-q", "1", "-t", "city/test/persist/#"]
    _run([*session, "-E"])   # subscribe, then go away leaving the session behind
    _run([pub, "-h", "127.0.0.1", "-p", port, "-V", "5", "-q", "1", "-t", "city/test/persist/a", "-m", "queued"])
    before = own_brokers.pids()["mqtt"]
    lines = own_brokers.restart("mqtt")
    assert lines[0].startswith("mosquitto: stopped") and lines[1].startswith("mosquitto: started")
    assert own_brokers.pids()["mqtt"] not in (None, before)
    assert not Path(f"/proc/{before}").exists()
    # The queued message was saved on shutdown and is delivered when the session returns.
    assert _run([*session, "-C", "1", "-W", "10"]).stdout.strip() == "queued"


@pytest.mark.integration
def test_kafka_restart_keeps_messages(own_brokers):
    kcat = _tool("kcat")
    b = own_brokers.kafka_bootstrap
    _run([kcat, "-P", "-b", b, "-t", "ioc.alerts", "-k", "A1"], input='{"alert":"A1"}\n')
    before = own_brokers.pids()["kafka"]
    lines = own_brokers.restart("kafka")
    assert lines[0].startswith("kafka: stopped") and lines[1].startswith("kafka: started")
    assert own_brokers.pids()["kafka"] not in (None, before)
    out = _run([kcat, "-C", "-b", b, "-t", "ioc.alerts", "-o", "beginning", "-e", "-q", "-f", "%k %s\n"]).stdout
    assert 'A1 {"alert":"A1"}' in out.splitlines()


@pytest.mark.integration
def test_postgres_takes_only_password_logins_on_loopback(own_brokers):
    import psycopg

    url = own_brokers.postgres_url
    with psycopg.connect(url) as conn:
        user, db, addr = conn.execute("SELECT current_user, current_database(), inet_server_addr()").fetchone()
        assert (user, db, str(addr)) == ("ioc", "ioc", "127.0.0.1")
        conn.execute("CREATE TABLE IF NOT EXISTS survives (n int)")
        conn.execute("INSERT INTO survives VALUES (7)")
    wrong = url.replace(own_brokers.postgres.password(), "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    assert (own_brokers.postgres.password_file.stat().st_mode & 0o077) == 0
    lines = own_brokers.restart("postgres")
    assert lines[0].startswith("postgres: stopped") and lines[1].startswith("postgres: started")
    with psycopg.connect(url) as conn:     # the data outlives a restart
        assert conn.execute("SELECT n FROM survives").fetchall() == [(7,)]


@pytest.mark.integration
def test_stop_ends_all_and_removes_pid_files(own_brokers):
    pids = own_brokers.pids()
    assert all(pids.values())
    lines = own_brokers.stop()
    assert [ln.split(",")[0] for ln in lines] == ["postgres: stopped", "kafka: stopped", "mosquitto: stopped"]
    assert all("killed" not in ln for ln in lines), lines   # all left on SIGTERM
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists()
    assert not list(own_brokers.data_dir.glob("*/*.pid"))
    assert not any(s.running for s in own_brokers.status())
    for port in (own_brokers.mqtt_port, own_brokers.kafka_port, own_brokers.postgres_port):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert own_brokers.stop() == ["postgres: not running", "kafka: not running", "mosquitto: not running"]
