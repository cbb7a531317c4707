"""Config validation with field-level messages, encryption at rest and masking."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from onca.destinations import registry
from onca.destinations.base import ConfigError
from onca.destinations.secrets import SecretError, decrypt_config, encrypt_config, masked

PD_KEY = "R0123456789abcdef0123456789ABCDE"
GOOD = {
    "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/SECRETPATH"},
    "teams": {"webhook_url": "https://prod.westus.logic.azure.com/workflows/SECRETPATH"},
    "pagerduty": {"routing_key": PD_KEY},
    "opsgenie": {"api_key": "0123abcd-4567-89ab-cdef-0123456789ab"},
    "jira": {"url": "https://example.atlassian.net", "project_key": "SEC", "user": "bot@example.com",
             "api_token": "jira-SECRET-token"},
    "github": {"repo": "octo-org/security-alerts", "token": "ghp_SECRET" + "x" * 30},
    "webhook": {"url": "https://hooks.example.com/onca", "secret": "SECRET-shared-key-123"},
    "email": {"smtp_url": "smtp://user:SECRETPW@mail.example.com:587", "sender": "onca@example.com",
              "to": "a@example.com, b@example.com"},
    "sns": {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:alerts", "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "SECRETKEY"},
    "sqs": {"queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/alerts"},
}


def problems(kind: str, config: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        registry.validate(kind, config)
    assert caught.value.kind == kind
    return caught.value.problems


def test_there_are_ten_kinds_and_good_configs_validate() -> None:
    assert sorted(registry.KINDS) == sorted(GOOD)
    for kind, config in GOOD.items():
        registry.validate(kind, config)
    assert registry.kind_of("msteams").kind == "teams"


@pytest.mark.parametrize(("kind", "config", "field", "fragment"), [
    ("slack", {"webhook_url": "http://hooks.slack.com/services/x"}, "webhook_url", "https"),
    ("slack", {"webhook_url": "hooks.slack.com/services/x"}, "webhook_url", "absolute https"),
    ("slack", {}, "webhook_url", "is required"),
    ("slack", {"webhook_url": "https://hooks.slack.com/x", "channel": "#sec"}, "channel", "not a setting"),
    ("teams", {"webhook_url": "https://x.example.com/w", "format": "card"}, "format", "adaptive_card"),
    ("pagerduty", {"routing_key": "short"}, "routing_key", "32-character"),
    ("pagerduty", {"routing_key": PD_KEY, "api_url": "ftp://x"}, "api_url", "https"),
    ("opsgenie", {"api_key": "not-a-uuid"}, "api_key", "UUID"),
    ("opsgenie", {"api_key": "0123abcd-4567-89ab-cdef-0123456789ab", "region": "ap"}, "region", "'us' or 'eu'"),
    ("jira", {**GOOD["jira"], "project_key": "sec"}, "project_key", "project key"),
    ("jira", {**GOOD["jira"], "url": "http://jira.example.com"}, "url", "https"),
    ("jira", {k: v for k, v in GOOD["jira"].items() if k != "api_token"}, "api_token", "is required"),
    ("jira", {**GOOD["jira"], "user": ""}, "user", "must not be empty"),
    ("jira", {**GOOD["jira"], "labels": ["has space"]}, "labels", "spaces"),
    ("github", {**GOOD["github"], "repo": "just-a-name"}, "repo", "owner/name"),
    ("github", {**GOOD["github"], "token": "short"}, "token", "GitHub token"),
    ("webhook", {**GOOD["webhook"], "secret": "short"}, "secret", "at least 16"),
    ("webhook", {**GOOD["webhook"], "url": "http://hooks.example.com/x"}, "url", "https"),
    ("webhook", {**GOOD["webhook"], "headers": '{"X-Onca-Signature": "x"}'}, "headers", "may not set"),
    ("webhook", {**GOOD["webhook"], "headers": "{not json"}, "headers", "JSON object"),
    ("email", {**GOOD["email"], "to": "not-an-address"}, "to", "not email addresses"),
    ("email", {**GOOD["email"], "smtp_url": "mail.example.com"}, "smtp_url", "smtp://"),
    ("email", {**GOOD["email"], "sender": "nobody"}, "sender", "email address"),
    ("sns", {"topic_arn": "arn:aws:sqs:us-east-1:123456789012:q"}, "topic_arn", "SNS topic ARN"),
    ("sns", {**GOOD["sns"], "region": "mars-1"}, "region", "AWS region"),
    ("sns", {**GOOD["sns"], "access_key_id": ""}, "secret_access_key", "go together"),
    ("sqs", {"queue_url": "https://sqs.us-east-1.amazonaws.com/alerts"}, "queue_url", "queue URL"),
])
def test_field_level_messages(kind: str, config: dict, field: str, fragment: str) -> None:
    found = problems(kind, config)
    assert field in found, found
    assert fragment in found[field], found[field]
    assert fragment in str(ConfigError(kind, found))


def test_several_problems_are_reported_together() -> None:
    found = problems("jira", {"url": "nope", "project_key": "x"})
    assert set(found) == {"url", "project_key", "user", "api_token"}


def test_http_is_allowed_for_loopback_and_opt_in_webhooks() -> None:
    registry.validate("slack", {"webhook_url": "http://127.0.0.1:8080/hook"})
    registry.validate("webhook", {**GOOD["webhook"], "url": "http://10.0.0.5/hook", "allow_http": "true"})


def test_region_defaults_from_arn_and_queue_url() -> None:
    assert registry.validate("sns", GOOD["sns"]).effective_region == "eu-west-1"  # type: ignore[attr-defined]
    assert registry.validate("sqs", GOOD["sqs"]).effective_region == "eu-west-1"  # type: ignore[attr-defined]


def test_configs_are_encrypted_and_listings_never_show_secrets() -> None:
    fernet = Fernet(Fernet.generate_key())
    for kind, raw in GOOD.items():
        config = registry.validate(kind, raw)
        token = encrypt_config(fernet, config)
        assert "SECRET" not in token and "hooks.slack" not in token
        assert registry.validate(kind, decrypt_config(fernet, token)) == config
        shown = json.dumps(masked(config))
        assert "SECRET" not in shown, (kind, shown)
        assert ("****" in shown) == (kind != "sqs"), shown  # the SQS example uses the default credentials
    assert masked(registry.validate("slack", GOOD["slack"]))["webhook_url"] == "https://hooks.slack.com/****"
    with pytest.raises(SecretError, match="keyring"):
        decrypt_config(Fernet(Fernet.generate_key()), encrypt_config(fernet, GOOD["slack"]))
