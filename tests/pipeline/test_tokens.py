"""Per-source tokens: shown once, stored hashed, verified in constant time."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, select

from onca.pipeline.tokens import CONFIG_KEY, TokenIndex, issue_token, revoke_token, verify
from onca.store import db
from onca.store.models import Source


def test_issue_verify_rotate_revoke(database: tuple[str, Engine]) -> None:
    _url, engine = database
    with db.session_scope(engine) as session:
        token = issue_token(session, "web")
    with db.session_scope(engine) as session:
        source = session.scalar(select(Source).where(Source.name == "web"))
        assert source.config == {CONFIG_KEY: hashlib.sha256(token.encode()).hexdigest()}
        assert token not in str(source.config)
        assert verify(session, token).name == "web"
        assert verify(session, token + "x") is None
        assert verify(session, "") is None
        rotated = issue_token(session, "web")
    with db.session_scope(engine) as session:
        assert verify(session, token) is None
        assert verify(session, rotated).name == "web"
        session.scalar(select(Source).where(Source.name == "web")).enabled = False
    with db.session_scope(engine) as session:
        assert verify(session, rotated) is None  # a disabled source accepts nothing
        revoke_token(session, "web")
    with db.session_scope(engine) as session:
        assert CONFIG_KEY not in session.scalar(select(Source).where(Source.name == "web")).config


def test_token_index_reloads(database: tuple[str, Engine]) -> None:
    _url, engine = database
    index = TokenIndex(engine, ttl=3600)
    assert index.authenticate("anything") is None
    with db.session_scope(engine) as session:
        token = issue_token(session, "other")
    assert index.authenticate(token) is None  # cached until the ttl passes ...
    index.refresh()  # ... or a refresh
    assert index.authenticate(token).name == "other"
    assert index.source("notoken").token_sha256 is None
    assert index.source("missing") is None
