"""Fixtures shared by every test folder.

``brokers`` -- Mosquitto, a single-node Kafka (KRaft) and PostgreSQL from ``ioc.brokers``, started
once per test session on free loopback ports in a temporary data folder, with the
topics ``ioc.readings`` (6 partitions), ``ioc.alerts`` and ``ioc.deadletter``; stopped
at the end of the session. Use it from integration tests::

    @pytest.mark.integration
    def test_something(brokers):
        brokers.mqtt_port, brokers.kafka_bootstrap      # "127.0.0.1:<port>"
        brokers.postgres_url                             # postgresql://ioc:PASSWORD@127.0.0.1:<port>/ioc
        brokers.restart("kafka")                         # fault injection, data kept
        # from async code: await asyncio.to_thread(brokers.restart, "mqtt")

The Kafka jars come from Maven Central once and are cached in
``<repo>/var/cache/kafka-libs`` (``$IOC_KAFKA_LIBS`` to move it), so only the first
session on a machine runs Maven. Broker tests are skipped, with the reason, when the
programs are missing and cannot be installed (not root), or with ``IOC_SKIP_BROKERS=1``;
a broker that is there but fails to start fails the test instead.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


def _brokers_unavailable(kafka_libs: Path) -> str | None:
    """Why the brokers cannot run on this machine, or None if they can."""
    from ioc.brokers import find_program, kafka_version

    if os.environ.get("IOC_SKIP_BROKERS", "").strip() not in ("", "0"):
        return "IOC_SKIP_BROKERS is set"
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if find_program("mosquitto") is None and not can_install:
        return "mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients) and we are not root"
    if find_program("java") is None and not can_install:
        return "java is not installed (apt-get install -y default-jre-headless) and we are not root"
    cached = (kafka_libs / f".ioc-kafka-{kafka_version()}").exists()
    if not cached and find_program("mvn") is None and not can_install:
        return f"mvn is not installed (apt-get install -y maven) and {kafka_libs} holds no Kafka jars"
    return None


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The shared Kafka jar cache (filled by Maven on first use)."""
    from ioc.brokers import shared_kafka_libs

    return shared_kafka_libs()


@pytest.fixture(scope="session")
def brokers_or_skip(kafka_libs: Path) -> None:
    """Skips the test, with the reason, when brokers cannot run on this machine."""
    reason = _brokers_unavailable(kafka_libs)
    if reason:
        pytest.skip(f"real brokers unavailable: {reason}")


@pytest.fixture(scope="session")
def brokers(brokers_or_skip: None, kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Mosquitto + Kafka for the whole session (an ``ioc.brokers.BrokerSet``)."""
    from ioc.brokers import BrokerError, BrokerSet

    brokers = BrokerSet.on_free_ports(tmp_path_factory.mktemp("brokers"), kafka_libs=kafka_libs)
    try:
        brokers.start()
    except BrokerError as exc:
        brokers.stop()
        pytest.fail(f"brokers did not start: {exc}", pytrace=False)
    yield brokers
    brokers.stop()
    brokers.postgres.remove()      # as root its cluster lives outside the session's folder


@pytest.fixture
def pg_schema(brokers) -> Iterator[str]:
    """The address of a fresh schema of the session's PostgreSQL (dropped afterwards): one test's own database."""
    import uuid

    from ioc.pg import connect

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with connect(brokers.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{brokers.postgres_url}?options=-csearch_path%3D{schema}"
    with connect(brokers.postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
