"""`/api/v1/detections` on a deployed home with Onca's content (plus small packs written by the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from onca.detections import workbench
from onca.detections.enablement import enabled_content
from onca.store.models import AuditLog

from .conftest import db

OWN = "Onca.AWS.AccessKeyCreatedForOtherUser"  # one of Onca's own detections, with three tests
KEY_FOR_OTHER_USER = {"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                      "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ci-runner",
                                       "userName": "ci-runner"},
                      "requestParameters": {"userName": "finance-admin"},
                      "responseElements": {"accessKey": {"accessKeyId": "AKIAEXAMPLEKEY000001"}},
                      "recipientAccountId": "111122223333", "p_log_type": "AWS.CloudTrail"}
OWN_KEY = {**KEY_FOR_OTHER_USER, "requestParameters": {"userName": "ci-runner"}}

RULE_YML = """AnalysisType: rule
RuleID: {id}
DisplayName: {name}
Enabled: true
Filename: {file}.py
LogTypes: [AWS.CloudTrail]
Severity: High
Tags: [Sandbox]
Tests:
  - Name: fires on anything
    ExpectedResult: true
    Log: {{eventName: ListUsers, p_log_type: AWS.CloudTrail}}
"""
LOOPING_PY = "def rule(event):\n    while True:\n        pass\n"
# Code that would break out of a <pre> if it were not escaped; title() fails, so its test fails.
HOSTILE_PY = ('# </pre><script>alert("owned")</script>\n'
              'def rule(event):\n    print("checked", event.get("eventName"))\n    return True\n\n\n'
              'def title(event):\n    return event["missing"]\n')


def install_rule(home: Path, rule_id: str, code: str, name: str = "") -> None:
    """A one-rule pack in the deployment's content, as `onca detections install` leaves it."""
    rules = home / "content" / "packs" / "sandbox" / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    file = rule_id.lower().replace(".", "_")
    (rules / f"{file}.yml").write_text(RULE_YML.format(id=rule_id, name=name or rule_id, file=file), encoding="utf-8")
    (rules / f"{file}.py").write_text(code, encoding="utf-8")


def audit_actions(app: FastAPI, action: str) -> list[AuditLog]:
    with db(app) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


@pytest.fixture
def analyst(client: Callable[..., TestClient]) -> TestClient:
    return client("Analyst")


def test_list_filters_and_pages(analyst: TestClient, web_home: Path) -> None:
    install_rule(web_home, "Sandbox.Hostile", HOSTILE_PY, name="Hostile sandbox rule")
    everything = analyst.get("/api/v1/detections", params={"limit": 1000}).json()
    ids = [row["id"] for row in everything["items"]]
    assert everything["total"] == len(ids) > 40 and OWN in ids and "Sandbox.Hostile" in ids
    own = next(row for row in everything["items"] if row["id"] == OWN)
    assert own["enabled"] and own["severity"] == "Medium" and own["log_types"] == ["AWS.CloudTrail"]
    assert own["file"] == "onca/rules/aws_cloudtrail/aws_access_key_created_for_other_user.yml"  # no host path

    def ids_for(**params: Any) -> set[str]:
        answer = analyst.get("/api/v1/detections", params={"limit": 1000, **params})
        assert answer.status_code == 200, answer.text
        return {row["id"] for row in answer.json()["items"]}

    correlations = ids_for(type="correlation_rule")
    assert correlations and all(i.startswith("Onca.") for i in correlations) and OWN not in correlations
    cloudtrail = ids_for(log_type="AWS.CloudTrail")
    assert OWN in cloudtrail and not cloudtrail & ids_for(log_type="Okta.SystemLog")
    assert "Sandbox.Hostile" in ids_for(severity="high") and OWN not in ids_for(severity="HIGH")
    assert ids_for(tag="sandbox") == {"Sandbox.Hostile"}
    assert ids_for(text="HOSTILE sandbox") == {"Sandbox.Hostile"} and ids_for(text="sandbox hostile") == set()
    assert ids_for(text="access key", type="rule", log_type="AWS.CloudTrail", enabled="true") >= {OWN}
    assert OWN not in ids_for(enabled="false")

    page = analyst.get("/api/v1/detections", params={"limit": 5, "offset": 5}).json()
    assert [row["id"] for row in page["items"]] == ids[5:10] and page["total"] == len(ids)
    assert analyst.get("/api/v1/detections", params={"limit": 0}).status_code == 422
    assert analyst.get("/api/v1/detections", params={"enabled": "maybe"}).status_code == 422


def test_get_returns_spec_code_and_tests_and_is_audited(analyst: TestClient, app: FastAPI) -> None:
    answer = analyst.get(f"/api/v1/detections/{OWN}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["spec"]["RuleID"] == OWN and "RuleID: " + OWN in body["spec_text"]
    assert body["code"].startswith("from onca_aws_helpers import") and "def rule(event):" in body["code"]
    assert [t["name"] for t in body["tests"]] == ["Key created for another user", "User rotates own key",
                                                  "Key creation without userName parameter"]
    assert [t["expected"] for t in body["tests"]] == [True, False, False]
    reads = audit_actions(app, "detection.read")
    assert [(r.actor, r.target) for r in reads] == [("analyst@example.com", OWN)]
    missing = analyst.get("/api/v1/detections/No.Such.Rule")
    assert missing.status_code == 404 and "No.Such.Rule" in missing.json()["detail"]


def test_disable_and_enable_reach_the_workers_content(client: Callable[..., TestClient], app: FastAPI,
                                                      web_home: Path) -> None:
    analyst = client("Analyst")

    def running() -> bool:
        with db(app) as session:
            return OWN in {item.id for item in enabled_content(web_home, session).items}

    assert running()
    off = analyst.post(f"/api/v1/detections/{OWN}/disable")
    assert off.status_code == 200 and off.json()["changed"] and not off.json()["enabled"]
    assert off.json()["disabled_by_operator"] and not running()
    again = analyst.post(f"/api/v1/detections/{OWN}/disable")
    assert again.status_code == 200 and not again.json()["changed"]
    listed = analyst.get("/api/v1/detections", params={"enabled": "false", "limit": 1000}).json()["items"]
    assert OWN in {row["id"] for row in listed}
    on = analyst.post(f"/api/v1/detections/{OWN}/enable")
    assert on.status_code == 200 and on.json()["enabled"] and running()
    assert [(r.target, r.details["changed"]) for r in audit_actions(app, "detection.disabled")] == \
        [(OWN, True), (OWN, False)]
    assert len(audit_actions(app, "detection.enabled")) == 1
    assert analyst.post("/api/v1/detections/No.Such.Rule/disable").status_code == 404

    reader = client("ReadOnly")  # may read detections, may not change them
    assert reader.post(f"/api/v1/detections/{OWN}/disable").status_code == 403 and running()
    no_csrf = TestClient(app, cookies=analyst.cookies)  # a session without its CSRF token
    assert no_csrf.post(f"/api/v1/detections/{OWN}/disable").status_code == 403 and running()


def test_run_tests_of_an_own_detection_and_of_a_failing_one(analyst: TestClient, web_home: Path,
                                                            app: FastAPI) -> None:
    run = analyst.post(f"/api/v1/detections/{OWN}/tests/run")
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["status"] == "passed" and body["passed"] == 3 and body["failed"] == 0
    verdicts = {t["name"]: (t["expected"], t["actual"], t["passed"]) for t in body["tests"]}
    assert verdicts == {"Key created for another user": (True, True, True),
                        "User rotates own key": (False, False, True),
                        "Key creation without userName parameter": (False, False, True)}
    first = body["tests"][0]["functions"]
    assert {"function": "rule", "output": "true", "error": None, "matched": True} in first
    assert any(f["function"] == "title" and "finance-admin" in f["output"] for f in first)

    install_rule(web_home, "Sandbox.Hostile", HOSTILE_PY)
    failing = analyst.post("/api/v1/detections/Sandbox.Hostile/tests/run").json()
    assert failing["status"] == "failed" and failing["failed"] == 1
    case = failing["tests"][0]
    assert not case["passed"] and case["output"] == "checked ListUsers\n"
    assert {"function": "title", "output": None, "error": "KeyError: 'missing'", "matched": False} in case["functions"]
    assert [r.details["status"] for r in audit_actions(app, "detection.tests_run")] == ["passed", "failed"]


def test_pasted_events_that_match_and_do_not(analyst: TestClient, app: FastAPI) -> None:
    hit = analyst.post(f"/api/v1/detections/{OWN}/test-event", json={"event": KEY_FOR_OTHER_USER})
    assert hit.status_code == 200, hit.text
    verdict = hit.json()
    assert verdict["matched"] and verdict["log_type"] == "AWS.CloudTrail" and verdict["errors"] == []
    assert verdict["title"] == "[ci-runner] created an access key for another IAM user [finance-admin]"
    assert verdict["dedup"] == "arn:aws:iam::111122223333:user/ci-runner:finance-admin"
    assert verdict["severity"] == "MEDIUM"
    assert verdict["alert_context"]["target_user"] == "finance-admin"

    miss = analyst.post(f"/api/v1/detections/{OWN}/test-event", json={"event": OWN_KEY}).json()
    assert not miss["matched"] and miss["title"] is None and miss["errors"] == []
    assert [r.details["matched"] for r in audit_actions(app, "detection.event_tested")] == [True, False]

    assert analyst.post(f"/api/v1/detections/{OWN}/test-event", json={"event": [1, 2]}).status_code == 422
    malformed = analyst.post(f"/api/v1/detections/{OWN}/test-event", content=b'{"event": {',
                             headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422 and "JSON" in malformed.text
    assert analyst.post("/api/v1/detections/No.Such.Rule/test-event", json={"event": {}}).status_code == 404
    policy_or_correlation = analyst.post("/api/v1/detections/Onca.AWS.NewUserGrantedAdmin/test-event",
                                         json={"event": {}})
    assert policy_or_correlation.status_code == 422
    assert "only rules and scheduled rules" in policy_or_correlation.json()["detail"]


def test_a_looping_rule_is_cut_off(analyst: TestClient, web_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_rule(web_home, "Sandbox.Loop", LOOPING_PY)
    monkeypatch.setattr(workbench, "RULE_TIME_LIMIT_S", 0.3)
    monkeypatch.setattr(workbench, "TESTS_TIMEOUT_S", 1.0)
    answer = analyst.post("/api/v1/detections/Sandbox.Loop/test-event", json={"event": {"eventName": "ListUsers"}})
    assert answer.status_code == 200, answer.text
    assert not answer.json()["matched"]
    assert answer.json()["errors"] == ["RuleTimeout: rule ran longer than 0.3 s on this event"]
    # The test harness has no per-call watchdog: the whole run is stopped at its time limit.
    tests = analyst.post("/api/v1/detections/Sandbox.Loop/tests/run")
    assert tests.status_code == 422
    assert tests.json()["detail"] == ("the tests of Sandbox.Loop did not finish within 1 s and were stopped "
                                      "(does a function loop forever?)")
    # The server is unharmed: the next run answers normally.
    assert analyst.post(f"/api/v1/detections/{OWN}/tests/run").json()["status"] == "passed"


ROUTES = [("GET", "/api/v1/detections", None), ("GET", f"/api/v1/detections/{OWN}", None),
          ("POST", f"/api/v1/detections/{OWN}/enable", None), ("POST", f"/api/v1/detections/{OWN}/disable", None),
          ("POST", f"/api/v1/detections/{OWN}/tests/run", None),
          ("POST", f"/api/v1/detections/{OWN}/test-event", {"event": KEY_FOR_OTHER_USER})]


@pytest.mark.parametrize("role", ["Support", "Operations"])
def test_operator_roles_never_see_detections(role: str, client: Callable[..., TestClient],
                                             token_client: Callable[..., TestClient], app: FastAPI) -> None:
    for caller in (client(role), token_client(role, email=f"{role.lower()}-bot@example.com")):
        for method, url, body in ROUTES:
            answer = caller.request(method, url, json=body)
            assert answer.status_code == 403, (role, method, url, answer.status_code)
            assert "def rule" not in answer.text and "Tests" not in answer.text
    assert audit_actions(app, "detection.read") == [] and audit_actions(app, "detection.event_tested") == []
