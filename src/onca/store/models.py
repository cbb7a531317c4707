"""The metadata tables. Names are part of the contract with onca.core; change them only with a migration.

No schema is set on any table: on PostgreSQL the engine's search_path points at the stack's schema,
so the same metadata serves every stack.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("Admin", "Analyst", "ReadOnly", "Support", "Operations")
USER_STATUSES = ("invited", "active", "disabled")

# Deterministic constraint names: Alembic needs them to alter constraints (SQLite batch mode rebuilds
# tables by name) and drift messages stay stable across backends.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JsonText(TypeDecorator[Any]):
    """JSON kept as text on every backend (portable, and snapshots stay byte-exact).

    Python code reads and writes plain dicts/lists; the column holds their compact JSON.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are always timezone-aware UTC in Python, whatever the backend stores.

    SQLite has no time zones: values are stored as UTC wall time and given the UTC zone on the way out.
    A naive datetime handed in is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Ids of deleted rows are never handed out again (PostgreSQL sequences already behave so; SQLite needs
# AUTOINCREMENT), so an old reference to a deleted user or invite can never point at a new one.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_one_of("role", ROLES), name="role"),
        CheckConstraint(_one_of("status", USER_STATUSES), name="status"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="invited")
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    mfa_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Invite(Base):
    __tablename__ = "invites"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class RoleBinding(Base):
    __tablename__ = "role_bindings"
    __table_args__ = (UniqueConstraint("identity", "role"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[Any] = mapped_column(JsonText, default=dict)


class Source(Base):
    __tablename__ = "sources"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    log_types: Mapped[Any] = mapped_column(JsonText, default=list)
    config: Mapped[Any] = mapped_column(JsonText, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonText)


class ContentPack(Base):
    __tablename__ = "content_packs"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    detections: Mapped[int] = mapped_column(Integer, default=0)
    installed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# --- Alerting (migration 0003_alerts) -----------------------------------------------------------------------

ALERT_KINDS = ("RULE", "RULE_ERROR")
ALERT_STATUSES = ("OPEN", "TRIAGED", "CLOSED", "RESOLVED")
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
DELIVERY_OUTCOMES = ("success", "retry", "failed")
OUTBOX_STATES = ("pending", "sending", "done", "failed")


class Alert(Base):
    """One deduplicated alert: every match of (kind, rule, dedup) within one dedup window (onca.alerts.manager).

    `id` is a digest of kind, rule, dedup and window start, so replaying a batch finds the same alert.
    `raised` stays false while the rule's Threshold is not reached; only raised alerts are delivered.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(_one_of("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_one_of("severity", SEVERITIES), name="severity"),
        UniqueConstraint("dedup_key", "window_start"),
        # The console lists alerts newest first, one filter at a time, with keyset pagination: each filter
        # paired with (created_at, id) lets one index walk stop after a page.
        Index("ix_alerts_created_at_id", "created_at", "id"),
        Index("ix_alerts_status_created_at_id", "status", "created_at", "id"),
        Index("ix_alerts_severity_created_at_id", "severity", "created_at", "id"),
        Index("ix_alerts_rule_id_created_at_id", "rule_id", "created_at", "id"),
        Index("ix_alerts_assignee_created_at_id", "assignee", "created_at", "id"),
        Index("ix_alerts_status_severity_raised", "status", "severity", "raised"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    dedup: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(32))  # digest of kind, rule and dedup: the merge lookup key
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[str] = mapped_column(Text, default="")
    runbook: Mapped[str] = mapped_column(Text, default="")
    alert_context: Mapped[Any] = mapped_column(JsonText, nullable=True)
    destinations: Mapped[Any] = mapped_column(JsonText, nullable=True)  # the rule's destinations() override
    tags: Mapped[Any] = mapped_column(JsonText, default=list)
    reports: Mapped[Any] = mapped_column(JsonText, default=dict)
    first_event_time: Mapped[datetime] = mapped_column(UtcDateTime)
    last_event_time: Mapped[datetime] = mapped_column(UtcDateTime)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    unique_count: Mapped[int] = mapped_column(Integer, default=0)
    log_types: Mapped[Any] = mapped_column(JsonText, default=list)
    status: Mapped[str] = mapped_column(String(16), default="OPEN", index=True)
    assignee: Mapped[str | None] = mapped_column(String(320), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(320), nullable=True)  # who last changed status/assignee
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    raised: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class AlertUnique(Base):
    """The distinct unique() values seen by an alert (its Threshold may count these instead of events)."""

    __tablename__ = "alert_uniques"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)


class ProcessedMatch(Base):
    """Which (rule, event row) pairs were already counted: a replayed batch is recognised and not counted twice."""

    __tablename__ = "processed_matches"

    rule_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    row_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Delivery(Base):
    """One delivery attempt of an alert to a destination."""

    __tablename__ = "deliveries"
    __table_args__ = (CheckConstraint(_one_of("outcome", DELIVERY_OUTCOMES), name="outcome"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    destination: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Outbox(Base):
    """An alert waiting to be sent to one destination (the sender claims rows by state and next_attempt_at)."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_one_of("state", OUTBOX_STATES), name="state"),
        UniqueConstraint("alert_id", "destination"),
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),  # the sender's claim query
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Destination(Base):
    """A configured alert destination; its credentials are Fernet-encrypted with the home's keyring."""

    __tablename__ = "destinations"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    config_encrypted: Mapped[str] = mapped_column(Text)
    severities: Mapped[Any] = mapped_column(JsonText, default=list)
    log_types: Mapped[Any] = mapped_column(JsonText, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


# --- Console and API sign-in (migration 0004_web_auth) ---------------------------------------------------------

SESSION_STAGES = ("full", "mfa", "enrol")


class WebSession(Base):
    """A signed-in browser. Only the sha256 of the cookie's random id is stored, so a copy of the
    database cannot be replayed as a session. `stage` is `mfa` while the second factor is still due,
    `enrol` while an Admin must first set MFA up, `full` once signed in."""

    __tablename__ = "web_sessions"
    __table_args__ = (CheckConstraint(_one_of("stage", SESSION_STAGES), name="stage"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16), default="full")
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)  # absolute end, whatever the activity
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(Text, default="")
    pending_mfa_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # encrypted, during enrolment


class ApiToken(Base):
    """An API token: only the sha256 of its secret is kept; it acts as its owner, within `role`."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, so people can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class LoginThrottle(Base):
    """Failed sign-ins per key (`account:<email>` or `ip:<address>`) and the lockout they earned."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class MfaReplay(Base):
    """The last TOTP time step a user signed in with: a code is accepted once only."""

    __tablename__ = "mfa_replay"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_step: Mapped[int] = mapped_column(Integer)
