from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from onca.store import db
from onca.store.models import AuditLog, Invite, Source, User
from onca.store.snapshot import SnapshotError, restore_snapshot, take_snapshot

FIRST = "0001_identity_audit"


def content(url: str, schema: str | None) -> dict[str, Any]:
    """Every table's columns (name, type, nullability) and rows, plus the revision."""
    engine = db.make_engine(url, schema)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            tables: dict[str, Any] = {}
            for table in sorted(inspector.get_table_names()):
                columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
                names = ", ".join(f'"{c[0]}"' for c in columns)
                rows = conn.execute(text(f'SELECT {names} FROM "{table}" ORDER BY {names}')).all()
                tables[table] = {
                    "columns": columns,
                    "rows": [tuple(row) for row in rows],
                    "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
                    "unique": sorted((u["name"], tuple(u["column_names"]))
                                     for u in inspector.get_unique_constraints(table)),
                }
        return tables
    finally:
        engine.dispose()


def seed(url: str, schema: str | None) -> None:
    engine = db.make_engine(url, schema)
    try:
        with db.session_scope(engine) as session:
            for n in range(5):
                user = User(email=f"u{n}@example.com", display_name=f"User {n}", role="Analyst",
                            created_at=datetime(2025, 1, 1, 12, 0, n, 123456, tzinfo=UTC))
                session.add(user)
                session.flush()
                session.add(Invite(user_id=user.id, token_hash=f"{n:064x}",
                                   expires_at=datetime(2026, 1, 1, tzinfo=UTC)))
            session.add(AuditLog(actor="system", action="deploy", target="stack",
                                 details={"unicode": "é ☃ \n newline", "n": 1.5}))
        with db.session_scope(engine) as session:
            # A deleted row leaves a gap in the ids: restore must not hand that id out again.
            session.delete(session.scalars(select(User).where(User.email == "u4@example.com")).one())
    finally:
        engine.dispose()


def modify(url: str, schema: str | None) -> None:
    engine = db.make_engine(url, schema)
    try:
        with db.session_scope(engine) as session:
            session.add(User(email="late@example.com", role="ReadOnly"))
            session.scalars(select(User).where(User.email == "u0@example.com")).one().display_name = "renamed"
            session.delete(session.scalars(select(User).where(User.email == "u1@example.com")).one())
    finally:
        engine.dispose()
    db.migrate(url, schema)  # a newer migration: new tables appear
    engine = db.make_engine(url, schema)
    try:
        with db.session_scope(engine) as session:
            session.add(Source(name="self", kind="audit", log_types=["Onca.Audit"], config={"x": 1}))
    finally:
        engine.dispose()


def test_restore_is_exact_after_changes_and_a_newer_migration(database: tuple[str, str | None],
                                                                tmp_path: Path) -> None:
    url, schema = database
    db.migrate(url, schema, FIRST)
    seed(url, schema)
    before = content(url, schema)
    snapshot = take_snapshot(url, schema, tmp_path / "snapshots" / "before")
    assert snapshot.is_file()

    modify(url, schema)
    assert db.current_revision(url, schema) == db.head_revision()
    assert content(url, schema) != before

    restore_snapshot(url, schema, snapshot)
    assert db.current_revision(url, schema) == FIRST
    after = content(url, schema)
    assert after.keys() == before.keys()
    for table in before:
        assert after[table] == before[table], table

    # New rows get fresh ids: never one that existed before the snapshot (u4 had id 5).
    engine = db.make_engine(url, schema)
    try:
        with db.session_scope(engine) as session:
            user = User(email="new@example.com", role="Admin")
            session.add(user)
            session.flush()
            assert user.id == 6
    finally:
        engine.dispose()

    # Restoring twice is the same as once; and the database can still go forward.
    restore_snapshot(url, schema, snapshot)
    assert content(url, schema) == before
    db.migrate(url, schema)
    assert db.current_revision(url, schema) == db.head_revision()


def test_restore_into_a_database_that_is_gone(database: tuple[str, str | None], tmp_path: Path) -> None:
    url, schema = database
    db.migrate(url, schema)
    seed(url, schema)
    before = content(url, schema)
    snapshot = take_snapshot(url, schema, tmp_path / "snap")
    if schema is None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db.sqlite_path(url)) + suffix).unlink(missing_ok=True)
    else:
        from tests.store.conftest import drop_schema

        drop_schema(url, schema)
    restore_snapshot(url, schema, snapshot)
    assert content(url, schema) == before


def test_sqlite_snapshot_is_consistent_while_a_writer_is_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    db.migrate(url, None)
    seed(url, None)
    before = content(url, None)
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            conn.begin()
            conn.execute(text("INSERT INTO settings (key, value) VALUES ('uncommitted', '1')"))
            snapshot = take_snapshot(url, None, tmp_path / "snap.db")
            conn.rollback()
    finally:
        engine.dispose()
    other = f"sqlite:///{tmp_path / 'copy.db'}"
    restore_snapshot(other, None, snapshot)
    assert content(other, None) == before


def test_postgres_snapshot_rejects_garbage(postgres_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("not json\n")
    with pytest.raises(SnapshotError, match="not an Onca"):
        restore_snapshot(postgres_url, "onca_never_created", bad)
    with pytest.raises(SnapshotError, match="does not exist"):
        restore_snapshot(postgres_url, "onca_never_created", tmp_path / "missing")


def test_a_directory_as_destination(database: tuple[str, str | None], tmp_path: Path) -> None:
    url, schema = database
    db.migrate(url, schema)
    seed(url, schema)
    before = content(url, schema)
    folder = tmp_path / "database"
    folder.mkdir()
    written = take_snapshot(url, schema, folder)
    assert written.parent == folder and written.is_file()
    assert [p.name for p in folder.iterdir()] == [written.name]
    modify(url, schema)
    restore_snapshot(url, schema, folder)
    assert content(url, schema) == before
