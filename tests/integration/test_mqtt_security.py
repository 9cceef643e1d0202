"""MQTT with a password file and TLS, against a real Mosquitto run from the project's own template.

``deploy/mosquitto/mosquitto.conf`` ends with two optional, commented-out sections,
"Password file" and "TLS listener".  This module renders the template as
``ioc brokers start`` does (:func:`ioc.brokers._render`), uncomments exactly the
lines those sections tell a user to uncomment, moves the TLS listener from 8883 to a
free port, and runs ``mosquitto -c`` on it with a password file made by
``mosquitto_passwd`` and a self-signed certificate for 127.0.0.1.  Then:

* a reading published by ``mosquitto_pub`` over TLS with the password arrives at
  :class:`ingest.mqtt.MqttSource` on ``mqtts://ioc:…@…?ca=…`` and decodes to the reading sent;
* on the plain listener the right password receives, a wrong one and no user at all
  are refused with a one-line :class:`ingest.mqtt.MqttError` that names the address
  and never shows the password;
* a client trusting another CA does not connect, and says so in one line, in bounded time.

The broker is this module's own (not the session ``brokers`` fixture, whose Mosquitto
runs the template without these sections) and is stopped through its ``Popen``.
"""
from __future__ import annotations

import asyncio
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from certs import self_signed, uncomment
from ingest.mqtt import MqttError, MqttSettings, MqttSource
from ingest.formats import decode_many
from ingest.sources import Feed
from processing.registry import Registry

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_passwd") is None,
                                 reason="needs Debian's mosquitto and mosquitto-clients")]

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
HOST = "127.0.0.1"
T0 = 1772412000.0            # 2026-03-02 00:40 UTC
SENSOR = "BG-ENV-014"
USER = "ioc"
# Every wait is bounded so a broken broker or client fails the test instead of hanging the suite.
START_TIMEOUT_S = 10.0
STEP_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 3.0      # MqttSettings.connect_timeout_s for connections expected to fail

# The lines of the optional sections, as commented in the template; each must occur exactly once.
PASSWORD_LINES = ("password_file @DATA_DIR@/passwd", "allow_anonymous false")
TLS_LINES = ("listener 8883 @BIND@", "cafile @DATA_DIR@/server.crt", "certfile @DATA_DIR@/server.crt",
             "keyfile @DATA_DIR@/server.key", "tls_version tlsv1.2", "require_certificate false")


@dataclass(frozen=True)
class SecureBroker:
    port: int                # plain listener (password required)
    tls_port: int            # TLS listener (password required too: the password file is global)
    ca: Path                 # the server's self-signed certificate = its CA
    other_ca: Path           # a second self-signed certificate that did not sign the server's
    password: str
    folder: Path


@pytest.fixture(scope="module")
def registry() -> Registry:
    from ioc.citydata import default_city_dir, load_registry

    return load_registry(default_city_dir() / "sensors.geojson")


# ------------------------------------------------------------------------------- the broker

def render_secure_config(folder: Path, port: int, tls_port: int) -> str:
    """The template rendered as ``ioc brokers start`` renders it, with both optional sections switched on.

    The only edits to the template are the ones its comments tell a user to make:
    uncomment the two "Password file" lines and the six "TLS listener" lines; and
    the TLS port 8883 becomes ``tls_port`` (a free port, so tests never clash).

    The earlier ``allow_anonymous true`` of the plain listener is deliberately left
    as it is, because that is what a user following the template gets.  Mosquitto 2.0
    (without ``per_listener_settings``) keeps ``allow_anonymous`` and ``password_file``
    as global settings for every listener, and a later line overrides an earlier one,
    so the final ``allow_anonymous false`` wins: anonymous clients are refused on
    both listeners (:func:`test_plain_listener_needs_the_password` checks it rather
    than trusting it).
    """
    from ioc.brokers import _render

    text = _render(TEMPLATE, {"BIND": HOST, "PORT": str(port), "DATA_DIR": str(folder),
                              "USER": pwd.getpwuid(os.geteuid()).pw_name})
    template = TEMPLATE.read_text(encoding="utf-8")
    for line in PASSWORD_LINES + TLS_LINES:
        assert f"\n#{line}\n" in template + "\n", f"{TEMPLATE}: the optional line {'#' + line!r} changed"
        rendered = line.replace("@DATA_DIR@", str(folder)).replace("@BIND@", HOST)
        text = uncomment(text, rendered, TEMPLATE)
    text, n = re.subn(rf"^listener 8883 {re.escape(HOST)}$", f"listener {tls_port} {HOST}", text, flags=re.M)
    assert n == 1
    assert len(re.findall(r"^allow_anonymous ", text, flags=re.M)) == 2    # true (listener), then false (last wins)
    return text


def _wait_listening(proc: subprocess.Popen, ports: list[int], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while waiting:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited with {proc.returncode} before listening: "
                        f"{log.read_text(errors='replace') if log.exists() else ''}", pytrace=False)
        try:
            with socket.create_connection((HOST, waiting[0]), timeout=0.5):
                waiting.pop(0)
                continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"mosquitto does not listen on {HOST}:{waiting} after {timeout:g} s: "
                        f"{log.read_text(errors='replace') if log.exists() else ''}", pytrace=False)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory):
    from ioc.brokers import find_program, free_port

    mosquitto = find_program("mosquitto")
    if mosquitto is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)")
    folder = tmp_path_factory.mktemp("mosquitto-secure")
    password = f"pw-{secrets.token_hex(8)}"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(folder / "passwd"), USER, password],
                   check=True, capture_output=True, timeout=30)
    ca, _ = self_signed(folder, "server")             # the names the template's TLS section expects
    other_dir = folder / "other"
    other_dir.mkdir()
    other_ca, _ = self_signed(other_dir, "other")
    port = free_port()
    tls_port = free_port()
    while tls_port == port:
        tls_port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(render_secure_config(folder, port, tls_port), encoding="utf-8")
    log = folder / "mosquitto.log"
    proc = subprocess.Popen([mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(proc, [port, tls_port], log, START_TIMEOUT_S)
        yield SecureBroker(port, tls_port, ca, other_ca, password, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


# ------------------------------------------------------------------------------- helpers

def _unique() -> str:
    return uuid.uuid4().hex[:8]


def _url(scheme: str, port: int, prefix: str, *, user: str | None = None, password: str | None = None,
         ca: Path | None = None) -> str:
    auth = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
    query = f"client_id=c{prefix}" + (f"&ca={quote(str(ca), safe='')}" if ca else "")
    return f"{scheme}://{auth}{HOST}:{port}/{prefix}/#?{query}"


def _reading(sensor: str, ts: float, value: float) -> bytes:
    return f'{{"id":"{sensor}","ts":{ts!r},"v":{value!r}}}'.encode()


def mosquitto_pub(*args: str, payload: bytes, topic: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mosquitto_pub", "-h", HOST, *args, "-u", USER, "-P", password, "-V", "mqttv5",
                           "-q", "1", "-t", topic, "-m", payload.decode()],
                          capture_output=True, timeout=STEP_TIMEOUT_S)


async def _first_messages(src: MqttSource, timeout: float = STEP_TIMEOUT_S):
    """The first non-empty delivery (acknowledged), or fail after ``timeout`` s."""
    async def run():
        async for delivery in src.deliveries(idle_s=0.2):
            if delivery.messages:
                await src.commit(delivery)
                return delivery
    try:
        return await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"nothing arrived at {src.name} within {timeout} s")


async def _refused(url: str, **overrides) -> tuple[str, float]:
    """The one-line MqttError of connecting to ``url`` (fails if it connects), and how long it took."""
    t0 = time.monotonic()
    with pytest.raises(MqttError) as info:
        async def connect() -> None:
            async with MqttSource(MqttSettings.from_url(url, connect_timeout_s=CONNECT_TIMEOUT_S, **overrides)):
                pass
        await asyncio.wait_for(connect(), CONNECT_TIMEOUT_S + 5)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message, message
    return message, time.monotonic() - t0


# ------------------------------------------------------------------------------- tests

async def test_tls_with_password_delivers_a_reading_from_mosquitto_pub(secure_broker: SecureBroker, registry):
    """mqtts:// with ?ca= and user:password receives what mosquitto_pub --cafile -u -P sent to the TLS listener."""
    b = secure_broker
    prefix = f"t{_unique()}"
    topic = f"{prefix}/bg/environment/{SENSOR}"
    payload = _reading(SENSOR, T0 + 60.0, 41.25)
    settings = MqttSettings.from_url(_url("mqtts", b.tls_port, prefix, user=USER, password=b.password, ca=b.ca))
    assert settings.tls and settings.ca == b.ca and settings.port == b.tls_port and settings.username == USER
    assert b.password not in settings.url

    async with MqttSource(settings) as src:
        done = await asyncio.to_thread(mosquitto_pub, "-p", str(b.tls_port), "--cafile", str(b.ca),
                                       payload=payload, topic=topic, password=b.password)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        delivery = await _first_messages(src)
    assert list(delivery.messages) == [(topic, payload)]
    assert delivery.token, "a QoS 1 message carries its message id for the PUBACK"
    assert src.messages_acked == 1

    decoded = decode_many(delivery.messages, registry=registry, received=delivery.received)
    assert decoded.dead == ()
    assert len(decoded.batch) == 1
    assert int(decoded.batch.sensor[0]) == registry.index_of(SENSOR)
    assert float(decoded.batch.ts[0]) == pytest.approx(T0 + 60.0)
    assert float(decoded.batch.value[0]) == pytest.approx(41.25)

    # The password file is global in Mosquitto 2.0: the TLS listener refuses anonymous clients as well.
    message, _ = await _refused(_url("mqtts", b.tls_port, f"a{_unique()}", ca=b.ca))
    assert f"mqtts://{HOST}:{b.tls_port}/" in message and "Not authorized" in message, message


async def test_plain_listener_needs_the_password(secure_broker: SecureBroker, registry):
    """Right password: readings flow (through Feed); wrong password or no user: a one-line refusal, no secret shown."""
    b = secure_broker
    prefix = f"t{_unique()}"
    topic = f"{prefix}/bg/environment/{SENSOR}"
    readings = [(T0 + 120.0, 17.5), (T0 + 180.0, 18.0)]
    async with MqttSource(MqttSettings.from_url(_url("mqtt", b.port, prefix, user=USER, password=b.password))) as src:
        feed = Feed(src, registry, idle_s=0.2)
        for ts, v in readings:
            done = await asyncio.to_thread(mosquitto_pub, "-p", str(b.port), payload=_reading(SENSOR, ts, v),
                                           topic=topic, password=b.password)
            assert done.returncode == 0, done.stderr.decode(errors="replace")

        async def take(n: int) -> list[tuple[int, float, float]]:
            got: list[tuple[int, float, float]] = []
            async for item in feed:
                got += zip(item.batch.sensor.tolist(), item.batch.ts.tolist(), item.batch.value.tolist())
                await feed.commit(item)
                if len(got) >= n:
                    return got
            return got
        got = await asyncio.wait_for(take(len(readings)), STEP_TIMEOUT_S)
    i = registry.index_of(SENSOR)
    assert got == [(i, ts, v) for ts, v in readings]
    assert feed.stats().deadletters == 0 and feed.stats().duplicates == 0

    wrong = f"wrong-{secrets.token_hex(8)}"
    message, took = await _refused(_url("mqtt", b.port, f"w{_unique()}", user=USER, password=wrong))
    assert message.startswith(f"mqtt://{USER}:***@{HOST}:{b.port}/"), message
    # Mosquitto 2.0 answers a wrong password with CONNACK reason 0x87 "Not authorized" (as for no user);
    # 0x86 "Bad user name or password" is accepted too (other brokers or versions).
    assert re.search(r": the broker refused the connection: (Not authorized|Bad user name or password) "
                     rf"\(check the user name '{USER}' and its password\)$", message), message
    assert wrong not in message and b.password not in message
    assert took < CONNECT_TIMEOUT_S, f"a refused password is fatal at once, not a timeout ({took:.1f} s)"

    message, took = await _refused(_url("mqtt", b.port, f"n{_unique()}"))
    assert message.startswith(f"mqtt://{HOST}:{b.port}/"), message
    assert "the broker refused the connection: Not authorized (the broker wants a user name and password" \
        in message, message
    assert took < CONNECT_TIMEOUT_S, f"a refused anonymous client is fatal at once, not a timeout ({took:.1f} s)"


async def test_tls_with_the_wrong_ca_does_not_connect(secure_broker: SecureBroker):
    """A client trusting another CA never talks MQTT to the broker; it fails at once, in one line
    naming the address and the certificate problem (paho alone would retry until the timeout and
    call the broker unreachable)."""
    b = secure_broker
    prefix = f"x{_unique()}"
    url = _url("mqtts", b.tls_port, prefix, user=USER, password=b.password, ca=b.other_ca)
    message, took = await _refused(url)
    assert message.startswith(f"cannot connect to mqtts://{USER}:***@{HOST}:{b.tls_port}/"), message
    assert "TLS: the broker's certificate was not accepted (" in message and "check ca=" in message, message
    assert b.password not in message
    assert took < CONNECT_TIMEOUT_S / 2, f"a refused certificate is reported at once, not after a timeout ({took:.1f} s)"

    # the host name is checked too: the certificate names 127.0.0.1, not localhost
    message, took = await _refused(_url("mqtts", b.tls_port, prefix, user=USER, password=b.password, ca=b.ca)
                                   .replace(f"@{HOST}:", "@localhost:"))
    assert "TLS: the broker's certificate was not accepted (" in message, message
    assert took < CONNECT_TIMEOUT_S / 2, f"took {took:.1f} s"

    # TLS to the plain listener: a handshake failure that says where to look
    message, _ = await _refused(_url("mqtts", b.port, prefix, user=USER, password=b.password, ca=b.ca))
    assert "TLS handshake failed (" in message and "TLS port?" in message, message
    # The broker saw no MQTT client from it (the handshake failed before CONNECT).
    log = (b.folder / "mosquitto.log").read_text(errors="replace")
    assert f"as c{prefix}" not in log
