"""Migration 0005_alert_triage (alerts.updated_by and the console's list indexes) up and down on both backends."""

from __future__ import annotations

from sqlalchemy import inspect

from onca.store import db
from onca.store.drift import check_drift

PREVIOUS = "0004_web_auth"


def _alerts(url: str, schema: str | None) -> tuple[set[str], set[str]]:
    engine = db.make_engine(url, schema)
    try:
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("alerts", schema=schema)}
        indexes = {i["name"] for i in inspector.get_indexes("alerts", schema=schema)}
        return columns, indexes
    finally:
        engine.dispose()


def test_up_down_and_up_again(database: tuple[str, str | None]) -> None:
    url, schema = database
    assert db.head_revision() == "0005_alert_triage"
    db.migrate(url, schema)
    columns, indexes = _alerts(url, schema)
    assert "updated_by" in columns
    assert {"ix_alerts_status_created_at_id", "ix_alerts_status_severity_raised"} <= indexes
    assert check_drift(url, schema, None) == []
    db.migrate(url, schema, PREVIOUS)
    columns, indexes = _alerts(url, schema)
    assert "updated_by" not in columns and "ix_alerts_created_at_id" not in indexes
    db.migrate(url, schema)
    assert check_drift(url, schema, None) == []
