"""E-mail over SMTP with STARTTLS and AUTH against a real in-process aiosmtpd server (self-signed CA)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Iterator

import pytest

from ioc.alerting.channels import EmailChannel, SmtpSettings
from ioc.alerting.store import Delivery

controller = pytest.importorskip("aiosmtpd.controller")
x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / "smtp.crt", tmp / "smtp.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


class Box:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope, session.authenticated))
        return "250 OK"


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[Box, int, Path]]:
    crt, pem = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, pem)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult
        return AuthResult(success=(data.login, data.password) == (b"ioc", b"mat-khau"))

    box = Box()
    ctl = controller.Controller(box, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                                authenticator=auth, auth_required=True)
    ctl.start()
    yield box, port, crt
    ctl.stop()


def test_email_with_starttls_and_auth(tls_smtp: tuple[Box, int, Path]) -> None:
    box, port, ca = tls_smtp
    ch = EmailChannel(SmtpSettings("127.0.0.1", port, sender="ioc@bacgiang.gov.vn", username="ioc",
                                   password="mat-khau", starttls=True, cafile=str(ca)))
    payload = {"text": {"vi": {"subject": "[IOC Bắc Giang #3] Cảnh báo mới: Vượt ngưỡng – Ngô Quyền",
                               "headline": "h", "description": "Vị trí: phường Ngô Quyền", "instruction": "i"},
                        "en": {"subject": "s", "headline": "h", "description": "Where: Ngô Quyền", "instruction": "i"}},
               "cap": "<?xml version=\"1.0\"?><alert/>"}
    ch.send(Delivery("3:5:email:an", 3, 5, "opened", "Alert", "email", "an.nv@ioc.bacgiang.example.vn", "an", 0,
                     payload, "pending", 0, "", 0.0, 0.0, None))
    ((env, authed),) = box.messages
    assert authed and env.rcpt_tos == ["an.nv@ioc.bacgiang.example.vn"]
    msg = message_from_bytes(env.original_content, policy=default_policy)
    assert msg["Subject"] == "[IOC Bắc Giang #3] Cảnh báo mới: Vượt ngưỡng – Ngô Quyền"
    assert msg["X-IOC-Idempotency-Key"] == "3:5:email:an"
    body = msg.get_body(("plain",)).get_content()
    assert "Vị trí: phường Ngô Quyền" in body and "Where: Ngô Quyền" in body
    (att,) = list(msg.iter_attachments())
    assert att.get_content_type() == "application/cap+xml"
