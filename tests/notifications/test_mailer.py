"""TICKZEN_SMTP_URL's three schemes, each against a real aiosmtpd server: plain SMTP, STARTTLS
with a login, and TLS from the start (a self-signed certificate the client is told to trust)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runner.mailer import Mailer, MailError, SMTPSettings
from tests.notifications.receivers import Inbox, MailServer
from tests.support.procs import free_port

USER, PASSWORD = "mailer", "s3cret:p@ss"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(),
                                                                PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Controller, Inbox]]:
    """STARTTLS required, then a login."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            tls_context=server_context(certificate), require_starttls=True,
                            auth_required=True, authenticator=authenticate)
    controller.start()
    yield controller, inbox
    controller.stop()


def message(to: str = "ann@example.com") -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = "Hello", "alerts@tickzen.example", to
    mail.set_content("text")
    return mail


def test_the_url_says_how_to_connect() -> None:
    plain = SMTPSettings.parse("smtp://user%40x:p%3Ass@mail.example:2525")
    assert (plain.host, plain.port, plain.security, plain.username, plain.password) == (
        "mail.example", 2525, "plain", "user@x", "p:ss")
    assert SMTPSettings.parse("smtps://mail.example").port == 465
    assert SMTPSettings.parse("smtp+starttls://mail.example").security == "starttls"
    assert SMTPSettings.parse("smtp+starttls://mail.example").port == 587
    assert SMTPSettings.parse("smtp://mail.example").port == 25
    assert "p:ss" not in repr(plain)
    for bad, reason in (("http://mail.example", "must start with"), ("smtp://", "no host"),
                        ("smtp://mail.example:port", "not a valid URL")):
        with pytest.raises(ValueError, match=reason):
            SMTPSettings.parse(bad)
    with pytest.raises(ValueError, match="MAIL_FROM"):
        Mailer(plain, "not an address")


def test_plain_smtp(mail_server: MailServer) -> None:
    Mailer.from_url(mail_server.url, "alerts@tickzen.example", timeout=5).send(message())
    [(to, received)] = mail_server.messages()
    assert to == ["ann@example.com"] and received["Subject"] == "Hello"


def test_starttls_with_a_login(tls_server: tuple[Controller, Inbox],
                               certificate: tuple[Path, Path]) -> None:
    controller, inbox = tls_server
    url = f"smtp+starttls://{USER}:{PASSWORD.replace(':', '%3A').replace('@', '%40')}" \
          f"@127.0.0.1:{controller.port}"
    Mailer.from_url(url, "alerts@tickzen.example", timeout=5,
                    ssl_context=client_context(certificate)).send(message())
    assert [to for to, _ in inbox.messages] == [["ann@example.com"]]
    wrong = Mailer.from_url(f"smtp+starttls://{USER}:wrong@127.0.0.1:{controller.port}",
                            "alerts@tickzen.example", timeout=5,
                            ssl_context=client_context(certificate))
    with pytest.raises(MailError) as refused:
        wrong.send(message())
    assert refused.value.retryable is False and "login" in str(refused.value)
    untrusted = Mailer.from_url(url, "alerts@tickzen.example", timeout=5)   # system CAs only
    with pytest.raises(MailError) as unverified:
        untrusted.send(message())
    assert unverified.value.retryable is True and len(inbox.messages) == 1


def test_tls_from_the_start(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            ssl_context=server_context(certificate))
    controller.start()
    try:
        Mailer.from_url(f"smtps://127.0.0.1:{controller.port}", "alerts@tickzen.example",
                        timeout=5, ssl_context=client_context(certificate)).send(message())
    finally:
        controller.stop()
    assert [to for to, _ in inbox.messages] == [["ann@example.com"]]
