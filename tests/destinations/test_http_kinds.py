"""Every HTTP kind against a real HTTP server on 127.0.0.1: method, path, headers and JSON body."""

from __future__ import annotations

import base64
import time

from onca.destinations import registry
from onca.destinations.base import Alert, Result
from onca.destinations.webhook import verify_signature
from tests.destinations.conftest import Receiver

PD_KEY = "R0123456789abcdef0123456789ABCDE"
OG_KEY = "0123abcd-4567-89ab-cdef-0123456789ab"


def send(kind: str, config: dict, alert: Alert, timeout: float = 5.0) -> Result:
    destination = registry.kind_of(kind)
    return destination.send(alert, registry.validate(kind, config), timeout)


def test_slack_posts_text_and_blocks(receiver: Receiver, alert: Alert) -> None:
    result = send("slack", {"webhook_url": f"{receiver.url}/services/T000/B000/XXXX"}, alert)
    assert result.success and result.status_code == 200
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/services/T000/B000/XXXX")
    assert request.headers["Content-Type"] == "application/json"
    body = request.json
    assert "[HIGH] Root login from 198.51.100.23" in body["text"]
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                            "text": "[HIGH] Root login from 198.51.100.23"}}
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert "*Rule*\nAWS.Console.RootLogin" in fields and "*Events*\n3" in fields
    assert any(b["type"] == "actions" and b["elements"][0]["url"] == alert.link for b in body["blocks"])


def test_teams_adaptive_card_and_message_card(receiver: Receiver, alert: Alert) -> None:
    assert send("teams", {"webhook_url": f"{receiver.url}/workflows/1"}, alert).success
    assert send("teams", {"webhook_url": f"{receiver.url}/webhookb2/2", "format": "message_card"}, alert).success
    adaptive, legacy = receiver.requests
    assert adaptive.path == "/workflows/1"
    attachment = adaptive.json["attachments"][0]
    assert adaptive.json["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert {"title": "Severity", "value": "HIGH"} in attachment["content"]["body"][1]["facts"]
    assert legacy.path == "/webhookb2/2"
    assert legacy.json["@type"] == "MessageCard" and legacy.json["themeColor"] == "E65100"
    assert {"name": "Rule", "value": "AWS.Console.RootLogin"} in legacy.json["sections"][0]["facts"]


def test_pagerduty_events_v2_trigger(receiver: Receiver, alert: Alert) -> None:
    receiver.respond(202, {"status": "success", "message": "Event processed", "dedup_key": alert.id})
    result = send("pagerduty", {"routing_key": PD_KEY, "api_url": receiver.url}, alert)
    assert result.success and result.status_code == 202
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    body = request.json
    assert body["routing_key"] == PD_KEY and body["event_action"] == "trigger" and body["dedup_key"] == alert.id
    assert body["payload"]["severity"] == "error"  # HIGH
    assert body["payload"]["summary"] == "[HIGH] Root login from 198.51.100.23"
    assert body["payload"]["timestamp"] == "2024-05-01T12:00:00Z"
    assert body["payload"]["custom_details"]["alert_context"] == {"sourceIPAddress": "198.51.100.23"}
    assert body["links"] == [{"href": alert.link, "text": "Open in Onca"}]


def test_opsgenie_create_alert_with_alias(receiver: Receiver, alert: Alert) -> None:
    receiver.respond(202, {"result": "Request will be processed", "requestId": "r1"})
    result = send("opsgenie", {"api_key": OG_KEY, "api_url": receiver.url, "teams": "secops,oncall"}, alert)
    assert result.success
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/v2/alerts")
    assert request.headers["Authorization"] == f"GenieKey {OG_KEY}"
    body = request.json
    assert body["alias"] == alert.id and body["priority"] == "P2" and body["source"] == "Onca"
    assert body["message"] == "[HIGH] Root login from 198.51.100.23"
    assert body["responders"] == [{"name": "secops", "type": "team"}, {"name": "oncall", "type": "team"}]
    assert body["details"]["rule_id"] == "AWS.Console.RootLogin"


def test_opsgenie_eu_region_url() -> None:
    config = registry.validate("opsgenie", {"api_key": OG_KEY, "region": "EU"})
    assert config.base_url == "https://api.eu.opsgenie.com"  # type: ignore[attr-defined]


def test_jira_create_issue(receiver: Receiver, alert: Alert) -> None:
    receiver.respond(201, {"id": "10000", "key": "SEC-24", "self": "https://x/rest/api/2/issue/10000"})
    config = {"url": receiver.url, "project_key": "SEC", "user": "bot@example.com", "api_token": "tok-123",
              "issue_type": "Bug", "labels": "siem,cloud"}
    result = send("jira", config, alert)
    assert result.success and result.message == "created SEC-24"
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/rest/api/2/issue")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot@example.com:tok-123").decode()
    fields = request.json["fields"]
    assert fields["project"] == {"key": "SEC"} and fields["issuetype"] == {"name": "Bug"}
    assert fields["summary"] == "[HIGH] Root login from 198.51.100.23"
    assert "Rule: AWS.Console.RootLogin" in fields["description"]
    assert fields["labels"] == ["siem", "cloud", "onca", "severity-high"]


def test_github_create_issue(receiver: Receiver, alert: Alert) -> None:
    receiver.respond(201, {"number": 7, "html_url": "https://github.com/octo/alerts/issues/7"})
    token = "ghp_" + "a" * 36
    result = send("github", {"repo": "octo/alerts", "token": token, "api_url": receiver.url, "labels": "security"},
                  alert)
    assert result.success and result.message == "created https://github.com/octo/alerts/issues/7"
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/repos/octo/alerts/issues")
    assert request.headers["Authorization"] == f"Bearer {token}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    body = request.json
    assert body["title"] == "[HIGH] Root login from 198.51.100.23"
    assert "**Rule:** `AWS.Console.RootLogin`" in body["body"] and body["labels"] == ["security", "severity:high"]


def test_github_rate_limit_403_is_transient(receiver: Receiver, alert: Alert) -> None:
    receiver.respond(403, {"message": "API rate limit exceeded"}, {"x-ratelimit-remaining": "0",
                                                                   "retry-after": "60"})
    result = send("github", {"repo": "octo/alerts", "token": "ghp_" + "a" * 36, "api_url": receiver.url}, alert)
    assert not result.success and not result.permanent and result.retry_after == 60


def test_webhook_signature_verifies_at_the_receiver(receiver: Receiver, alert: Alert) -> None:
    secret = "s3cret-shared-with-receiver"
    result = send("webhook", {"url": f"{receiver.url}/hooks/onca", "secret": secret,
                              "headers": '{"Authorization": "Bearer rcv"}'}, alert)
    assert result.success
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/onca")
    assert request.headers["X-Onca-Delivery"] == alert.id and request.headers["Authorization"] == "Bearer rcv"
    assert request.headers["X-Onca-Signature"].startswith("v1=")
    assert verify_signature(secret, request.body, request.headers)
    body = request.json
    assert body["type"] == "alert" and body["alert"]["id"] == alert.id
    assert body["alert"]["first_event_time"] == "2024-05-01T12:00:00Z"
    # Tampered body, wrong secret, or a replay ten minutes later: all rejected.
    assert not verify_signature(secret, request.body.replace(b"HIGH", b"LOW"), request.headers)
    assert not verify_signature("another-secret-value!", request.body, request.headers)
    assert not verify_signature(secret, request.body, request.headers, now=time.time() + 600)
    assert not verify_signature(secret, request.body, {})


def test_http_status_classification(receiver: Receiver, alert: Alert) -> None:
    config = {"url": receiver.url, "secret": "x" * 16}
    for status, permanent in ((500, False), (503, False), (429, False), (408, False), (400, True), (401, True),
                              (403, True), (404, True), (410, True)):
        receiver.respond(status, "nope", {"Retry-After": "7"} if status == 429 else None)
        result = send("webhook", config, alert)
        assert not result.success and result.status_code == status and result.permanent is permanent, status
        assert "nope" in result.message
        if status == 429:
            assert result.retry_after == 7


def test_connection_refused_and_timeout_are_transient(receiver: Receiver, closed_port_url: str,
                                                      alert: Alert) -> None:
    refused = send("slack", {"webhook_url": closed_port_url}, alert)
    assert not refused.success and not refused.permanent and "cannot connect" in refused.message
    receiver.delay = 1.0
    slow = send("slack", {"webhook_url": receiver.url}, alert, timeout=0.3)
    assert not slow.success and not slow.permanent and "no answer within 0.3s" in slow.message


def test_redirects_are_not_followed(receiver: Receiver, alert: Alert) -> None:
    receiver.respond(302, "", {"Location": f"{receiver.url}/elsewhere"})
    result = send("slack", {"webhook_url": receiver.url}, alert)
    assert not result.success and result.permanent and len(receiver.requests) == 1
