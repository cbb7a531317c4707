"""Migration 0003_alerts up and down on SQLite and PostgreSQL, and the models matching it exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onca.store import db
from onca.store.drift import check_drift
from onca.store.models import Alert, Delivery, Destination, Outbox

ALERT_TABLES = {"alerts", "alert_uniques", "processed_matches", "deliveries", "outbox", "destinations"}
PREVIOUS = "0002_sources_settings_packs"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_0003_creates_the_alert_tables_and_the_models_match_it(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema, "0003_alerts")
    assert set(db.table_names(url, schema)) >= ALERT_TABLES
    assert check_drift(url, schema, "0003_alerts") == []


def test_down_to_0002_and_up_again(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    db.migrate(url, schema, PREVIOUS)
    tables = set(db.table_names(url, schema))
    assert db.current_revision(url, schema) == PREVIOUS
    assert not ALERT_TABLES & tables and {"sources", "users"} <= tables
    assert check_drift(url, schema, PREVIOUS) == []
    db.migrate(url, schema)
    assert set(db.table_names(url, schema)) >= ALERT_TABLES


def alert(**overrides: object) -> Alert:
    values: dict[str, object] = dict(
        id="a" * 32, rule_id="R", kind="RULE", dedup="d", dedup_key="k" * 32, severity="HIGH", title="t",
        first_event_time=NOW, last_event_time=NOW, window_start=NOW, window_end=NOW, event_count=1,
        alert_context={"a": [1]}, log_types=["X"])
    values.update(overrides)
    return Alert(**values)


def test_constraints_hold_on_both_backends(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(alert())
        session.add(Destination(name="slack", kind="slack", config_encrypted="gAAAA", severities=["HIGH"]))
    with Session(engine) as session:
        stored = session.get(Alert, "a" * 32)
        assert stored is not None and stored.alert_context == {"a": [1]} and stored.window_start == NOW
        assert (stored.status, stored.raised, stored.assignee) == ("OPEN", False, None)
    bad = [alert(id="b" * 32, status="DONE"), alert(id="b" * 32, kind="POLICY"), alert(id="b" * 32, severity="x"),
           alert(id="b" * 32),  # same dedup_key and window_start as the first: one alert per window
           Outbox(alert_id="0" * 32, destination="slack"),  # foreign key
           Delivery(alert_id="a" * 32, destination="slack", attempt=1, outcome="maybe"),
           Destination(name="slack", kind="sqs", config_encrypted="")]
    for row in bad:
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(row)
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.add_all([Outbox(alert_id="a" * 32, destination=name) for name in ("slack", "slack")])
