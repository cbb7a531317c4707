"""Metadata databases for the alert tests (a SQLite file, or a fresh schema in the test PostgreSQL) and
helpers to build matches, errors and events with controlled event times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from onca.alerts.manager import AlertManager
from onca.detections.detection import RuleMatch
from onca.detections.runner import RuleError
from onca.store import db
from tests.store.conftest import database  # noqa: F401  (the same fixture: empty DB on each backend)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LOG_TYPE = "Custom.Test"


@pytest.fixture
def engine(database: tuple[str, str | None]) -> Iterator[Engine]:  # noqa: F811  (the imported fixture)
    url, schema = database
    db.migrate(url, schema)
    engine = db.make_engine(url, schema)
    yield engine
    engine.dispose()


class Clock:
    """A settable processing clock, so raised_at and created_at are exact in assertions."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 0, 0, tzinfo=UTC))


@pytest.fixture
def make_manager(engine: Engine, clock: Clock) -> Callable[..., AlertManager]:
    def make(**kwargs: Any) -> AlertManager:
        kwargs.setdefault("clock", clock)
        return AlertManager(sessionmaker(engine, expire_on_commit=False), **kwargs)
    return make


def event(row: str, at: datetime | timedelta, **fields: Any) -> dict[str, Any]:
    """An event row; `at` is an absolute time or an offset from T0."""
    moment = T0 + at if isinstance(at, timedelta) else at
    return {"p_row_id": row, "p_event_time": moment, "p_log_type": LOG_TYPE, **fields}


def match(rule_id: str, index: int, *, dedup: str = "d", title: str | None = None, severity: str | None = "HIGH",
          unique: str | None = None, context: str | None = None, destinations: list[str] | None = None) -> RuleMatch:
    return RuleMatch(rule_id=rule_id, event_index=index, title=title or f"{rule_id} {dedup}", dedup=dedup,
                     severity=severity, alert_context=context, destinations=destinations, unique=unique,
                     description="", reference="", runbook="")


def error(rule_id: str, index: int, error_type: str = "KeyError", message: str = "'x'") -> RuleError:
    return RuleError(rule_id, index, error_type, message)
