"""The alerts API: filters and pagination, an alert with its lake events and deliveries, triage with audit,
and who may do what (Support never reads alerts, ReadOnly never changes them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from onca.alerts.manager import AlertManager
from onca.alerts.queries import AlertFilter, count_alerts
from onca.detections.runner import RuleError, RuleMatch
from onca.lake.writer import LakeWriter
from onca.store.models import Alert, AuditLog, Delivery

from .conftest import db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LOG_TYPE = "Custom.Test"
EVIL = "<script>alert('x')</script>"


@dataclass
class Seeded:
    high: str  # 3 events over 2 hours, context with markup, routed to slack with one failed attempt
    low: str
    error: str  # a RULE_ERROR alert
    evil: str  # a title and context made of markup
    quiet: str  # below its threshold
    bulk: list[str]  # BULK plain alerts, newest first, with ties on created_at


BULK = 130


def _match(rule: str, index: int, *, title: str, severity: str, dedup: str = "d", context: Any = None) -> RuleMatch:
    return RuleMatch(rule_id=rule, event_index=index, title=title, dedup=dedup, severity=severity,
                     alert_context=json.dumps(context) if context is not None else None, destinations=None,
                     unique=None, description=f"{rule} description", reference="https://example.com/runbook",
                     runbook="Check the user.")


def seed_alerts(app: FastAPI) -> Seeded:
    """Alerts made the way the pipeline makes them (AlertManager, with its lake files), plus BULK plain rows."""
    ctx = app.state.ctx
    events = [{"p_row_id": f"row-{i}", "p_event_time": T0 + timedelta(minutes=50 * i), "p_log_type": LOG_TYPE,
               "user": f"user-{i}", "note": EVIL if i == 4 else "ok"} for i in range(6)]
    manager = AlertManager(app.state.sessions, LakeWriter(ctx.lake_dir), clock=lambda: T0 + timedelta(days=1),
                           route=lambda alert: ["slack"] if alert.rule_id == "High.Rule" else [])
    manager.process(
        [_match("High.Rule", 0, title="High thing", severity="HIGH", context={"user": "user-0", "ip": "10.0.0.1"}),
         _match("High.Rule", 1, title="High thing", severity="HIGH"),
         _match("High.Rule", 2, title="High thing", severity="HIGH"),
         _match("Low.Rule", 3, title="Low thing", severity="LOW"),
         _match("Evil.Rule", 4, title=EVIL, severity="CRITICAL", context={EVIL: EVIL, "nested": {"x": [EVIL]}}),
         _match("Quiet.Rule", 5, title="Quiet thing", severity="MEDIUM")],
        [RuleError("Broken.Rule", 5, "KeyError", "'missing'")],
        events=events, log_type=LOG_TYPE,
        rule_meta={"High.Rule": {"DedupPeriodMinutes": 180}, "Quiet.Rule": {"Threshold": 5}})
    with db(app) as session:
        ids = {a.rule_id: a.id for a in session.scalars(select(Alert))}
        session.add(Delivery(alert_id=ids["High.Rule"], destination="slack", attempt=1, outcome="retry",
                             status_code=503, message="unavailable"))
        base = T0 + timedelta(days=10)
        rows = [{"id": f"{i:032x}", "rule_id": f"Bulk.Rule.{i % 3}", "kind": "RULE", "dedup": str(i),
                 "dedup_key": f"{i:032x}", "severity": ("INFO", "MEDIUM")[i % 2], "title": f"Bulk alert {i}",
                 "first_event_time": base, "last_event_time": base, "log_types": ["Other.Type"], "status": "OPEN",
                 "window_start": base, "window_end": base, "raised": True, "raised_at": base,
                 # pairs share a creation time: the cursor must break ties on id
                 "created_at": base + timedelta(minutes=i // 2), "updated_at": base}
                for i in range(BULK)]
        session.execute(insert(Alert), rows)
    bulk = [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)]
    return Seeded(ids["High.Rule"], ids["Low.Rule"], ids["Broken.Rule"], ids["Evil.Rule"], ids["Quiet.Rule"], bulk)


@pytest.fixture
def seeded(app: FastAPI) -> Seeded:
    return seed_alerts(app)


def audit_rows(app: FastAPI, action: str) -> list[AuditLog]:
    with db(app) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def ids_of(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()["alerts"]]


def test_filters_select_the_right_alerts(seeded: Seeded, client: Callable[..., TestClient]) -> None:
    analyst = client("Analyst")

    def listed(**params: Any) -> list[str]:
        return ids_of(analyst.get("/api/v1/alerts", params={"limit": 500, **params}))

    everything = listed()
    assert len(everything) == BULK + 4 and seeded.quiet not in everything
    assert seeded.quiet in listed(pending=True)
    assert set(listed(severity=["high", "CRITICAL"])) == {seeded.high, seeded.evil}
    assert listed(rule_id="Low.Rule") == [seeded.low]
    assert set(listed(log_type=LOG_TYPE)) == {seeded.high, seeded.low, seeded.evil, seeded.error}
    assert listed(log_type="Custom") == []  # an exact log type, not a prefix
    assert listed(type="rule_error") == [seeded.error]
    assert listed(title="HIGH THING") == [seeded.high]
    assert listed(title="%") == []  # LIKE wildcards are literal
    assert set(listed(created_before=(T0 + timedelta(days=5)).isoformat())) == {
        seeded.high, seeded.low, seeded.evil, seeded.error}
    assert len(listed(created_after=(T0 + timedelta(days=5)).isoformat())) == BULK
    assert listed(status="CLOSED") == []
    assert analyst.patch(f"/api/v1/alerts/{seeded.low}", json={"assignee": "Ana@Example.com"}).status_code == 200
    assert listed(assignee="ana@example.com") == [seeded.low]
    assert seeded.low not in listed(assignee="none") and seeded.high in listed(assignee="none")
    for bad in ({"status": "DONE"}, {"severity": "urgent"}, {"type": "POLICY"}, {"sort": "sideways"},
                {"limit": 501}, {"limit": 0}, {"cursor": "not-a-cursor"}, {"assignee": "nobody"}):
        answer = analyst.get("/api/v1/alerts", params=bad)
        assert answer.status_code == 422, (bad, answer.text)


def test_pagination_walks_every_alert_once_in_order(seeded: Seeded, client: Callable[..., TestClient]) -> None:
    reader = client("ReadOnly")
    params: dict[str, Any] = {"limit": 7, "rule_id": None}
    walked: list[str] = []
    totals = set()
    cursor = None
    while True:
        answer = reader.get("/api/v1/alerts", params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        body = answer.json()
        walked += ids_of(answer)
        totals.add((body["total"], body["total_capped"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert walked[:BULK] == seeded.bulk and len(walked) == BULK + 4 == len(set(walked))
    assert totals == {(BULK + 4, False)}
    oldest = ids_of(reader.get("/api/v1/alerts", params={"sort": "oldest", "limit": 500}))
    assert oldest == list(reversed(walked))
    page3 = ids_of(reader.get("/api/v1/alerts", params={**params, "page": 3}))
    assert page3 == walked[14:21]
    with db(reader.app) as session:  # the count stops at its cap
        assert count_alerts(session, AlertFilter(), cap=10) == (10, True)
        assert count_alerts(session, AlertFilter(rule_id="Low.Rule"), cap=10) == (1, False)


def test_an_alert_comes_with_its_lake_events_and_deliveries(seeded: Seeded, app: FastAPI,
                                                            client: Callable[..., TestClient]) -> None:
    reader = client("ReadOnly")
    answer = reader.get(f"/api/v1/alerts/{seeded.high}")
    assert answer.status_code == 200, answer.text
    alert = answer.json()
    assert (alert["title"], alert["event_count"], alert["severity"]) == ("High thing", 3, "HIGH")
    assert alert["alert_context"] == {"user": "user-0", "ip": "10.0.0.1"}
    assert [o["destination"] for o in alert["outbox"]] == ["slack"]
    assert [(d["outcome"], d["status_code"]) for d in alert["deliveries"]] == [("retry", 503)]
    events = alert["events"]
    assert [e["p_row_id"] for e in events["items"]] == ["row-0", "row-1", "row-2"] and not events["has_more"]
    assert events["items"][0]["user"] == "user-0" and events["items"][0]["p_alert_id"] == seeded.high
    assert events["items"][1]["p_event_time"].startswith("2026-03-01T10:50:00")
    second = reader.get(f"/api/v1/alerts/{seeded.high}", params={"events_offset": 1, "events_limit": 1}).json()
    assert [e["p_row_id"] for e in second["events"]["items"]] == ["row-1"] and second["events"]["has_more"]
    error = reader.get(f"/api/v1/alerts/{seeded.error}").json()
    assert error["type"] == "RULE_ERROR"
    assert [(e["p_row_id"], e["p_rule_error"]) for e in error["events"]["items"]] == [("row-5", "'missing'")]
    assert reader.get(f"/api/v1/alerts/{seeded.bulk[0]}").json()["events"]["items"] == []  # nothing in the lake
    assert reader.get("/api/v1/alerts/" + "f" * 32).status_code == 404
    assert reader.get(f"/api/v1/alerts/{seeded.high}", params={"events_limit": 101}).status_code == 422
    assert [r.target for r in audit_rows(app, "events.read")][:2] == [seeded.high, seeded.high]
    assert seeded.high in [r.target for r in audit_rows(app, "alert.read")]


def test_patch_records_who_and_when_and_is_audited(seeded: Seeded, app: FastAPI,
                                                    client: Callable[..., TestClient]) -> None:
    analyst = client("Analyst")
    before = datetime.now(UTC)
    answer = analyst.patch(f"/api/v1/alerts/{seeded.high}", json={"status": "triaged", "assignee": "Ana@Example.com"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["assignee"], body["updated_by"]) == ("TRIAGED", "ana@example.com", analyst.email)
    assert datetime.fromisoformat(body["updated_at"].replace("Z", "+00:00")) >= before - timedelta(seconds=1)
    assert body["changed"] == {"status": ["OPEN", "TRIAGED"], "assignee": [None, "ana@example.com"]}
    unassigned = analyst.patch(f"/api/v1/alerts/{seeded.high}", json={"assignee": None}).json()
    assert (unassigned["status"], unassigned["assignee"]) == ("TRIAGED", None)
    assert analyst.patch(f"/api/v1/alerts/{seeded.high}", json={"status": "TRIAGED"}).json()["changed"] == {}
    records = audit_rows(app, "alert.updated")
    assert [(r.actor, r.target) for r in records] == [(analyst.email, seeded.high)] * 2
    assert records[0].details["status"] == ["OPEN", "TRIAGED"]
    for bad in ({"status": "DONE"}, {"assignee": "not-an-email"}, {}, {"status": "OPEN", "color": "red"}):
        assert analyst.patch(f"/api/v1/alerts/{seeded.high}", json=bad).status_code == 422, bad
    assert analyst.patch("/api/v1/alerts/" + "f" * 32, json={"status": "OPEN"}).status_code == 404
    assert analyst.patch(f"/api/v1/alerts/{seeded.high}", content=b"{not json",
                         headers={"Content-Type": "application/json"}).status_code == 422


def test_bulk_update_changes_status_and_is_audited(seeded: Seeded, app: FastAPI,
                                                   token_client: Callable[..., TestClient]) -> None:
    automation = token_client("Analyst")
    chosen = seeded.bulk[:5]
    answer = automation.post("/api/v1/alerts/bulk", json={"ids": [*chosen, "f" * 32], "status": "CLOSED"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"updated": chosen, "unchanged": [], "missing": ["f" * 32]}
    closed = ids_of(automation.get("/api/v1/alerts", params={"status": "CLOSED"}))
    assert sorted(closed) == sorted(chosen)
    again = automation.post("/api/v1/alerts/bulk", json={"ids": chosen[:2], "status": "CLOSED",
                                                         "assignee": "bob@example.com"}).json()
    assert again["updated"] == chosen[:2]
    records = audit_rows(app, "alert.updated")
    assert len(records) == 7 and {r.target for r in records} == set(chosen)
    assert records[-1].details["assignee"] == [None, "bob@example.com"] and "status" not in records[-1].details
    assert records[0].details.get("token_id") is not None
    assert automation.post("/api/v1/alerts/bulk", json={"ids": [], "status": "OPEN"}).status_code == 422
    assert automation.post("/api/v1/alerts/bulk", json={"ids": ["x"] * 501, "status": "OPEN"}).status_code == 422
    assert automation.post("/api/v1/alerts/bulk", json={"ids": chosen}).status_code == 422


def test_support_is_refused_everything_and_readonly_cannot_change(
        seeded: Seeded, app: FastAPI, client: Callable[..., TestClient],
        token_client: Callable[..., TestClient]) -> None:
    calls = [("GET", "/api/v1/alerts", None), ("GET", f"/api/v1/alerts/{seeded.high}", None),
             ("PATCH", f"/api/v1/alerts/{seeded.high}", {"status": "CLOSED"}),
             ("POST", "/api/v1/alerts/bulk", {"ids": [seeded.high], "status": "CLOSED"})]
    for way in (client("Support"), token_client("Support", "support-token@example.com")):
        for method, url, body in calls:
            answer = way.request(method, url, json=body)
            assert answer.status_code == 403, (method, url, answer.status_code)
            assert EVIL not in answer.text and "High thing" not in answer.text
    for way in (client("ReadOnly"), token_client("ReadOnly", "ro-token@example.com")):
        assert way.get(f"/api/v1/alerts/{seeded.high}").status_code == 200
        for method, url, body in calls[2:]:
            assert way.request(method, url, json=body).status_code == 403, (method, url)
    with db(app) as session:
        assert session.get(Alert, seeded.high).status == "OPEN"
    assert not [r for r in audit_rows(app, "alert.read") if r.actor.startswith("support")]
