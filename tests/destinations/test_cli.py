"""`onca destinations add|list|remove|test` on a real home (keyring + migrated SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from onca.cli.destinations_command import app
from onca.core import audit
from onca.destinations.webhook import verify_signature
from tests.destinations.conftest import Receiver

runner = CliRunner()
TOKEN = "ghp_TOPSECRET" + "z" * 30


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def test_add_list_test_remove(home: Path, database_url: str, receiver: Receiver) -> None:
    code, out, err = run(home, "add", "soc-hook", "--kind", "webhook", "--config", f"url={receiver.url}/onca",
                         "--config", "secret=TOPSECRET-hmac-key", "--severity", "high,CRITICAL",
                         "--log-type", "AWS.CloudTrail")
    assert code == 0, err
    assert "Destination soc-hook (webhook) saved." in out
    assert run(home, "add", "gh", "--kind", "github", "--config", "repo=octo/alerts", "--config",
               f"token={TOKEN}", "--config", f"api_url={receiver.url}")[0] == 0

    code, out, _ = run(home, "list")
    assert code == 0 and "soc-hook  webhook" in out and "severities: HIGH, CRITICAL" in out
    assert "TOPSECRET" not in out and "token: ****" in out
    code, out, _ = run(home, "list", "--format", "json")
    listed = {d["name"]: d for d in json.loads(out)}
    assert listed["soc-hook"]["config"]["secret"] == "****" and listed["soc-hook"]["log_types"] == ["AWS.CloudTrail"]
    assert "TOPSECRET" not in out

    # Stored encrypted: the database file does not contain the secrets.
    raw = (home / "metadata.db").read_bytes() + b"".join(p.read_bytes() for p in home.glob("metadata.db-*"))
    assert b"TOPSECRET" not in raw
    engine = create_engine(database_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT config_encrypted FROM destinations WHERE name = 'soc-hook'")).scalar()
    engine.dispose()
    fernet = Fernet((home / "config" / "keyring.key").read_bytes())
    assert json.loads(fernet.decrypt(stored.encode()))["secret"] == "TOPSECRET-hmac-key"

    code, out, err = run(home, "test", "soc-hook")
    assert code == 0, err
    assert out.startswith("OK: soc-hook: HTTP 200")
    (request,) = receiver.requests
    assert request.path == "/onca" and request.json["type"] == "test"
    assert request.json["alert"]["title"] == "Test alert from Onca for destination soc-hook"
    assert verify_signature("TOPSECRET-hmac-key", request.body, request.headers)

    receiver.respond(401, "bad credentials")
    code, _, err = run(home, "test", "gh")
    assert code == 1 and "FAILED: gh: permanent failure: HTTP 401" in err and "bad credentials" in err

    assert run(home, "remove", "gh")[0] == 0
    code, out, _ = run(home, "list", "--format", "json")
    assert [d["name"] for d in json.loads(out)] == ["soc-hook"]
    code, _, err = run(home, "remove", "gh")
    assert code == 2 and "no destination named 'gh'" in err
    actions = [entry["action"] for entry in audit.read(home)]
    assert actions == ["destination.created", "destination.created", "destination.removed"]


def test_add_rejects_bad_config_with_field_messages(home: Path, database_url: str) -> None:
    code, _, err = run(home, "add", "pd", "--kind", "pagerduty", "--config", "routing_key=abc")
    assert code == 2 and "error: routing_key: must be the 32-character integration key" in err
    code, _, err = run(home, "add", "j", "--kind", "jira", "--config", "url=http://jira.example.com")
    assert code == 2
    assert "url: must use https://" in err and "project_key: is required" in err and "api_token: is required" in err
    code, _, err = run(home, "add", "x", "--kind", "carrier-pigeon")
    assert code == 2 and "unknown destination kind 'carrier-pigeon'" in err
    code, _, err = run(home, "add", "s", "--kind", "slack", "--config", "webhook_url=https://hooks.slack.com/x",
                       "--severity", "urgent")
    assert code == 2 and "'urgent' is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL" in err
    code, _, err = run(home, "add", "s", "--kind", "slack", "--config", "oops")
    assert code == 2 and "'oops' is not KEY=VALUE" in err


def test_duplicate_names_need_replace(home: Path, database_url: str) -> None:
    args = ["add", "s", "--kind", "slack", "--config", "webhook_url=https://hooks.slack.com/services/A"]
    assert run(home, *args)[0] == 0
    code, _, err = run(home, *args)
    assert code == 2 and "already exists (use --replace" in err
    assert run(home, *args, "--replace", "--severity", "LOW")[0] == 0
    _, out, _ = run(home, "list", "--format", "json")
    assert json.loads(out)[0]["severities"] == ["LOW"]


def test_email_recipients_repeat(home: Path, database_url: str) -> None:
    code, _, err = run(home, "add", "mail", "--kind", "email", "--config", "smtp_url=smtp://u:TOPSECRET@mail.example.com",
                       "--config", "sender=onca@example.com", "--config", "to=a@example.com",
                       "--config", "to=b@example.com")
    assert code == 0, err
    _, out, _ = run(home, "list", "--format", "json")
    config = json.loads(out)[0]["config"]
    assert config["to"] == ["a@example.com", "b@example.com"] and config["smtp_url"] == "smtp://mail.example.com/****"


def test_without_a_deployment(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "nowhere", "list")
    assert code == 2 and "run `onca deploy` first" in err
