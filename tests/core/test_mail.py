"""Email over real SMTP servers on 127.0.0.1: plain, STARTTLS with login, implicit TLS, and failures."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onca.core.mail import MailError, SmtpServer, send_mail

from .conftest import Mailbox, free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def test_plain_smtp(smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    send_mail(box.url, "onca@example.com", "admin@example.com", "Your Onca invite", "Open http://x/invite?token=T")
    assert len(box.messages) == 1
    message = box.messages[0]
    assert (message["From"], message["To"], message["Subject"]) == (
        "onca@example.com", "admin@example.com", "Your Onca invite")
    assert "invite?token=T" in message.get_payload(decode=True).decode()
    assert box.envelopes[0].rcpt_tos == ["admin@example.com"]


def test_starttls_is_used_when_offered_and_login_works(smtp_server: Callable[..., Mailbox],
                                                       certificate: tuple[Path, Path]) -> None:
    seen: list[tuple[str, str, bool]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        seen.append((auth_data.login.decode(), auth_data.password.decode(), session.ssl is not None))
        ok = auth_data.password == b"p@ss word"
        return AuthResult(success=ok, handled=ok)  # handled=False: the server answers 535 itself

    box = smtp_server(tls_context=server_context(certificate), require_starttls=True, authenticator=authenticator)
    url = f"smtp://mailer%40example.com:p%40ss%20word@{box.host}:{box.port}"
    send_mail(url, "onca@example.com", ["a@example.com", "b@example.com"], "s", "b",
              ssl_context=client_context(certificate))
    assert seen == [("mailer@example.com", "p@ss word", True)]  # credentials only ever went over TLS
    assert box.envelopes[0].rcpt_tos == ["a@example.com", "b@example.com"]

    bad = f"smtp://mailer:wrong@{box.host}:{box.port}"
    with pytest.raises(MailError, match="login as 'mailer' refused: 535"):
        send_mail(bad, "onca@example.com", "a@example.com", "s", "b", ssl_context=client_context(certificate))


def test_starttls_certificate_is_verified(smtp_server: Callable[..., Mailbox],
                                          certificate: tuple[Path, Path]) -> None:
    box = smtp_server(tls_context=server_context(certificate), require_starttls=True)
    with pytest.raises(MailError, match="TLS failed: CERTIFICATE_VERIFY_FAILED"):
        send_mail(box.url, "onca@example.com", "a@example.com", "s", "b")  # system trust store: self-signed fails
    assert box.messages == []


def test_smtps_implicit_tls(smtp_server: Callable[..., Mailbox], certificate: tuple[Path, Path]) -> None:
    box = smtp_server(ssl_context=server_context(certificate))
    send_mail(f"smtps://{box.host}:{box.port}", "onca@example.com", "a@example.com", "hello", "over TLS",
              ssl_context=client_context(certificate))
    assert box.messages[0]["Subject"] == "hello"


def test_connection_refused_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there any more
    with pytest.raises(MailError, match=rf"smtp://127.0.0.1:{port}: cannot connect"):
        send_mail(f"smtp://127.0.0.1:{port}", "onca@example.com", "a@example.com", "s", "b", timeout=5)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts and never says a word (a stuck SMTP relay)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_timeout_is_a_clear_error(silent_server: int) -> None:
    with pytest.raises(MailError, match=r"no answer within 0\.5s"):
        send_mail(f"smtp://127.0.0.1:{silent_server}", "onca@example.com", "a@example.com", "s", "b", timeout=0.5)


def test_refused_recipient() -> None:
    class Refuse:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            return "550 no such user"

    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        expected = re.escape("every recipient was refused: nobody@example.com (550 no such user)")
        with pytest.raises(MailError, match=expected):
            send_mail(f"smtp://127.0.0.1:{port}", "onca@example.com", "nobody@example.com", "s", "b")
    finally:
        controller.stop()


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://relay.example.com", ("relay.example.com", 25, False, "", "")),
    ("smtps://u:p@relay.example.com", ("relay.example.com", 465, True, "u", "p")),
    ("smtp://relay.example.com:2525", ("relay.example.com", 2525, False, "", "")),
])
def test_url_parsing(url: str, expected: tuple[Any, ...]) -> None:
    server = SmtpServer.from_url(url)
    assert (server.host, server.port, server.implicit_tls, server.username, server.password) == expected


def test_bad_url() -> None:
    with pytest.raises(MailError, match="SmtpUrl must look like"):
        SmtpServer.from_url("http://relay.example.com")
