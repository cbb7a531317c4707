"""Each test gets its own metadata database: a SQLite file, or a fresh schema in the test PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from onca.store import db


def fresh_schema() -> str:
    return f"onca_t{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, schema: str) -> None:
    engine = db.make_engine(url, schema)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of an empty metadata database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}", None
        return
    url = request.getfixturevalue("postgres_url")
    schema = fresh_schema()
    yield url, schema
    drop_schema(url, schema)
