"""Kafka with SCRAM passwords over TLS, against a real Kafka run from the project's own template.

``deploy/kafka/server.properties`` ends with an optional, commented-out "SASL_SSL listener"
section.  This module prepares a broker as ``ioc brokers start`` does
(:class:`ioc.brokers.KafkaBroker`: the template rendered, the storage formatted), then does
what the section tells a user to: a PEM key + certificate for 127.0.0.1, the nine lines
uncommented (the listener moved from ``0.0.0.0:9093`` to a free loopback port), and the user
``ioc`` added on the running broker with ``kafka.admin.ConfigCommand``.  Then:

* the IOC's own producer and consumer (``kafka://ioc:PASSWORD@…?tls=1&ca=…``) carry a
  labelled stream; the consumer scores exactly what the embedded path scores;
* a wrong password, and a client trusting another CA, each fail in bounded time with one
  line that says which and never shows the password;
* ``ioc run --source kafka://ioc:PASSWORD@…`` scores the readings and prints the address
  with the password hidden.

The broker is this module's own (the session ``brokers`` fixture runs the template as
it is) and is stopped through its ``Popen``.
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from certs import self_signed, uncomment
from ingest.formats import encode
from ingest.kafka import KafkaSettings, KafkaSink, KafkaSource, KafkaTransportError
from ingest.sources import Feed
from live import free_port, get_json, make_topics, wait_for
from scored_feeds import Scored, assert_same_as_embedded, city_registry, consume

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "kafka" / "server.properties"
HOST = "127.0.0.1"
USER = "ioc"
T0 = 1772412000.0
SECTION = (  # the optional lines, as the template comments them (rendered)
    "listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c},SASL_SSL://0.0.0.0:9093",
    "advertised.listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c},SASL_SSL://kafka.example:9093",
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
    "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
    "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule"
    " required;",
    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule"
    " required;",
    "ssl.keystore.type=PEM",
    "ssl.keystore.location={d}/broker.pem",
    "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
)


@dataclass(frozen=True)
class SecureKafka:
    plain: str               # 127.0.0.1:port, no authentication (loopback only)
    secure_port: int         # the SASL_SSL listener
    ca: Path
    other_ca: Path
    password: str

    def url(self, password: str | None = None, ca: Path | None = None, **query: str) -> str:
        q = "&".join([f"tls=1&ca={ca or self.ca}"] + [f"{k}={v}" for k, v in query.items()])
        return f"kafka://{USER}:{quote(password or self.password, safe='')}@{HOST}:{self.secure_port}?{q}"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def secure_kafka(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory):
    from ioc.brokers import _Kafka as KafkaBroker   # the class `ioc brokers start` runs Kafka with
    from ioc.brokers import find_program, free_ports

    if find_program("java") is None:
        pytest.skip("needs Java 17 (apt-get install -y default-jre-headless)")
    folder = tmp_path_factory.mktemp("kafka-secure")
    port, controller, secure = free_ports(3)
    broker = KafkaBroker(folder, port, controller, kafka_libs, say=lambda line: None)
    command = broker.prepare()                            # rendered and formatted as `ioc brokers start` does
    text = broker.config_file.read_text(encoding="utf-8")
    template = TEMPLATE.read_text(encoding="utf-8")
    for line in SECTION:
        raw = line.format(p="@KAFKA_PORT@", c="@CONTROLLER_PORT@", d="@KAFKA_DIR@")
        assert f"\n#{raw}\n" in template + "\n", f"{TEMPLATE}: the optional line {'#' + raw!r} changed"
        text = uncomment(text, line.format(p=port, c=controller, d=folder), TEMPLATE)
    text, n = re.subn(r"SASL_SSL://(0\.0\.0\.0|kafka\.example):9093", f"SASL_SSL://{HOST}:{secure}", text)
    assert n == 2
    broker.config_file.write_text(text, encoding="utf-8")
    crt, key = self_signed(folder, "broker")              # one PEM: the key, then the certificate
    (folder / "broker.pem").write_bytes(key.read_bytes() + crt.read_bytes())
    other = folder / "other"
    other.mkdir()
    other_ca, _ = self_signed(other, "other")
    password = f"pw-{secrets.token_hex(8)}"
    log = open(folder / "kafka-secure.log", "wb")
    proc = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not (_listening(port) and _listening(secure)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Kafka did not listen on {port} and {secure}: "
                            f"{(folder / 'kafka-secure.log').read_text(errors='replace')[-3000:]}", pytrace=False)
            time.sleep(0.2)
        java = find_program("java")
        add_user = broker._java_cmd(java, "kafka.admin.ConfigCommand", "--bootstrap-server", f"{HOST}:{port}",
                                    "--alter", "--add-config", f"SCRAM-SHA-256=[password={password}]",
                                    "--entity-type", "users", "--entity-name", USER)
        done = subprocess.run(add_user, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        yield SecureKafka(f"{HOST}:{port}", secure, crt, other_ca, password)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def _start_with_retry(client, seconds: float = 30.0) -> None:
    """A new SCRAM user reaches the broker's credential cache a moment after ConfigCommand returns."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await client.start()
            return
        except KafkaTransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _produce(settings: KafkaSettings, messages: list) -> None:
    """Send ``messages`` with the IOC's own producer, authenticated as ``settings`` say."""
    sink = KafkaSink(settings)
    await _start_with_retry(sink)
    try:
        await sink.send_readings(messages)
        await sink.flush()
    finally:
        await sink.close()


async def test_readings_over_sasl_ssl_are_scored_as_embedded(secure_kafka: SecureKafka) -> None:
    registry = city_registry()
    from simulators.city import CitySimulator

    stream, labels = CitySimulator(registry, seed=31, anomaly_rate=6.0).generate(T0, T0 + 2 * 3600)
    assert labels
    topic = f"secure{uuid.uuid4().hex[:8]}"
    await make_topics(secure_kafka.plain, (topic, 3))
    settings = KafkaSettings.from_url(secure_kafka.url(topic=topic, group=f"g{topic}"))
    assert settings.security_options()["security_protocol"] == "SASL_SSL"
    await _produce(settings, encode(stream, registry))
    scored = Scored(registry)
    async with KafkaSource(settings) as src:
        await consume(Feed(src, registry, last_seen=scored.core.last_seen), scored, len(stream), timeout=90)
    assert_same_as_embedded(registry, stream, scored)


async def test_a_wrong_password_is_one_clear_line_without_the_password(secure_kafka: SecureKafka) -> None:
    await _produce(KafkaSettings.from_url(secure_kafka.url()), [])     # the right password works by now
    wrong = f"wrong-{secrets.token_hex(6)}"
    started = time.monotonic()
    with pytest.raises(KafkaTransportError) as err:
        async with KafkaSource(KafkaSettings.from_url(secure_kafka.url(password=wrong, group="gw"))):
            pass
    message = str(err.value)
    assert time.monotonic() - started < 60
    assert "\n" not in message and wrong not in message and secure_kafka.password not in message
    assert f"check the user name '{USER}' and its password" in message, message
    assert f"{HOST}:{secure_kafka.secure_port}" in message
    print(f"\nwrong password: {message}")


async def test_a_client_trusting_another_ca_does_not_connect_and_says_so(secure_kafka: SecureKafka) -> None:
    started = time.monotonic()
    with pytest.raises(KafkaTransportError) as err:
        async with KafkaSink(KafkaSettings.from_url(secure_kafka.url(ca=secure_kafka.other_ca))):
            pass
    message = str(err.value)
    assert time.monotonic() - started < 60 and "\n" not in message and secure_kafka.password not in message
    assert "TLS: the broker's certificate was not accepted" in message, message
    print(f"\nanother CA: {message}")


def test_ioc_run_scores_readings_from_a_sasl_ssl_source_and_hides_the_password(secure_kafka: SecureKafka,
                                                                                tmp_path: Path) -> None:
    registry = city_registry()
    topic = f"run{uuid.uuid4().hex[:8]}"
    asyncio.run(make_topics(secure_kafka.plain, (topic, 1), ("ioc.alerts", 1), ("ioc.deadletter", 1)))
    url = secure_kafka.url(topic=topic, group=f"g{topic}")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ioc.cli", "run", "--port", str(port), "--source", url,
                             "--data-dir", str(tmp_path / "var")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/health")["status"], 90, "the server")
        from simulators.city import CitySimulator

        now = time.time()
        stream, _ = CitySimulator(registry, seed=32, anomaly_rate=0.0).generate(now - 3600, now)

        asyncio.run(_produce(KafkaSettings.from_url(url), encode(stream, registry)))
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/health")["readings_total"] >= len(stream), 90,
                 "every reading scored by ioc run")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output[-3000:]
    assert secure_kafka.password not in output and quote(secure_kafka.password, safe="") not in output
    assert f"readings from kafka://{USER}:***@{HOST}:{secure_kafka.secure_port}" in output, output[:2000]
