"""The Sources, Destinations and Deployment pages, signed in through the login form, on a real deployed home."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape

from onca.core import audit
from onca.destinations.webhook import verify_signature
from tests.destinations.conftest import Receiver, receiver  # noqa: F401 - the local HTTP receiver fixture

from .test_deployment_api import failed_update
from .test_sources_api import JUNK, source_of, write_lake

Clients = Callable[..., TestClient]
SECRET_DIV = re.compile(r'<div class="secret">([^<]+)</div>')
HMAC_KEY = "page-secret-hmac-key-42"


def test_sources_pages(app: FastAPI, web_home: Path, client: Clients, tmp_path: Path) -> None:
    admin = client("Admin")
    listing = admin.get("/sources")
    assert listing.status_code == 200 and "onca-main-audit" in listing.text and "Add a source" in listing.text

    created = admin.post("/sources", data={"name": "okta", "kind": "http", "log_types": "Okta.SystemLog"})
    assert created.status_code == 201, created.text
    token = html.unescape(SECRET_DIV.search(created.text).group(1))  # type: ignore[union-attr]
    assert source_of(app, token) == "okta" and "shown once" in created.text
    assert token not in admin.get("/sources/okta").text and token not in admin.get("/sources").text

    refused = admin.post("/sources", data={"name": "<script>x</script>", "kind": "http", "log_types": "Nope"})
    assert refused.status_code == 422
    assert "unknown log type(s): Nope" in refused.text and "must be 1-200 letters" in refused.text
    assert "<script>x</script>" not in refused.text and "&lt;script&gt;x&lt;/script&gt;" in refused.text

    write_lake(app, tmp_path)
    row = re.search(r'<a href="/sources/okta">okta</a>.*?</tr>', admin.get("/sources").text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">(?:<a [^>]*>)?([\d,]+)', row.group(0))
    assert cells == ["18", "18", "2"]  # events in 24 h, events in all, quarantined

    analyst = client("Analyst")
    detail = analyst.get("/sources/okta")
    assert detail.status_code == 200
    assert JUNK not in detail.text and str(escape(JUNK)) in detail.text  # the sample, escaped
    assert "First 2,000 of 5,000 bytes" in detail.text and "not JSON" in detail.text
    assert "Issue a new token" not in detail.text  # no sources:write
    viewed = [r for r in audit.read(web_home) if r["action"] == "source.quarantine_viewed"]
    assert viewed[-1]["actor"] == analyst.email

    rotated = admin.post("/sources/okta/token")
    new_token = html.unescape(SECRET_DIV.search(rotated.text).group(1))  # type: ignore[union-attr]
    assert new_token != token and source_of(app, token) is None and source_of(app, new_token) == "okta"
    disabled = admin.post("/sources/okta/enabled", data={"enabled": "false"}, follow_redirects=False)
    assert disabled.status_code == 303 and source_of(app, new_token) is None
    removed = admin.post("/sources/okta/delete", follow_redirects=True)
    assert "Source okta removed" in removed.text and '<a href="/sources/okta">' not in removed.text

    for role in ("Support", "Operations"):
        operator = client(role)
        assert operator.get("/sources").status_code == 403
        assert operator.get("/sources/onca-main-audit").status_code == 403
        assert ">Sources<" not in operator.get("/deployment").text  # not in their navigation either


def test_destination_pages(client: Clients, web_home: Path, receiver: Receiver) -> None:  # noqa: F811
    admin = client("Admin")
    form = admin.get("/destinations/new", params={"kind": "webhook"})
    assert form.status_code == 200 and 'name="config.secret"' in form.text and 'type="password"' in form.text

    bad = admin.post("/destinations/new", data={"name": "soc", "kind": "webhook", "config.url": "ftp://x",
                                                 "config.secret": "short-secret", "severities": "HIGH"})
    assert bad.status_code == 422
    assert "must be at least 16 characters" in bad.text and "must be an absolute https:// URL" in bad.text
    assert "short-secret" not in bad.text  # a secret is never put back into the page
    assert 'value="ftp://x"' in bad.text and 'value="HIGH" checked' in bad.text  # the rest is kept

    saved = admin.post("/destinations/new", data={
        "name": "soc", "kind": "webhook", "config.url": f"{receiver.url}/hook", "config.secret": HMAC_KEY,
        "config.headers": '{"Authorization": "Bearer page-header-secret"}', "severities": ["HIGH", "CRITICAL"],
        "log_types": "AWS.CloudTrail", "enabled": "on"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/destinations"
    pages = [admin.get("/destinations"), admin.get("/destinations/soc/edit"), client("ReadOnly").get("/destinations")]
    for page in pages:
        assert page.status_code == 200
        assert HMAC_KEY not in page.text and "page-header-secret" not in page.text
    assert "Send test" in pages[0].text and "Send test" not in pages[2].text
    assert "•••• stored: leave blank to keep" in pages[1].text

    edited = admin.post("/destinations/soc/edit", data={"kind": "webhook", "config.url": f"{receiver.url}/v2",
                                                        "config.secret": "", "severities": "CRITICAL",
                                                        "enabled": "on"}, follow_redirects=False)
    assert edited.status_code == 303
    tested = admin.post("/destinations/soc/test", follow_redirects=True)
    assert "Test alert sent to soc: HTTP 200" in tested.text
    (request,) = receiver.requests
    assert request.path == "/v2" and verify_signature(HMAC_KEY, request.body, request.headers)
    receiver.respond(503, "down for maintenance")
    failed = admin.post("/destinations/soc/test", follow_redirects=True)
    assert "transient failure" in failed.text and "HTTP 503" in failed.text

    assert admin.post("/destinations/soc/delete", follow_redirects=True).text.count("Destination soc removed") == 1
    assert client("Support").get("/destinations").status_code == 403
    assert client("Analyst").get("/destinations/new").status_code == 403
    actions = [r["action"] for r in audit.read(web_home) if r["action"].startswith("destination.")]
    assert actions == ["destination.created", "destination.updated", "destination.tested", "destination.tested",
                       "destination.removed"]


def test_deployment_page(web_home: Path, client: Clients, monkeypatch: pytest.MonkeyPatch) -> None:
    support = client("Support")
    page = support.get("/deployment")
    assert page.status_code == 200
    for text in ("onca-main", "bootstrap", "MetadataDatabase", "onboard", "badge-create-complete",
                 "nothing to upgrade", "No failed operation"):
        assert text in page.text, text
    assert "Events" in page.text and "Page 1" in page.text

    failed_update(web_home, monkeypatch)
    page = client("Operations").get("/deployment")
    assert "UPDATE_ROLLBACK_COMPLETE" in page.text and "injected fault: onboard/AuditLogSource update" in page.text
    assert "AuditLogSource" in page.text and client("Operations").get("/deployment?page=2").status_code == 200
    assert client("Analyst").get("/deployment").status_code == 403
