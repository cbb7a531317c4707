"""/api/v1/destinations on a real deployed home: field-level validation errors, secrets never in an answer,
secrets kept across an edit, and a test send that reaches a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from onca.core import audit
from onca.destinations.webhook import verify_signature
from tests.destinations.conftest import Receiver, receiver  # noqa: F401 - the local HTTP receiver fixture

Clients = Callable[[str], TestClient]
HMAC_KEY = "TOPSECRET-hmac-key-0123"
HEADER_SECRET = "HEADERSECRET-bearer"
SLACK_PATH = "/services/T000/SLACKSECRETPATH"


def test_bad_configs_get_field_errors_and_no_secret_back(token_client: Clients) -> None:
    admin = token_client("Admin")

    def errors(body: dict[str, object]) -> tuple[dict[str, str], str]:
        answer = admin.post("/api/v1/destinations", json=body)
        assert answer.status_code == 422, answer.text
        return answer.json()["detail"]["errors"], answer.text

    problems, _ = errors({"name": "j", "kind": "jira", "config": {"url": "http://jira.example.com"}})
    assert problems["url"].startswith("must use https://")
    assert problems["project_key"] == "is required" and problems["api_token"] == "is required"
    assert "kind" in errors({"name": "x", "kind": "carrier-pigeon"})[0]
    assert "severity" in errors({"name": "x", "kind": "slack", "severities": ["URGENT"],
                                 "config": {"webhook_url": "https://hooks.slack.com/services/T/B/X"}})[0]
    problems, text = errors({"name": "pd", "kind": "pagerduty", "config": {"routing_key": "WRONG-SECRET-KEY"}})
    assert "routing_key" in problems and "WRONG-SECRET-KEY" not in text
    problems, _ = errors({"name": "w", "kind": "webhook", "config": {"url": "https://x.example.com", "secret": "abc",
                                                                      "colour": "red"}})
    assert "secret" in problems and "colour" in problems
    assert admin.get("/api/v1/destinations").json()["destinations"] == []  # nothing was stored


def test_secrets_never_returned_edit_keeps_them_and_test_reaches_the_server(
        token_client: Clients, web_home: Path, receiver: Receiver) -> None:  # noqa: F811
    admin = token_client("Admin")
    created = admin.post("/api/v1/destinations", json={
        "name": "soc-hook", "kind": "webhook", "severities": ["high", "CRITICAL"],
        "config": {"url": f"{receiver.url}/onca", "secret": HMAC_KEY, "headers": {"Authorization": HEADER_SECRET}}})
    assert created.status_code == 201, created.text
    view = created.json()["destination"]
    assert view["config"]["secret"] == "••••" and view["config"]["headers"] == "••••" and view["has_secret"] is True
    assert view["config"]["url"] == f"{receiver.url}/onca" and view["severities"] == ["HIGH", "CRITICAL"]
    slack = admin.post("/api/v1/destinations", json={"name": "chat", "kind": "slack",
                                                     "config": {"webhook_url": receiver.url + SLACK_PATH}})
    assert slack.json()["destination"]["config"]["webhook_url"] == "••••"

    answers = [created, slack, admin.get("/api/v1/destinations"), admin.get("/api/v1/destinations/soc-hook"),
               token_client("Analyst").get("/api/v1/destinations")]
    for answer in answers:
        assert answer.status_code in (200, 201)
        assert HMAC_KEY not in answer.text and HEADER_SECRET not in answer.text and "SLACKSECRET" not in answer.text

    tested = admin.post("/api/v1/destinations/soc-hook/test")
    assert tested.status_code == 200 and tested.json()["success"] is True, tested.text
    assert tested.json()["message"].startswith("HTTP 200")
    (request,) = receiver.requests
    assert request.path == "/onca" and request.json["type"] == "test"
    assert request.headers["Authorization"] == HEADER_SECRET
    assert verify_signature(HMAC_KEY, request.body, request.headers)

    # An edit that leaves the secrets out (or sends the mask back) keeps them.
    changed = admin.put("/api/v1/destinations/soc-hook", json={
        "kind": "webhook", "severities": ["CRITICAL"], "enabled": True,
        "config": {"url": f"{receiver.url}/v2", "secret": "••••", "headers": ""}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["destination"]["severities"] == ["CRITICAL"] and HMAC_KEY not in changed.text
    assert admin.post("/api/v1/destinations/soc-hook/test").json()["success"] is True
    assert receiver.requests[-1].path == "/v2" and verify_signature(HMAC_KEY, receiver.requests[-1].body,
                                                                    receiver.requests[-1].headers)
    assert receiver.requests[-1].headers["Authorization"] == HEADER_SECRET

    # A failed test says what the service answered, without the secret it may have echoed.
    receiver.respond(404, f"no such hook {SLACK_PATH}")
    failed = admin.post("/api/v1/destinations/chat/test").json()
    assert failed["success"] is False and failed["permanent"] is True
    assert failed["message"].startswith("HTTP 404") and "SLACKSECRET" not in failed["message"]

    assert admin.put("/api/v1/destinations/nope", json={"kind": "slack", "config": {}}).status_code == 404
    assert admin.post("/api/v1/destinations/nope/test").status_code == 404
    assert admin.delete("/api/v1/destinations/chat").status_code == 204
    assert [d["name"] for d in admin.get("/api/v1/destinations").json()["destinations"]] == ["soc-hook"]
    actions = [r["action"] for r in audit.read(web_home) if r["action"].startswith("destination.")]
    assert actions == ["destination.created", "destination.created", "destination.tested", "destination.updated",
                       "destination.tested", "destination.tested", "destination.removed"]
    logged = b"".join(path.read_bytes() for path in audit.audit_dir(web_home).glob("*.ndjson"))
    assert HMAC_KEY.encode() not in logged and HEADER_SECRET.encode() not in logged and b"SLACKSECRET" not in logged


def test_kinds_describe_each_form(token_client: Clients) -> None:
    kinds = token_client("ReadOnly").get("/api/v1/destinations/kinds").json()["kinds"]
    assert len(kinds) == 10
    webhook = {f["name"]: f for f in kinds["webhook"]}
    assert webhook["secret"]["input"] == "secret" and webhook["secret"]["required"] is True
    assert webhook["allow_http"]["input"] == "checkbox" and webhook["headers"]["input"] == "json"
    assert {f["name"]: f for f in kinds["teams"]}["format"]["choices"] == ["adaptive_card", "message_card"]


def test_who_may_do_what(token_client: Clients) -> None:
    body = {"name": "x", "kind": "slack", "config": {"webhook_url": "https://hooks.slack.com/services/T/B/X"}}
    for role in ("Support", "Operations"):
        caller = token_client(role)
        assert caller.get("/api/v1/destinations").status_code == 403
        assert caller.post("/api/v1/destinations", json=body).status_code == 403
    for role in ("Analyst", "ReadOnly"):
        caller = token_client(role)
        assert caller.get("/api/v1/destinations").status_code == 200
        assert caller.post("/api/v1/destinations", json=body).status_code == 403
        assert caller.post("/api/v1/destinations/x/test").status_code == 403
