"""WebServer: uvicorn on 127.0.0.1 serving the app, over plain HTTP and over TLS with a self-signed certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onca.api.server import WebServer, WebServerError
from onca.deploy.stacks import home_context

from .conftest import deploy_home


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "web.crt", directory / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def fetch(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def test_serves_http_on_the_deployed_address(tmp_path: Path) -> None:
    home = deploy_home(tmp_path / "home")
    ctx = home_context(home)
    assert ctx is not None
    configured = json.loads((home / "config" / "web.json").read_text())["listen"]
    server = WebServer(ctx).start()
    try:
        assert server.address == configured and server.url == f"http://{configured}"
        status, headers, body = fetch(f"{server.url}/login")
        assert status == 200 and "Sign in" in body and headers["x-frame-options"] == "DENY"
        assert "server" not in headers
        status, _, body = fetch(f"{server.url}/api/v1/me")
        assert status == 401 and json.loads(body)["detail"].startswith("sign in first")
        with pytest.raises(WebServerError, match="could not listen"):
            WebServer(ctx).start()  # the address is taken
    finally:
        server.stop()


def test_serves_tls_with_the_certificate_parameters(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    home = deploy_home(tmp_path / "home", WebCertificateFile=str(cert), WebCertificateKeyFile=str(key))
    ctx = home_context(home)
    assert ctx is not None
    server = WebServer(ctx).start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(cert))
        status, headers, body = fetch(f"{server.url}/login", trusting)
        assert status == 200 and "Sign in" in body
        assert headers["strict-transport-security"].startswith("max-age=")
        assert "Secure" in headers["set-cookie"]  # the pre-login cookie; session cookies alike
        with pytest.raises(urllib.error.URLError):
            fetch(f"{server.url}/login")  # not trusted without the certificate
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            fetch(f"http://{server.address}/login")  # no plain HTTP on the TLS port
    finally:
        server.stop()
