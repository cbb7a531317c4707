"""`onca alerts list/show/update` against the metadata database of a deployment home."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from onca.alerts.manager import AlertManager
from onca.cli.alerts_command import app
from onca.store import db
from onca.store.models import Alert, AuditLog, Delivery

from .conftest import LOG_TYPE, event, match

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose metadata database holds a raised HIGH alert, a raised LOW one and one below threshold."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'metadata.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    events = [event(f"r{i}", timedelta(minutes=i)) for i in range(4)]
    manager = AlertManager(sessionmaker(engine), route=lambda alert: ["slack"])
    manager.process([match("High.Rule", 0, severity="HIGH"), match("Low.Rule", 1, severity="LOW"),
                     match("Quiet.Rule", 2)], [], events=events, log_type=LOG_TYPE,
                    rule_meta={"Quiet.Rule": {"Threshold": 5}})
    with Session(engine) as session, session.begin():
        alert_id = session.scalars(select(Alert.id).where(Alert.rule_id == "High.Rule")).one()
        session.add(Delivery(alert_id=alert_id, destination="slack", attempt=1, outcome="retry", status_code=503,
                             message="unavailable"))
    engine.dispose()
    return home


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--home", str(home)])
    return result.exit_code, result.output


def listed(home: Path, *args: str) -> list[dict]:
    code, output = invoke(home, "list", "--format", "json", *args)
    assert code == 0, output
    return json.loads(output)


def test_list_shows_raised_alerts_with_filters(home: Path) -> None:
    assert sorted(a["rule_id"] for a in listed(home)) == ["High.Rule", "Low.Rule"]
    assert sorted(a["rule_id"] for a in listed(home, "--pending")) == ["High.Rule", "Low.Rule", "Quiet.Rule"]
    assert [a["rule_id"] for a in listed(home, "--severity", "high")] == ["High.Rule"]
    assert [a["rule_id"] for a in listed(home, "--rule", "Low.Rule")] == ["Low.Rule"]
    assert len(listed(home, "--limit", "1")) == 1
    assert listed(home, "--status", "CLOSED") == []
    code, output = invoke(home, "list")
    assert code == 0 and "High.Rule" in output and "Quiet.Rule" not in output
    code, output = invoke(home, "list", "--status", "bogus")
    assert code == 2 and "OPEN, TRIAGED, CLOSED" in output


def test_show_includes_outbox_and_deliveries(home: Path) -> None:
    (alert,) = listed(home, "--rule", "High.Rule")
    code, output = invoke(home, "show", alert["id"], "--format", "json")
    data = json.loads(output)
    assert code == 0 and data["event_count"] == 1 and data["type"] == "RULE"
    assert [o["destination"] for o in data["outbox"]] == ["slack"]
    assert [(d["outcome"], d["status_code"]) for d in data["deliveries"]] == [("retry", 503)]
    code, output = invoke(home, "show", alert["id"])
    assert code == 0 and "HTTP 503" in output and "slack: pending" in output
    assert invoke(home, "show", "0" * 32)[0] == 1


def test_update_status_and_assignee_is_audited(home: Path) -> None:
    (alert,) = listed(home, "--rule", "High.Rule")
    code, output = invoke(home, "update", alert["id"], "--status", "triaged", "--assignee", "Ana@Example.com")
    assert code == 0, output
    (after,) = listed(home, "--rule", "High.Rule")
    assert (after["status"], after["assignee"]) == ("TRIAGED", "ana@example.com")
    assert after["updated_at"] >= alert["updated_at"]
    assert [a["rule_id"] for a in listed(home, "--status", "TRIAGED")] == ["High.Rule"]
    code, output = invoke(home, "update", alert["id"], "--status", "RESOLVED", "--assignee", "")
    assert code == 0
    (after,) = listed(home, "--rule", "High.Rule")
    assert (after["status"], after["assignee"]) == ("RESOLVED", None)
    code, output = invoke(home, "update", alert["id"], "--status", "RESOLVED")
    assert code == 0 and "unchanged" in output
    engine = db.make_engine(f"sqlite:///{home / 'metadata.db'}")
    with Session(engine) as session:
        entries = session.scalars(select(AuditLog).where(AuditLog.action == "alert.updated").order_by(AuditLog.id))
        assert [{k: v for k, v in e.details.items() if k != "outcome"} for e in entries] == [
            {"status": ["OPEN", "TRIAGED"], "assignee": [None, "ana@example.com"]},
            {"status": ["TRIAGED", "RESOLVED"], "assignee": ["ana@example.com", None]}]
    engine.dispose()


def test_update_refuses_bad_input(home: Path) -> None:
    (alert,) = listed(home, "--rule", "High.Rule")
    assert invoke(home, "update", alert["id"], "--status", "DONE")[0] == 2
    assert invoke(home, "update", alert["id"], "--assignee", "not-an-email")[0] == 2
    assert invoke(home, "update", alert["id"])[0] == 2
    assert invoke(home, "update", "f" * 32, "--status", "CLOSED")[0] == 1


def test_a_home_without_a_database_fails_clearly(tmp_path: Path) -> None:
    code, output = invoke(tmp_path / "empty", "list")
    assert code == 2 and "deploy first" in output
    assert not (tmp_path / "empty" / "metadata.db").exists()


def test_a_database_before_the_alerts_migration_fails_clearly(tmp_path: Path) -> None:
    db.migrate(f"sqlite:///{tmp_path / 'metadata.db'}", None, "0002_sources_settings_packs")
    code, output = invoke(tmp_path, "list")
    assert code == 2 and "no alerts table" in output
