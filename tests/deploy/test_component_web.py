"""The web component with real self-signed certificates made by `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onca.deploy.components import web
from onca.deploy.parameters import resolve
from onca.deploy.resources import DeployContext, ResourceFailure


def context(home: Path, **params: Any) -> tuple[DeployContext, list[str]]:
    values, _ = resolve({"FirstUserEmail": "admin@example.com", **params}, None)
    warnings: list[str] = []
    ctx = DeployContext(home=home, stack_name="onca-test", params=values, version="0.1.0", first_deploy=True,
                        warn=warnings.append)
    return ctx, warnings


def make_cert(directory: Path, names: list[str], days: float = 365, expired: bool = False,
              key_of: Path | None = None, ip: str = "") -> tuple[Path, Path]:
    """A self-signed certificate for `names` and its key (or another key, written to the key file, when
    `key_of` names a key file to reuse for a mismatch)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired else \
        (now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "onca-test")])
    alt: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    if ip:
        alt.append(x509.IPAddress(ipaddress.ip_address(ip)))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end))
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key_of is not None:
        key_path.write_bytes(key_of.read_bytes())
    else:
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return cert_path, key_path


def tls_params(cert: Path, key: Path, **more: str) -> dict[str, str]:
    return {"WebCertificateFile": str(cert), "WebCertificateKeyFile": str(key), **more}


def read_config(home: Path) -> dict[str, Any]:
    return json.loads((home / "config" / "web.json").read_text())


def test_plain_http_create_recreate_update_delete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx, warnings = context(home)
    resource = web.WebConfig()
    props = resource.properties(ctx)
    assert json.loads(json.dumps(props)) == props
    outputs = resource.create(ctx, props)
    expected = {"listen": "127.0.0.1:8000", "tls": False, "certificate": "", "key": "", "custom_domain": "",
                "public_url": "http://127.0.0.1:8000"}
    assert read_config(home) == expected
    assert outputs["public_url"] == "http://127.0.0.1:8000" and outputs["tls"] is False
    assert resource.create(ctx, props) == outputs and read_config(home) == expected

    moved, _ = context(home, WebListenAddress="0.0.0.0:9443")
    new = resource.properties(moved)
    updated = resource.update(moved, props, new, outputs)
    assert read_config(home)["listen"] == "0.0.0.0:9443"
    assert updated["public_url"] == "http://localhost:9443"  # a wildcard bind is reached through localhost
    assert warnings == []

    resource.delete(moved, new, updated)
    assert not (home / "config" / "web.json").exists()
    resource.delete(moved, new, updated)


def test_tls_with_custom_domain_covered_by_a_wildcard(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", ["*.example.com", "example.com"])
    ctx, warnings = context(tmp_path / "home", CustomDomain="onca.example.com", **tls_params(cert, key))
    resource = web.WebConfig()
    outputs = resource.create(ctx, resource.properties(ctx))
    config = read_config(tmp_path / "home")
    assert config == {"listen": "127.0.0.1:8000", "tls": True, "certificate": str(cert), "key": str(key),
                      "custom_domain": "onca.example.com", "public_url": "https://onca.example.com"}
    assert outputs["certificate_names"] == ["*.example.com", "example.com"]
    expires = dt.datetime.fromisoformat(outputs["certificate_expires"])
    assert expires - dt.datetime.now(dt.UTC) > dt.timedelta(days=360)
    assert warnings == []


def test_tls_without_domain_uses_the_listen_address(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", ["localhost"], ip="::1")
    ctx, _ = context(tmp_path / "home", WebListenAddress="[::1]:8443", **tls_params(cert, key))
    outputs = web.WebConfig().create(ctx, web.WebConfig().properties(ctx))
    assert outputs["public_url"] == "https://[::1]:8443"
    assert outputs["certificate_names"] == ["localhost", "::1"]


def test_certificate_expiring_soon_warns(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", ["onca.example.com"], days=10)
    ctx, warnings = context(tmp_path / "home", CustomDomain="onca.example.com", **tls_params(cert, key))
    web.WebConfig().create(ctx, web.WebConfig().properties(ctx))
    assert len(warnings) == 1 and "expires on" in warnings[0] and "9 day(s) left" in warnings[0]
    assert read_config(tmp_path / "home")["tls"] is True


def test_expired_certificate_fails(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", ["onca.example.com"], expired=True)
    ctx, _ = context(tmp_path / "home", **tls_params(cert, key))
    with pytest.raises(ResourceFailure, match="expired on"):
        web.WebConfig().create(ctx, web.WebConfig().properties(ctx))
    assert not (tmp_path / "home" / "config" / "web.json").exists()


def test_certificate_for_another_domain_fails(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", ["other.example.org", "*.example.com"])
    ctx, _ = context(tmp_path / "home", CustomDomain="deep.onca.example.com", **tls_params(cert, key))
    with pytest.raises(ResourceFailure) as failure:
        web.WebConfig().create(ctx, web.WebConfig().properties(ctx))
    assert "CustomDomain" in str(failure.value) and "does not cover deep.onca.example.com" in str(failure.value)
    assert "other.example.org, *.example.com" in str(failure.value)


def test_certificate_without_subject_alt_names_does_not_cover_a_domain(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", [])
    ctx, _ = context(tmp_path / "home", CustomDomain="onca.example.com", **tls_params(cert, key))
    with pytest.raises(ResourceFailure, match="no subjectAltName"):
        web.WebConfig().create(ctx, web.WebConfig().properties(ctx))


def test_mismatched_key_fails(tmp_path: Path) -> None:
    _, other_key = make_cert(tmp_path / "other", ["onca.example.com"])
    cert, key = make_cert(tmp_path / "tls", ["onca.example.com"], key_of=other_key)
    ctx, _ = context(tmp_path / "home", **tls_params(cert, key))
    with pytest.raises(ResourceFailure, match="is not the private key of the certificate"):
        web.WebConfig().create(ctx, web.WebConfig().properties(ctx))


@pytest.mark.parametrize("broken, message", [
    ("cert", "WebCertificateFile: cannot read"),
    ("key", "WebCertificateKeyFile: cannot read"),
    ("garbage-cert", "is not a PEM certificate"),
    ("garbage-key", "WebCertificateKeyFile: cannot load the key"),
])
def test_unreadable_or_invalid_files_fail_clearly(tmp_path: Path, broken: str, message: str) -> None:
    cert, key = make_cert(tmp_path / "tls", ["onca.example.com"])
    if broken == "cert":
        cert.unlink()
    elif broken == "key":
        key.unlink()
    elif broken == "garbage-cert":
        cert.write_text("not a certificate\n")
    else:
        key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    ctx, _ = context(tmp_path / "home", **tls_params(cert, key))
    with pytest.raises(ResourceFailure, match=message):
        web.WebConfig().create(ctx, web.WebConfig().properties(ctx))


def test_domain_without_tls_warns_about_the_proxy(tmp_path: Path) -> None:
    ctx, warnings = context(tmp_path / "home", CustomDomain="onca.example.com")
    outputs = web.WebConfig().create(ctx, web.WebConfig().properties(ctx))
    assert outputs["public_url"] == "https://onca.example.com" and outputs["tls"] is False
    assert len(warnings) == 1 and "TLS-terminating proxy" in warnings[0]


def test_renewed_certificate_at_the_same_path_is_a_change(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "tls", ["onca.example.com"], days=5)
    ctx, _ = context(tmp_path / "home", **tls_params(cert, key))
    resource = web.WebConfig()
    before = resource.properties(ctx)
    make_cert(tmp_path / "tls", ["onca.example.com"], days=365)
    after = resource.properties(ctx)
    assert before != after and before["certificate"] == after["certificate"]


@pytest.mark.parametrize("pattern, host, expected", [
    ("onca.example.com", "ONCA.example.com", True),
    ("*.example.com", "onca.example.com", True),
    ("*.example.com", "example.com", False),
    ("*.example.com", "a.b.example.com", False),
    ("example.com", "onca.example.com", False),
])
def test_covers(pattern: str, host: str, expected: bool) -> None:
    assert web.covers(pattern, host) is expected


@pytest.mark.parametrize("listen", ["nohost", "127.0.0.1:0", "127.0.0.1:70000", "[not-v6]:80"])
def test_bad_listen_addresses_fail(listen: str) -> None:
    with pytest.raises(ResourceFailure, match="WebListenAddress"):
        web.parse_listen(listen)


@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_every_handler_honours_injected_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    monkeypatch.setenv("ONCA_FAULT", f"web/WebConfig:{action}")
    [resource] = web.component().resources
    ctx, _ = context(tmp_path / "home")
    props = resource.properties(ctx)
    calls = {"create": lambda: resource.create(ctx, props), "update": lambda: resource.update(ctx, props, props, {}),
             "delete": lambda: resource.delete(ctx, props, {})}
    with pytest.raises(ResourceFailure, match=f"injected fault: web/WebConfig {action}"):
        calls[action]()
    assert not (tmp_path / "home").exists()
