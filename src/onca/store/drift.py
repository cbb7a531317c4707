"""Schema drift: does the live database match what the migrations define at the expected revision?

At the head revision the reference is the models themselves (Alembic's autogenerate comparison:
tables, columns, types, nullability, indexes, unique constraints, foreign keys). For an older revision
the reference is a scratch SQLite database migrated to that revision and reflected; types are not
compared then, because SQLite's reflected types do not map one to one onto PostgreSQL's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, text

from onca.store import db
from onca.store.models import Base

VERSION_TABLE = "alembic_version"


def reference_metadata(revision: str) -> MetaData:
    """The tables the migrations define at `revision`."""
    if revision == db.head_revision():
        return Base.metadata
    with tempfile.TemporaryDirectory(prefix="onca-drift-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'reference.db'}"
        db.migrate(url, None, revision)
        engine = db.make_engine(url)
        try:
            metadata = MetaData()
            with engine.connect() as conn:
                metadata.reflect(conn)
        finally:
            engine.dispose()
    metadata.remove(metadata.tables[VERSION_TABLE])
    return metadata


def check_drift(url: str, schema: str | None, expected_revision: str | None) -> list[str]:
    """Human-readable differences between the live database and `expected_revision` (empty: no drift).

    With expected_revision None the live revision is the reference.
    """
    problems: list[str] = []
    live = db.current_revision(url, schema)
    if expected_revision is not None and live != expected_revision:
        problems.append(f"revision is {live or 'none (never migrated)'} but the ledger expects {expected_revision}")
    reference = expected_revision or live
    if reference is None:
        if not problems:
            problems.append("the database has no revision: it was never migrated")
        return problems
    if not db.known_revision(reference):
        problems.append(f"revision {reference} is not known to this release, so its tables cannot be checked")
        return problems
    at_head = reference == db.head_revision()
    metadata = reference_metadata(reference)
    engine = db.make_engine(url, schema)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql" and conn.execute(text("SELECT current_schema()")).scalar() is None:
                problems.append(f"schema {schema} does not exist")
                return problems
            context = MigrationContext.configure(conn, opts={"compare_type": at_head,
                                                             "compare_server_default": False})
            diffs = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    problems.extend(describe(diff) for diff in _flatten(diffs))
    return problems


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    """Autogenerate nests column modifications in lists; flatten to single tuples."""
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        if isinstance(diff, list):
            flat.extend(diff)
        else:
            flat.append(diff)
    return flat


def describe(diff: tuple[Any, ...]) -> str:
    """One autogenerate difference in words: the live database is compared with the reference."""
    kind = diff[0]
    if kind == "add_table":
        return f"table {diff[1].name} is missing"
    if kind == "remove_table":
        return f"unexpected table {diff[1].name}"
    if kind == "add_column":
        return f"table {diff[2]} is missing column {diff[3].name}"
    if kind == "remove_column":
        return f"table {diff[2]} has an unexpected column {diff[3].name}"
    if kind == "modify_nullable":
        _, _, table, column, _, live, expected = diff
        return (f"column {table}.{column} is {'nullable' if live else 'NOT NULL'} but should be "
                f"{'nullable' if expected else 'NOT NULL'}")
    if kind == "modify_type":
        _, _, table, column, _, live, expected = diff
        return f"column {table}.{column} has type {live} but should be {expected}"
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        columns = ", ".join(c.name for c in index.columns)
        what = "is missing index" if kind == "add_index" else "has an unexpected index"
        return f"table {index.table.name} {what} {index.name} ({columns})"
    if kind in ("add_constraint", "remove_constraint"):
        constraint = diff[1]
        columns = ", ".join(c.name for c in constraint.columns)
        what = "is missing constraint" if kind == "add_constraint" else "has an unexpected constraint"
        return f"table {constraint.table.name} {what} {constraint.name} ({columns})"
    if kind in ("add_fk", "remove_fk"):
        fk = diff[1]
        columns = ", ".join(c.name for c in fk.columns)
        what = "is missing foreign key" if kind == "add_fk" else "has an unexpected foreign key"
        return f"table {fk.parent.name} {what} {fk.name} ({columns} -> {fk.referred_table.name})"
    return f"schema difference: {diff!r}"
