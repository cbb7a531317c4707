"""Browser sessions kept in the metadata database.

The cookie holds a random id; the database holds only its sha256, so neither a database copy nor a
log line can be turned back into a session. A session ends after IDLE_TIMEOUT without a request, at
ABSOLUTE_TIMEOUT whatever happens, on logout, and when its user is disabled (the lookup checks).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from onca.core.users import token_hash
from onca.store.models import User, WebSession, utcnow

COOKIE = "onca_session"
IDLE_TIMEOUT = timedelta(hours=1)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# A half-signed-in session (second factor or MFA enrolment still due) is short-lived.
PARTIAL_TIMEOUT = timedelta(minutes=10)
# last_seen_at is written at most this often, so reading pages does not turn into a write per request.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Current:
    """A live session and its user."""

    row: WebSession
    user: User


def create(db: Session, user: User, *, stage: str = "full", source_ip: str = "", user_agent: str = "") -> str:
    """A new session for `user`; returns the cookie value (shown to nobody else, stored hashed)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = ABSOLUTE_TIMEOUT if stage == "full" else PARTIAL_TIMEOUT
    db.add(WebSession(id_hash=token_hash(raw), user_id=user.id, stage=stage, csrf_token=secrets.token_urlsafe(32),
                      created_at=now, last_seen_at=now, expires_at=now + lifetime, source_ip=source_ip[:64],
                      user_agent=user_agent[:500]))
    db.flush()
    return raw


def lookup(db: Session, raw: str | None) -> Current | None:
    """The live session of a cookie value, else None (unknown, idle too long, expired, user not active)."""
    if not raw or len(raw) > 200:
        return None
    row = db.get(WebSession, token_hash(raw))
    if row is None:
        return None
    now = utcnow()
    user = db.get(User, row.user_id)
    if row.expires_at <= now or now - row.last_seen_at > IDLE_TIMEOUT or user is None or user.status != "active":
        db.delete(row)
        db.flush()
        return None
    if now - row.last_seen_at > TOUCH_INTERVAL:
        row.last_seen_at = now
    return Current(row, user)


def promote(db: Session, current: Current) -> str:
    """The session after its second factor: a fresh id (no fixation across the privilege change)."""
    user = current.user
    source_ip, user_agent = current.row.source_ip, current.row.user_agent
    db.delete(current.row)
    db.flush()
    return create(db, user, stage="full", source_ip=source_ip, user_agent=user_agent)


def end(db: Session, raw: str | None) -> None:
    if raw:
        db.execute(delete(WebSession).where(WebSession.id_hash == token_hash(raw)))


def end_all(db: Session, user_id: int) -> int:
    """Sign a user out everywhere (disabled, role changed, password or MFA reset); returns how many."""
    rows = list(db.scalars(select(WebSession).where(WebSession.user_id == user_id)))
    for row in rows:
        db.delete(row)
    db.flush()
    return len(rows)


def purge_expired(db: Session, now: datetime | None = None) -> None:
    moment = now or utcnow()
    db.execute(delete(WebSession).where(WebSession.expires_at <= moment))
    db.execute(delete(WebSession).where(WebSession.last_seen_at < moment - IDLE_TIMEOUT))
