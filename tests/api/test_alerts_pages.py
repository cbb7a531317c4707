"""The Overview, alerts list and alert pages: what they show, bulk and single triage through plain forms,
escaping of hostile alert content, and who may see or change what."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from onca.lake.layout import with_standard_fields
from onca.lake.writer import LakeWriter
from onca.store.models import Alert, AuditLog

from .conftest import db
from .test_alerts_api import BULK, EVIL, Seeded, seed_alerts

ROW = re.compile(r'name="ids" value="([0-9a-f]{32})"')
NEXT = re.compile(r'href="(/alerts\?[^"]*cursor=[^"]+)"')


@pytest.fixture
def seeded(app: FastAPI) -> Seeded:
    return seed_alerts(app)


def listed(page: Any) -> list[str]:
    assert page.status_code == 200, page.text
    return ROW.findall(page.text)


def test_overview_charts_and_what_each_role_sees(seeded: Seeded, app: FastAPI,
                                                 client: Callable[..., TestClient]) -> None:
    now = datetime.now(UTC)
    rows = [{"p_row_id": f"v{i}", "p_event_time": now - timedelta(hours=7 * i), "p_log_type": "Custom.Volume"}
            for i in range(12)]
    LakeWriter(app.state.ctx.lake_dir).write("Custom.Volume", rows, with_standard_fields(pa.schema([])))
    analyst = client("Analyst").get("/")
    assert analyst.status_code == 200, analyst.text
    assert analyst.text.count('<svg class="chart" role="img"') == 2
    assert "Alerts by severity, last 7 days" in analyst.text and "Events ingested per day" in analyst.text
    assert "12 events in all." in analyst.text  # from the lake's footers; rule_matches_* rows are not counted
    assert 'href="/alerts?status=OPEN&amp;severity=CRITICAL"' in analyst.text
    support = client("Support").get("/")
    assert support.status_code == 200
    assert support.text.count('<svg class="chart"') == 1 and "Open alerts" not in support.text
    assert 'href="/alerts"' not in support.text  # not in the nav either


def test_list_filters_pages_and_escapes(seeded: Seeded, client: Callable[..., TestClient]) -> None:
    analyst = client("Analyst")
    page = analyst.get("/alerts")
    first = listed(page)
    assert first == seeded.bulk[:50] and f"{BULK + 4:,} alerts match" in page.text
    assert "&lt;script&gt;" not in page.text  # the evil alert is older: not on the first page
    following = NEXT.search(page.text)
    assert following, page.text
    second = listed(analyst.get(following.group(1).replace("&amp;", "&")))
    assert second == seeded.bulk[50:100]
    evil = analyst.get("/alerts", params={"severity": "CRITICAL"})
    assert listed(evil) == [seeded.evil] and "1 alert matches" in evil.text
    assert EVIL not in evil.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in evil.text
    both = analyst.get("/alerts?status=OPEN&severity=HIGH&severity=CRITICAL&created_after=&type=")
    assert sorted(listed(both)) == sorted([seeded.high, seeded.evil])
    assert 'value="HIGH" checked' in both.text and 'value="CRITICAL" checked' in both.text
    assert listed(analyst.get("/alerts", params={"title": "bulk alert 77"})) == [f"{77:032x}"]
    assert analyst.get("/alerts", params={"status": "DONE"}).status_code == 422
    assert analyst.get("/alerts", params={"created_after": "yesterday"}).status_code == 422


def test_bulk_triage_through_the_form(seeded: Seeded, app: FastAPI, client: Callable[..., TestClient]) -> None:
    analyst = client("Analyst")
    chosen = listed(analyst.get("/alerts"))[:3]
    form = {"csrf_token": analyst.csrf_token, "ids": chosen, "status": "TRIAGED", "assignee": "ana@example.com",
            "back": "/alerts?severity=INFO"}
    answer = analyst.post("/alerts/bulk", data=form, headers={"X-CSRF-Token": ""}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/alerts?severity=INFO"
    shown = analyst.get(answer.headers["location"])
    assert "Updated 3 of 3 selected alert(s)." in shown.text
    with db(app) as session:
        rows = list(session.scalars(select(Alert).where(Alert.id.in_(chosen))))
        assert {(a.status, a.assignee) for a in rows} == {("TRIAGED", "ana@example.com")}
        audited = list(session.scalars(select(AuditLog).where(AuditLog.action == "alert.updated")))
        assert sorted(r.target for r in audited) == sorted(chosen) and {r.actor for r in audited} == {analyst.email}
    assert sorted(listed(analyst.get("/alerts", params={"status": "TRIAGED"}))) == sorted(chosen)
    unassign = analyst.post("/alerts/bulk", data={**form, "status": "", "assignee": "", "unassign": "1"},
                            follow_redirects=False)
    assert unassign.status_code == 303
    assert listed(analyst.get("/alerts", params={"assignee": "ana@example.com"})) == []
    nothing = analyst.post("/alerts/bulk", data={"csrf_token": analyst.csrf_token, "status": "CLOSED"})
    assert "Select at least one alert first." in nothing.text
    bad = analyst.post("/alerts/bulk", data={**form, "status": "DONE"})
    assert "status must be one of" in bad.text
    offsite = analyst.post("/alerts/bulk", data={**form, "back": "https://evil.example/"}, follow_redirects=False)
    assert offsite.headers["location"] == "/alerts"
    forged = analyst.post("/alerts/bulk", data={**form, "csrf_token": "forged"}, headers={"X-CSRF-Token": ""},
                          follow_redirects=False)
    assert forged.status_code == 403


def test_alert_page_shows_everything_escaped(seeded: Seeded, app: FastAPI, client: Callable[..., TestClient]) -> None:
    reader = client("ReadOnly")
    page = reader.get(f"/alerts/{seeded.evil}")
    assert page.status_code == 200, page.text
    assert EVIL not in page.text and "<script" not in page.text
    assert page.text.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 3  # title, context key and value
    assert "row-4" in page.text and "Evil.Rule" in page.text  # its event from the lake, collapsed
    assert "<details" in page.text and 'action="/alerts/' not in page.text  # ReadOnly: no triage form
    high = reader.get(f"/alerts/{seeded.high}")
    for shown in ("High thing", "High.Rule description", "Check the user.", "https://example.com/runbook",
                  "10.0.0.1", "row-0", "row-1", "row-2", "slack", "unavailable", "503"):
        assert shown in high.text, shown
    with db(app) as session:
        actions = [r.action for r in session.scalars(select(AuditLog).where(AuditLog.target == seeded.high))]
    assert actions == ["alert.read", "events.read"]
    assert reader.post(f"/alerts/{seeded.high}", data={"csrf_token": reader.csrf_token,
                                                        "status": "CLOSED"}).status_code == 403
    assert reader.get("/alerts/" + "f" * 32).status_code == 404


def test_alert_page_triage_form(seeded: Seeded, client: Callable[..., TestClient]) -> None:
    analyst = client("Analyst")
    page = analyst.get(f"/alerts/{seeded.high}")
    assert f'action="/alerts/{seeded.high}"' in page.text and 'name="csrf_token"' in page.text
    answer = analyst.post(f"/alerts/{seeded.high}", data={"csrf_token": analyst.csrf_token, "status": "RESOLVED",
                                                          "assignee": "bob@example.com"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/alerts/{seeded.high}"
    shown = analyst.get(answer.headers["location"])
    assert "Alert updated: status OPEN → RESOLVED, assignee none → bob@example.com" in shown.text
    assert 'value="RESOLVED" selected' in shown.text and 'value="bob@example.com"' in shown.text
    again = analyst.post(f"/alerts/{seeded.high}", data={"csrf_token": analyst.csrf_token, "status": "RESOLVED",
                                                         "assignee": "bob@example.com"})
    assert "Nothing changed." in again.text
    bad = analyst.post(f"/alerts/{seeded.high}", data={"csrf_token": analyst.csrf_token, "status": "OPEN",
                                                       "assignee": "bob"})
    assert "assignee must be an email address" in bad.text


def test_support_is_refused_every_alerts_page(seeded: Seeded, client: Callable[..., TestClient]) -> None:
    support = client("Support")
    for method, url, form in (("GET", "/alerts", None), ("GET", f"/alerts/{seeded.high}", None),
                              ("POST", f"/alerts/{seeded.high}", {"status": "CLOSED"}),
                              ("POST", "/alerts/bulk", {"ids": [seeded.high], "status": "CLOSED"})):
        answer = support.request(method, url, data={**(form or {}), "csrf_token": support.csrf_token}
                                 if form else None)
        assert answer.status_code == 403, (method, url, answer.status_code)
        assert "High thing" not in answer.text and "&lt;script&gt;" not in answer.text
