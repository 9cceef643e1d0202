"""Shared by the broker security tests: a self-signed certificate for 127.0.0.1, and switching on
the optional, commented-out lines of a broker template exactly as its comments tell a user to."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for CN=127.0.0.1 with subjectAltName IP:127.0.0.1 (Python checks IP SANs),
    and its unencrypted PKCS#8 key (what Mosquitto and Kafka's PEM keystore both read)."""
    crt, key = folder / f"{name}.crt", folder / f"{name}.key"
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
                        "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True, timeout=60)
        return crt, key
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip("needs the openssl command or the cryptography package to make a test certificate")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(private, hashes.SHA256()))
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key.chmod(0o600)
    return crt, key


def uncomment(text: str, line: str, template: Path) -> str:
    """``text`` (rendered from ``template``) with its ``#<line>`` made active (exactly one such line must exist)."""
    new, n = re.subn(rf"^#{re.escape(line)}$", lambda m: line, text, flags=re.M)
    assert n == 1, f"{template}: expected one commented line {'#' + line!r}, found {n}"
    return new
