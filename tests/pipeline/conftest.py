"""A migrated SQLite metadata database with sources, and helpers to talk to the intakes."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from onca.pipeline.tokens import issue_token
from onca.store import db
from onca.store.models import Source


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        session.add(Source(name="web", kind="http", log_types=["AWS.CloudTrail"], config={}))
        session.add(Source(name="other", kind="http", log_types=[], config={}))
        session.add(Source(name="notoken", kind="http", log_types=[], config={}))
    yield url, engine
    engine.dispose()


@pytest.fixture
def tokens(database: tuple[str, Engine]) -> dict[str, str]:
    _url, engine = database
    with db.session_scope(engine) as session:
        return {"web": issue_token(session, "web"), "other": issue_token(session, "other")}


def post(address: tuple[str, int], path: str, body: bytes, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, dict]:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        conn.close()
