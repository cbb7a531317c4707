from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from onca.store import db
from onca.store.models import AuditLog, Invite, Setting, Source, User

TABLES = ["alembic_version", "alert_uniques", "alerts", "api_tokens", "audit_log", "content_packs", "deliveries",
          "destinations", "invites", "login_throttle", "mfa_replay", "outbox", "processed_matches", "role_bindings",
          "settings", "sources", "users", "web_sessions"]
FIRST = "0001_identity_audit"


def test_migrate_to_head_creates_every_table(database: tuple[str, str | None]) -> None:
    url, schema = database
    assert db.current_revision(url, schema) is None
    assert db.migrate(url, schema) == db.head_revision()
    assert db.current_revision(url, schema) == db.head_revision()
    assert db.table_names(url, schema) == TABLES
    # Idempotent: a second run changes nothing.
    assert db.migrate(url, schema) == db.head_revision()
    assert db.table_names(url, schema) == TABLES


def test_migrate_down_and_up(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    db.migrate(url, schema, FIRST)
    assert db.current_revision(url, schema) == FIRST
    assert "sources" not in db.table_names(url, schema)
    db.migrate(url, schema)
    assert "sources" in db.table_names(url, schema)


def test_unknown_revision_is_refused(database: tuple[str, str | None]) -> None:
    url, schema = database
    with pytest.raises(db.StoreError, match="not known"):
        db.migrate(url, schema, "9999_from_the_future")


def test_models_round_trip(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    engine = db.make_engine(url, schema)
    try:
        expires = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        with db.session_scope(engine) as session:
            user = User(email="admin@example.com", display_name="Admin", role="Admin")
            session.add(user)
            session.flush()
            session.add(Invite(user_id=user.id, token_hash="ab" * 32, expires_at=expires))
            session.add(AuditLog(actor="system", action="deploy", target="stack", details={"a": [1, 2]}))
            session.add(Source(name="self", kind="audit", log_types=["Onca.Audit"], config={}, enabled=True))
            session.add(Setting(key="k", value={"nested": True}))
        with db.session_scope(engine) as session:
            invite = session.scalars(select(Invite)).one()
            assert invite.expires_at == expires and invite.expires_at.tzinfo is not None
            assert session.scalars(select(AuditLog)).one().details == {"a": [1, 2]}
            assert session.scalars(select(Source)).one().log_types == ["Onca.Audit"]
            created = session.scalars(select(User)).one().created_at
            assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
        # Foreign keys are enforced on both backends; so are the role and status checks.
        with pytest.raises(Exception), db.session_scope(engine) as session:  # noqa: B017
            session.add(Invite(user_id=999, token_hash="cd" * 32, expires_at=expires))
        with pytest.raises(Exception), db.session_scope(engine) as session:  # noqa: B017
            session.add(User(email="x@example.com", role="Root"))
    finally:
        engine.dispose()


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'metadata.db'}"
    db.migrate(url, None)
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_postgres_tables_live_only_in_the_stack_schema(postgres_url: str) -> None:
    from tests.store.conftest import drop_schema, fresh_schema

    schema = fresh_schema()
    try:
        # Both spellings of the URL work.
        db.migrate(postgres_url.replace("postgresql://", "postgresql+psycopg://"), schema)
        engine = db.make_engine(postgres_url, schema)
        with engine.connect() as conn:
            where = conn.execute(text("SELECT DISTINCT schemaname FROM pg_tables WHERE tablename = 'users' "
                                      "AND schemaname = :s"), {"s": schema}).scalars().all()
            assert where == [schema]
            assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 0
        engine.dispose()
    finally:
        drop_schema(postgres_url, schema)


def test_redact_hides_the_password() -> None:
    assert db.redact("postgresql://u:secret@h:5432/d") == "postgresql://u@h:5432/d"
    assert db.redact("sqlite:////x/metadata.db") == "sqlite:////x/metadata.db"


def test_bad_schema_names_are_refused() -> None:
    with pytest.raises(db.StoreError):
        db.make_engine("postgresql://u@127.0.0.1/d", "x; DROP TABLE users")
