"""The web component: where the console and API listen, TLS, and the public URL, in <home>/config/web.json.

The certificate and key are loaded exactly as the server will load them (ssl.SSLContext.load_cert_chain), so
a pair that does not match, cannot be read or is not PEM fails the deploy instead of the server's start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509

from onca.deploy.parameters import LISTEN
from onca.deploy.resources import Component, DeployContext, Json, Resource, ResourceFailure, injected_fault

COMPONENT = "web"
EXPIRY_WARNING = dt.timedelta(days=30)
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def component() -> Component:
    return Component(COMPONENT, [WebConfig()], "Listen address, TLS and the public URL of the console and API")


def config_path(home: Path) -> Path:
    return home / "config" / "web.json"


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) as (host without brackets, port)."""
    match = LISTEN.match(value or "")
    if not match or not 0 < int(match["port"]) < 65536:
        raise ResourceFailure(f"WebListenAddress: {value!r} is not HOST:PORT (for example 127.0.0.1:8000)")
    host = match["host"]
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as err:
            raise ResourceFailure(f"WebListenAddress: {host!r} is not an IPv6 address") from err
    return host, int(match["port"])


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""  # unreadable: create reports why


def _read(path: Path, parameter: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ResourceFailure(f"{parameter}: cannot read {path}: {err.strerror or err}") from err


def load_tls(certificate: Path, key: Path) -> x509.Certificate:
    """Load the pair as the server will; return the leaf certificate. Fails with which file is wrong."""
    pem = _read(certificate, "WebCertificateFile")
    _read(key, "WebCertificateKeyFile")
    try:
        leaf = x509.load_pem_x509_certificate(pem)
    except ValueError as err:
        raise ResourceFailure(f"WebCertificateFile: {certificate} is not a PEM certificate ({err})") from err
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certificate, key)
    except ssl.SSLError as err:
        if "KEY_VALUES_MISMATCH" in str(err) or "key values mismatch" in str(err):
            raise ResourceFailure(f"WebCertificateKeyFile: {key} is not the private key of the certificate in "
                                  f"{certificate}") from err
        raise ResourceFailure(f"WebCertificateKeyFile: cannot load the key {key} with the certificate "
                              f"{certificate}: {err.reason or err}") from err
    except OSError as err:
        raise ResourceFailure(f"cannot load the certificate {certificate} and key {key}: {err}") from err
    return leaf


def san_names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = extension.value.get_values_for_type(x509.DNSName)
    return names + [str(ip) for ip in extension.value.get_values_for_type(x509.IPAddress)]


def covers(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact (case-insensitive), or `*.` standing for exactly one leftmost label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "." in host:
        label, rest = host.split(".", 1)
        return bool(label) and rest == pattern[2:]
    return False


def public_url(listen_host: str, port: int, tls: bool, custom_domain: str) -> str:
    if custom_domain:
        return f"https://{custom_domain}"
    # A wildcard bind address is not somewhere a browser can go; the machine itself is.
    host = "localhost" if listen_host in _WILDCARD_HOSTS else listen_host
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{port}"


class WebConfig(Resource):
    """Validates the web parameters and writes <home>/config/web.json for the server."""

    name = "WebConfig"

    def properties(self, ctx: DeployContext) -> Json:
        certificate = str(ctx.params.get("WebCertificateFile") or "")
        key = str(ctx.params.get("WebCertificateKeyFile") or "")
        return {"listen": str(ctx.params.get("WebListenAddress") or "127.0.0.1:8000"),
                "certificate": certificate, "key": key,
                "custom_domain": str(ctx.params.get("CustomDomain") or ""),
                # A renewed certificate at the same path is a change: it gets validated again on deploy.
                "certificate_sha256": _digest(certificate) if certificate else ""}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._apply(ctx, props)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._apply(ctx, new)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        config_path(ctx.home).unlink(missing_ok=True)

    def _apply(self, ctx: DeployContext, props: Json) -> Json:
        host, port = parse_listen(props["listen"])
        domain = props["custom_domain"]
        certificate, key = props["certificate"], props["key"]
        if bool(certificate) != bool(key):
            raise ResourceFailure("WebCertificateFile and WebCertificateKeyFile go together: set both or neither")
        tls = bool(certificate)
        outputs: dict[str, Any] = {}
        if tls:
            cert_path, key_path = Path(certificate).expanduser().absolute(), Path(key).expanduser().absolute()
            certificate, key = str(cert_path), str(key_path)
            outputs.update(self._check_certificate(ctx, load_tls(cert_path, key_path), cert_path, domain))
        elif domain:
            ctx.warn(f"CustomDomain {domain} is set without a certificate: Onca serves plain HTTP on "
                     f"{props['listen']}, so https://{domain} needs a TLS-terminating proxy in front of it")
        url = public_url(host, port, tls, domain)
        config = {"listen": props["listen"], "tls": tls, "certificate": certificate if tls else "",
                  "key": key if tls else "", "custom_domain": domain, "public_url": url}
        path = config_path(ctx.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return {"config": str(path), "public_url": url, "tls": tls, **outputs}

    @staticmethod
    def _check_certificate(ctx: DeployContext, cert: x509.Certificate, path: Path, domain: str) -> Json:
        now = dt.datetime.now(dt.UTC)
        expires = cert.not_valid_after_utc
        names = san_names(cert)
        if expires <= now:
            raise ResourceFailure(f"WebCertificateFile: the certificate in {path} expired on "
                                  f"{expires:%Y-%m-%d %H:%M} UTC; renew it before deploying")
        if cert.not_valid_before_utc > now:
            ctx.warn(f"the web certificate in {path} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
                     "UTC; browsers refuse it until then")
        if expires - now <= EXPIRY_WARNING:
            days = (expires - now).days
            ctx.warn(f"the web certificate in {path} expires on {expires:%Y-%m-%d} ({days} day(s) left); renew it "
                     "and deploy again")
        if domain and not any(covers(name, domain) for name in names):
            shown = ", ".join(names) or "none (no subjectAltName extension)"
            raise ResourceFailure(f"CustomDomain: the certificate in {path} does not cover {domain} "
                                  f"(its names: {shown})")
        return {"certificate_expires": expires.isoformat(), "certificate_names": names,
                "certificate_subject": cert.subject.rfc4514_string()}
