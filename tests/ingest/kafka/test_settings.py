"""``kafka://`` addresses: hosts, options, and the SASL/SCRAM and TLS parts -- the password never shown."""
from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ingest.kafka import KafkaSettings
from ingest.kafka.settings import KafkaTransportError
from ingest.sources import redact, scheme_of, SourceError


def test_a_plain_address_has_no_security_options() -> None:
    s = KafkaSettings.from_url("kafka://10.0.0.7:9092,10.0.0.8?group=w")
    assert s.bootstrap == "10.0.0.7:9092,10.0.0.8:9092" and s.username is None and not s.tls
    assert s.security_options() == {}


def test_user_and_password_mean_scram_and_tls_makes_it_sasl_ssl(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = KafkaSettings.from_url(f"kafka://ioc:p%40ss%3Aw0rd@10.0.0.7:9093?tls=1&ca={ca}&mechanism=scram-sha-512")
    assert (s.username, s.password, s.mechanism, s.tls, s.ca) == ("ioc", "p@ss:w0rd", "SCRAM-SHA-512", True, str(ca))
    with pytest.raises(ssl.SSLError):                 # the CA file is read when the context is made
        s.security_options()
    plain = KafkaSettings.from_url("kafka://ioc:pw@10.0.0.7:9093")
    opts = plain.security_options()
    assert opts == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                    "sasl_plain_username": "ioc", "sasl_plain_password": "pw"}
    tls_only = KafkaSettings.from_url("kafka://10.0.0.7:9093?tls=1").security_options()
    assert tls_only["security_protocol"] == "SSL" and isinstance(tls_only["ssl_context"], ssl.SSLContext)
    sasl_ssl = KafkaSettings.from_url("kafka://ioc:pw@10.0.0.7:9093?tls=true").security_options()
    assert sasl_ssl["security_protocol"] == "SASL_SSL" and sasl_ssl["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_the_password_is_in_no_repr_url_or_error() -> None:
    s = KafkaSettings.from_url("kafka://ioc:s3cret-pw@10.0.0.7:9093?tls=1")
    assert "s3cret-pw" not in repr(s) and "s3cret-pw" not in s.url
    for bad in ("kafka://ioc:s3cret-pw@10.0.0.7:9093?nope=1", "kafka://ioc:s3cret-pw@10.0.0.7:99999",
                "kafka://ioc:s3cret-pw@10.0.0.7:9093?mechanism=GSSAPI", "kafka://ioc:s3cret-pw@10.0.0.7:9093?tls=maybe",
                "kafka://ioc:s3cret-pw@10.0.0.7:9093?ca=/no/such/ca.pem"):
        with pytest.raises(KafkaTransportError) as err:
            KafkaSettings.from_url(bad)
        assert "s3cret-pw" not in str(err.value) and "10.0.0.7" in str(err.value), str(err.value)
    with pytest.raises(KafkaTransportError, match="no such file"):
        KafkaSettings.from_url("kafka://10.0.0.7:9093?ca=/no/such/ca.pem")
    with pytest.raises(KafkaTransportError, match="USER:PASSWORD"):
        KafkaSettings.from_url("kafka://ioc@10.0.0.7:9093")
    with pytest.raises(SourceError) as err:
        scheme_of("amqp://ioc:s3cret-pw@10.0.0.7")
    assert "s3cret-pw" not in str(err.value)


@pytest.mark.parametrize("url, shown", [
    ("kafka://ioc:pw@h:9093?tls=1", "kafka://ioc:***@h:9093?tls=1"),
    ("mqtts://u:p@w@h:8883/city/#", "mqtts://u:***@h:8883/city/#"),
    ("kafka://h:9092?group=g", "kafka://h:9092?group=g"),
    ("mqtt://h:1883/a@b", "mqtt://h:1883/a@b"),               # an @ in the path is not a user part
    ("not a url", "not a url"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_refusals_are_explained_in_a_line_a_user_can_act_on() -> None:
    s = KafkaSettings.from_url("kafka://ioc:pw@10.0.0.7:9093?tls=1")

    class AuthFailed(Exception):
        pass
    line = s.explain_connect(AuthFailed("Authentication failed during authentication due to invalid credentials"))
    assert "check the user name 'ioc'" in line and "SCRAM-SHA-256" in line and "pw@" not in line
    cert = s.explain_connect(ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate"))
    assert cert.startswith("TLS: the broker's certificate was not accepted") and "ca=" in cert
    assert "TLS (SSL or SASL_SSL) listener" in s.explain_connect(ssl.SSLError("wrong version number"))


def test_the_cause_of_a_refused_connection_is_heard_even_when_aiokafka_is_silenced() -> None:
    import logging

    from ingest.kafka.settings import ConnectCause

    logger = logging.getLogger("aiokafka")
    before = logger.level
    logger.setLevel(logging.CRITICAL)                   # as the transport benchmarks silence it
    try:
        with ConnectCause() as cause:
            logger.error('Unable connect to "127.0.0.1:9093": [Error 58] SaslAuthenticationFailed: bad')
        assert cause.text == "[Error 58] SaslAuthenticationFailed: bad"
        assert logger.level == logging.CRITICAL and cause not in logger.handlers
    finally:
        logger.setLevel(before)
