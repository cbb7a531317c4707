from __future__ import annotations

from sqlalchemy import text

from onca.store import db
from onca.store.drift import check_drift

FIRST = "0001_identity_audit"


def execute(url: str, schema: str | None, sql: str) -> None:
    engine = db.make_engine(url, schema)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def test_no_drift_after_migrating(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    assert check_drift(url, schema, db.head_revision()) == []
    assert check_drift(url, schema, None) == []


def test_no_drift_at_an_older_revision(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema, FIRST)
    assert check_drift(url, schema, FIRST) == []


def test_a_column_added_by_hand_is_reported(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    execute(url, schema, "ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
    assert check_drift(url, schema, db.head_revision()) == ["table users has an unexpected column nickname"]


def test_hand_made_changes_at_an_older_revision_are_reported(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema, FIRST)
    execute(url, schema, "ALTER TABLE audit_log ADD COLUMN extra TEXT")
    execute(url, schema, "DROP TABLE role_bindings")
    execute(url, schema, "CREATE TABLE scratch (id INTEGER PRIMARY KEY)")
    assert sorted(check_drift(url, schema, FIRST)) == [
        "table audit_log has an unexpected column extra",
        "table role_bindings is missing",
        "unexpected table scratch",
    ]


def test_wrong_revision_is_reported(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema, FIRST)
    problems = check_drift(url, schema, db.head_revision())
    assert problems[0] == f"revision is {FIRST} but the ledger expects {db.head_revision()}"
    # The tables are compared with what the expected revision defines, so the missing ones are named.
    assert "table sources is missing" in problems


def test_never_migrated_database(database: tuple[str, str | None]) -> None:
    url, schema = database
    assert check_drift(url, schema, None) == ["the database has no revision: it was never migrated"]
    assert check_drift(url, schema, FIRST)[0] == f"revision is none (never migrated) but the ledger expects {FIRST}"


def test_revision_unknown_to_this_release(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    problems = check_drift(url, schema, "0099_future")
    assert problems == [f"revision is {db.head_revision()} but the ledger expects 0099_future",
                        "revision 0099_future is not known to this release, so its tables cannot be checked"]
