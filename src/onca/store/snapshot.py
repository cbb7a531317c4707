"""Exact snapshots of the metadata database: schema, data and alembic revision.

SQLite: the sqlite3 backup API, which copies a consistent image while other connections are open,
both ways. PostgreSQL (no superuser, no pg_dump needed): a JSON-lines file holding the alembic
revision and every row of every table in the stack's schema as PostgreSQL's own JSON rendering of
the row (`row_to_json`), which `json_populate_record` reads back to the same values. Restore drops
the schema's tables, migrates an empty schema to the recorded revision (so the table definitions
are exactly those of that revision), inserts the rows in foreign-key order and resets sequences.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text

from onca.store import db

FORMAT = "onca-postgresql-snapshot"
FORMAT_VERSION = 1
VERSION_TABLE = "alembic_version"


class SnapshotError(RuntimeError):
    """A snapshot cannot be taken or restored (the message says why)."""


SQLITE_FILE = "metadata.db"
POSTGRES_FILE = "metadata.pg.jsonl"


def take_snapshot(url: str, schema: str | None, dest: Path) -> Path:
    """Write a snapshot of the stack's metadata database and return the file written.

    `dest` is the snapshot file (replaced atomically), or an existing directory to write it into
    (as metadata.db for SQLite, metadata.pg.jsonl for PostgreSQL).
    """
    dest = Path(dest)
    sqlite = db.backend(url) == "sqlite"
    if dest.is_dir():
        dest = dest / (SQLITE_FILE if sqlite else POSTGRES_FILE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    if sqlite:
        _sqlite_take(url, partial)
    else:
        _postgres_take(url, schema, partial)
    _fsync(partial)
    os.replace(partial, dest)
    return dest


def restore_snapshot(url: str, schema: str | None, src: Path) -> None:
    """Make the database exactly what the snapshot recorded (tables, rows, revision).

    `src` is a file written by take_snapshot, or the directory it was written into.
    """
    src = Path(src)
    sqlite = db.backend(url) == "sqlite"
    if src.is_dir():
        src = src / (SQLITE_FILE if sqlite else POSTGRES_FILE)
    if not src.is_file():
        raise SnapshotError(f"snapshot {src} does not exist")
    if sqlite:
        _sqlite_restore(url, src)
    else:
        _postgres_restore(url, schema, src)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- SQLite -------------------------------------------------------------------------------------

def _sqlite_file(url: str) -> Path:
    path = db.sqlite_path(url)
    if path is None:
        raise SnapshotError("in-memory SQLite databases cannot be snapshotted")
    return path


def _sqlite_take(url: str, dest: Path) -> None:
    path = _sqlite_file(url)
    if not path.exists():
        raise SnapshotError(f"metadata database {path} does not exist")
    source = sqlite3.connect(path)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
        # The copy is a standalone file: no WAL beside it to lose when it is moved.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()


def _sqlite_restore(url: str, src: Path) -> None:
    path = _sqlite_file(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(path, timeout=30)
    try:
        # Backup into the live file replaces every page (schema included) in one transaction and is
        # seen by every other connection, unlike copying the file over an open database.
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
    finally:
        target.close()
        source.close()


# --- PostgreSQL ---------------------------------------------------------------------------------

def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(conn: Connection) -> list[str]:
    rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"))
    return [row[0] for row in rows]


def _postgres_take(url: str, schema: str | None, dest: Path) -> None:
    engine = db.make_engine(url, schema)
    try:
        # REPEATABLE READ: every table is read from the same moment, so the rows are consistent.
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            if conn.execute(text("SELECT current_schema()")).scalar() != schema:
                raise SnapshotError(f"schema {schema} does not exist")
            revision = MigrationContext.configure(conn).get_current_revision()
            tables = [t for t in _tables(conn) if t != VERSION_TABLE]
            with dest.open("w", encoding="utf-8") as out:
                header = {"format": FORMAT, "version": FORMAT_VERSION, "schema": schema, "revision": revision,
                          "tables": tables, "sequences": _sequences(conn)}
                out.write(json.dumps(header) + "\n")
                for table in tables:
                    count = conn.execute(text(f"SELECT count(*) FROM {_quote(table)}")).scalar()
                    out.write(json.dumps({"table": table, "rows": count}) + "\n")
                    # Rows are copied as PostgreSQL rendered them, never re-parsed, so numbers keep every
                    # digit. A raw newline can only be insignificant JSON whitespace (inside a json-typed
                    # value); strings escape theirs.
                    result = conn.execution_options(stream_results=True, yield_per=1000).execute(
                        text(f"SELECT row_to_json(t)::text FROM {_quote(table)} AS t"))
                    for (row,) in result:
                        out.write(row.replace("\n", " ") + "\n")
    finally:
        engine.dispose()


def _read_postgres_snapshot(src: Path) -> tuple[dict, list[tuple[str, str]]]:  # type: ignore[type-arg]
    with src.open(encoding="utf-8") as handle:
        try:
            header = json.loads(handle.readline())
        except ValueError as err:
            raise SnapshotError(f"{src} is not an Onca PostgreSQL snapshot") from err
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise SnapshotError(f"{src} is not an Onca PostgreSQL snapshot")
        if header.get("version") != FORMAT_VERSION:
            raise SnapshotError(f"{src} has snapshot format {header.get('version')}, this release reads "
                                f"{FORMAT_VERSION}")
        rows = []
        seen = []
        line = handle.readline()
        while line:
            section = json.loads(line)
            seen.append(section["table"])
            for _ in range(int(section["rows"])):
                row = handle.readline()
                if not row.endswith("\n"):
                    raise SnapshotError(f"{src} is truncated (table {section['table']})")
                rows.append((section["table"], row[:-1]))
            line = handle.readline()
    if seen != header.get("tables"):
        raise SnapshotError(f"{src} is truncated: it lists tables {header.get('tables')} but holds {seen}")
    return header, rows


def drop_all(conn: Connection) -> None:
    """Drop every table, view and sequence of the connection's current schema (the schema itself stays)."""
    for kind, catalog, column in (("VIEW", "pg_views", "viewname"), ("TABLE", "pg_tables", "tablename")):
        names = [row[0] for row in conn.execute(
            text(f"SELECT {column} FROM {catalog} WHERE schemaname = current_schema()"))]
        if names:
            conn.execute(text(f"DROP {kind} IF EXISTS {', '.join(_quote(n) for n in names)} CASCADE"))
    sequences = [row[0] for row in conn.execute(
        text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"))]
    if sequences:
        conn.execute(text(f"DROP SEQUENCE IF EXISTS {', '.join(_quote(n) for n in sequences)} CASCADE"))


def _postgres_restore(url: str, schema: str | None, src: Path) -> None:
    header, rows = _read_postgres_snapshot(src)
    revision = header.get("revision")
    if revision is not None and not db.known_revision(revision):
        raise SnapshotError(f"snapshot {src} is at revision {revision}, which this release does not know")
    engine = db.make_engine(url, schema)
    try:
        db.ensure_schema(engine, schema)
        # One transaction (PostgreSQL DDL is transactional): a failed restore leaves the database as it was.
        with engine.begin() as conn:
            drop_all(conn)
            if revision is not None:
                db.migrate_connection(conn, revision)
            metadata = MetaData()
            metadata.reflect(conn)
            order = [t.name for t in metadata.sorted_tables if t.name != VERSION_TABLE]
            missing = sorted({table for table, _ in rows} - set(order))
            if missing:
                raise SnapshotError(f"snapshot has rows for tables revision {revision} does not define: "
                                    f"{', '.join(missing)}")
            by_table: dict[str, list[str]] = {}
            for table, row in rows:
                by_table.setdefault(table, []).append(row)
            for table in order:
                for row in by_table.get(table, []):
                    conn.execute(text(f"INSERT INTO {_quote(table)} SELECT * FROM "
                                      f"json_populate_record(NULL::{_quote(table)}, CAST(:row AS json))"),
                                 {"row": row})
            _reset_sequences(conn, header.get("sequences") or {})
    finally:
        engine.dispose()


def _sequences(conn: Connection) -> dict[str, int]:
    rows = conn.execute(text("SELECT sequencename, last_value FROM pg_sequences "
                             "WHERE schemaname = current_schema() AND last_value IS NOT NULL"))
    return {name: int(value) for name, value in rows}


def _reset_sequences(conn: Connection, recorded: dict[str, int]) -> None:
    """Sequences back where the snapshot saw them, and never behind the restored rows."""
    for sequence, value in recorded.items():
        if conn.execute(text("SELECT to_regclass(:seq)"), {"seq": _quote(sequence)}).scalar() is not None:
            conn.execute(text("SELECT setval(CAST(:seq AS regclass), :value, true)"),
                         {"seq": _quote(sequence), "value": value})
    owned = conn.execute(text(
        "SELECT s.relname, t.relname, a.attname FROM pg_class s "
        "JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') "
        "JOIN pg_class t ON t.oid = d.refobjid "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
        "WHERE s.relkind = 'S' AND s.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
    )).all()
    for sequence, table, column in owned:
        highest = conn.execute(text(f"SELECT max({_quote(column)}) FROM {_quote(table)}")).scalar()
        if highest is not None and highest > recorded.get(sequence, 0):
            conn.execute(text("SELECT setval(CAST(:seq AS regclass), :value, true)"),
                         {"seq": _quote(sequence), "value": highest})
