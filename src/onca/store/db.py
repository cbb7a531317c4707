"""Engines, sessions and migrations for the metadata database.

One function opens the database the same way everywhere (SQLite: WAL and foreign keys on; PostgreSQL
through psycopg 3 with search_path set to the stack's schema only, so unqualified names can never
land in another schema). Alembic runs programmatically from the migrations shipped in this package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StoreError(RuntimeError):
    """The metadata database cannot be used as asked (bad URL or schema, unknown revision...)."""


def backend(url: str) -> str:
    """'sqlite' or 'postgresql'."""
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported metadata database {name!r}: use sqlite:/// or postgresql://")
    return name


def normalize_url(url: str) -> URL:
    """The SQLAlchemy URL, with postgresql:// mapped to the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() != "sqlite":
        raise StoreError(f"unsupported metadata database {parsed.drivername!r}: use sqlite:/// or postgresql://")
    return parsed


def redact(url: str) -> str:
    """The URL without its password (safe for the ledger, events and logs)."""
    parsed = make_url(url)
    if parsed.password is not None:
        parsed = parsed._replace(password=None)  # URL.set() treats None as "unchanged"
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL; None for in-memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_schema(schema: str | None) -> str:
    if not schema or not SCHEMA_NAME.match(schema):
        raise StoreError(f"schema name {schema!r} must be lower-case letters, digits and _ (at most 63)")
    return schema


def make_engine(url: str, schema: str | None = None) -> Engine:
    """An engine for the metadata database. `schema` is required for PostgreSQL and ignored for SQLite."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            if sqlite_path(url) is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    name = check_schema(schema)
    # The schema name is validated above, so it needs no quoting inside the options string.
    return create_engine(parsed, connect_args={"options": f"-c search_path={name}"}, pool_pre_ping=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision shipped with this release."""
    heads = script_directory().get_heads()
    if len(heads) != 1:
        raise StoreError(f"migrations must have exactly one head, found {heads}")
    return heads[0]


def known_revision(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for unknown or malformed ids
        return False


def ensure_schema(engine: Engine, schema: str | None) -> None:
    """Create the stack's schema on PostgreSQL when missing (needs CREATE on the database), and check that
    the connecting role may create tables in it."""
    if engine.dialect.name != "postgresql":
        return
    name = check_schema(schema)
    with engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
        allowed = conn.execute(text("SELECT has_schema_privilege(:n, 'USAGE') AND has_schema_privilege(:n, 'CREATE')"),
                               {"n": name}).scalar()
        if not allowed:
            user = conn.execute(text("SELECT current_user")).scalar()
            raise StoreError(f"{user} may not create tables in schema {name} "
                             f"(`onca deployer-role` prints the SQL that grants it)")


def current_revision(url: str, schema: str | None = None) -> str | None:
    """The revision recorded in the database; None when it was never migrated (or does not exist yet)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    engine = make_engine(url, schema)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql" and not _schema_exists(conn, schema):
                return None
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _schema_exists(conn: Connection, schema: str | None) -> bool:
    row = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": check_schema(schema)}).first()
    return row is not None


def migrate(url: str, schema: str | None = None, revision: str = "head") -> str | None:
    """Bring the database to `revision` (upgrading, or downgrading when it is older); returns the revision.

    Creates the SQLite file's directory or the PostgreSQL schema when missing.
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    target = head_revision() if revision == "head" else revision
    if target not in ("base",) and not known_revision(target):
        raise StoreError(f"revision {target!r} is not known to this release")
    engine = make_engine(url, schema)
    try:
        ensure_schema(engine, schema)
        with engine.begin() as conn:
            migrate_connection(conn, target)
        return None if target == "base" else target
    finally:
        engine.dispose()


def migrate_connection(conn: Connection, target: str) -> None:
    """Migrate within the caller's connection and transaction (PostgreSQL DDL is transactional)."""
    config = alembic_config()
    config.attributes["connection"] = conn
    current = MigrationContext.configure(conn).get_current_revision()
    if current is not None and not known_revision(current):
        raise StoreError(f"the database is at revision {current!r}, which this release does not know "
                         f"(was it migrated by a newer release?)")
    if current == target:
        return
    if target == "base" or (current is not None and _is_ancestor(target, current)):
        command.downgrade(config, target)
    else:
        command.upgrade(config, target)


def _is_ancestor(older: str, newer: str) -> bool:
    """True when `older` comes strictly before `newer` in the migration history."""
    return any(rev.revision == older for rev in script_directory().iterate_revisions(newer, "base")
               if rev.revision != newer)


def table_names(url: str, schema: str | None = None) -> list[str]:
    """Tables in the stack's database (its schema on PostgreSQL), the alembic version table included."""
    engine = make_engine(url, schema)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql" and not _schema_exists(conn, schema):
                return []
            return sorted(inspect(conn).get_table_names())
    finally:
        engine.dispose()
