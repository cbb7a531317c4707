"""Migration 0004_web_auth (sessions, API tokens, login throttle, TOTP replay) up and down on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onca.store import db
from onca.store.drift import check_drift
from onca.store.models import ApiToken, MfaReplay, User, WebSession

WEB_TABLES = {"web_sessions", "api_tokens", "login_throttle", "mfa_replay"}
PREVIOUS = "0003_alerts"
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_web_tables_exist_at_head_and_the_models_match(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    assert set(db.table_names(url, schema)) >= WEB_TABLES
    assert check_drift(url, schema, db.head_revision()) == []


def test_down_to_0003_and_up_again(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    db.migrate(url, schema, PREVIOUS)
    assert not WEB_TABLES & set(db.table_names(url, schema))
    assert check_drift(url, schema, PREVIOUS) == []
    db.migrate(url, schema)
    assert check_drift(url, schema, None) == []


def test_rows_belong_to_users_and_go_with_them(database: tuple[str, str | None]) -> None:
    url, schema = database
    db.migrate(url, schema)
    engine = db.make_engine(url, schema)
    try:
        with Session(engine) as session, session.begin():
            user = User(email="a@example.com", role="Analyst", status="active")
            session.add(user)
            session.flush()
            user_id = user.id
            session.add_all([
                WebSession(id_hash="h" * 64, user_id=user_id, csrf_token="c", expires_at=NOW + timedelta(hours=1)),
                ApiToken(name="ci", owner_id=user_id, role="ReadOnly", token_hash="t" * 64, prefix="onca_abcd"),
                MfaReplay(user_id=user_id, last_step=1)])
        for bad in (ApiToken(name="x", owner_id=user_id, role="God", token_hash="u" * 64, prefix="p"),
                    ApiToken(name="x", owner_id=user_id, role="ReadOnly", token_hash="t" * 64, prefix="p"),
                    WebSession(id_hash="i" * 64, user_id=user_id, stage="half", csrf_token="c", expires_at=NOW),
                    WebSession(id_hash="j" * 64, user_id=999, csrf_token="c", expires_at=NOW)):
            with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
                session.add(bad)
        with Session(engine) as session, session.begin():
            session.delete(session.get(User, user_id))
        with Session(engine) as session:
            assert session.query(WebSession).count() == session.query(ApiToken).count() == 0
            assert session.query(MfaReplay).count() == 0
    finally:
        engine.dispose()
