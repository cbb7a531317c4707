"""Reading and triaging alerts in the metadata database: what the CLI (`onca alerts`), the API and the console
share. Callers own the session (and its commit) and the audit records; these functions only query and change rows.

Listing is keyset-paginated on (created_at, id), newest first by default: a page costs the same at any depth,
where an offset grows with it. Totals are counted up to COUNT_CAP, so a broad filter over many alerts stays cheap;
the caller shows "COUNT_CAP+" beyond that.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session

from onca.store.models import ALERT_KINDS, ALERT_STATUSES, SEVERITIES, Alert, AlertUnique, Delivery, Outbox, utcnow

# Audit actions (Onca.Audit): details of alert.updated are the changed fields as [old, new].
ALERT_UPDATED = "alert.updated"
ALERT_READ = "alert.read"     # target: the alert id, or "" for a list (details: the filters and the count shown)
EVENTS_READ = "events.read"   # target: the alert id whose matching events were shown

MAX_LIMIT = 500
COUNT_CAP = 10_000
MAX_BULK = 500
SORTS = ("newest", "oldest")
UNASSIGNED = "none"  # the assignee filter's value for alerts nobody holds (an email always has an '@')
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class BadAlertQuery(ValueError):
    """A filter, cursor or change that cannot be applied; the message says which and why."""


def choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    """`value` upper-cased when it is one of `allowed`; None stays None."""
    if value is None or value == "":
        return None
    upper = value.strip().upper()
    if upper not in allowed:
        raise BadAlertQuery(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return upper


def normalize_assignee(value: str) -> str | None:
    """An assignee as stored: a lower-cased email, or None for '' (unassign)."""
    text = value.strip().lower()
    if not text:
        return None
    if len(text) > 320 or not _EMAIL.match(text):
        raise BadAlertQuery("assignee must be an email address, or '' to unassign")
    return text


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id, "type": alert.kind, "rule_id": alert.rule_id, "title": alert.title,
        "severity": alert.severity, "status": alert.status, "assignee": alert.assignee, "dedup": alert.dedup,
        "event_count": alert.event_count, "unique_count": alert.unique_count, "log_types": alert.log_types,
        "first_event_time": iso(alert.first_event_time), "last_event_time": iso(alert.last_event_time),
        "window_start": iso(alert.window_start), "window_end": iso(alert.window_end), "raised": alert.raised,
        "raised_at": iso(alert.raised_at), "created_at": iso(alert.created_at),
        "updated_at": iso(alert.updated_at), "updated_by": getattr(alert, "updated_by", None),
        "description": alert.description, "reference": alert.reference, "runbook": alert.runbook,
        "alert_context": alert.alert_context, "destinations": alert.destinations, "tags": alert.tags,
        "reports": alert.reports,
    }


# ---- listing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to list. Empty tuples and None mean "any"; several statuses/severities mean "any of"."""

    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    rule_id: str | None = None
    log_type: str | None = None
    kind: str | None = None
    assignee: str | None = None  # an email, or UNASSIGNED
    title: str | None = None  # contained in the title, case-insensitively
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_pending: bool = False  # also alerts still below their rule's Threshold

    @classmethod
    def parse(cls, *, statuses: Sequence[str] = (), severities: Sequence[str] = (), rule_id: str | None = None,
              log_type: str | None = None, kind: str | None = None, assignee: str | None = None,
              title: str | None = None, created_after: datetime | None = None,
              created_before: datetime | None = None, include_pending: bool = False) -> AlertFilter:
        """A filter from user input: values checked and normalized, blanks ignored; BadAlertQuery if invalid."""
        wanted_assignee = None
        if assignee and assignee.strip():
            wanted_assignee = UNASSIGNED if assignee.strip().lower() == UNASSIGNED else normalize_assignee(assignee)
        return cls(
            statuses=tuple(dict.fromkeys(s for s in (choice(v, ALERT_STATUSES, "status") for v in statuses) if s)),
            severities=tuple(dict.fromkeys(s for s in (choice(v, SEVERITIES, "severity") for v in severities) if s)),
            rule_id=(rule_id or "").strip() or None, log_type=(log_type or "").strip() or None,
            kind=choice(kind, ALERT_KINDS, "type"), assignee=wanted_assignee, title=(title or "").strip() or None,
            created_after=_utc(created_after), created_before=_utc(created_before), include_pending=include_pending)

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if not self.include_pending:
            where.append(Alert.raised.is_(True))
        if self.statuses:
            where.append(Alert.status.in_(self.statuses))
        if self.severities:
            where.append(Alert.severity.in_(self.severities))
        if self.rule_id:
            where.append(Alert.rule_id == self.rule_id)
        if self.log_type:
            # log_types is a compact JSON list: the quoted name is an exact element, never a prefix of another.
            where.append(type_coerce(Alert.log_types, Text).contains(json.dumps(self.log_type), autoescape=True))
        if self.kind:
            where.append(Alert.kind == self.kind)
        if self.assignee == UNASSIGNED:
            where.append(Alert.assignee.is_(None))
        elif self.assignee:
            where.append(Alert.assignee == self.assignee)
        if self.title:
            where.append(Alert.title.icontains(self.title, autoescape=True))
        if self.created_after:
            where.append(Alert.created_at >= self.created_after)
        if self.created_before:
            where.append(Alert.created_at < self.created_before)
        return where

    def as_dict(self) -> dict[str, Any]:
        """The filter's set fields (for audit details and links)."""
        data = {"status": list(self.statuses), "severity": list(self.severities), "rule_id": self.rule_id,
                "log_type": self.log_type, "type": self.kind, "assignee": self.assignee, "title": self.title,
                "created_after": iso(self.created_after), "created_before": iso(self.created_before),
                "pending": self.include_pending or None}
        return {key: value for key, value in data.items() if value}


@dataclass
class AlertPage:
    alerts: list[Alert]
    total: int  # at most COUNT_CAP; total_capped says there are more
    total_capped: bool
    next_cursor: str | None  # keyset cursor of the page after this one (None on the last page)
    offset: int = 0
    limit: int = 50
    extra: dict[str, Any] = field(default_factory=dict)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def encode_cursor(alert: Alert) -> str:
    raw = f"{alert.created_at.astimezone(UTC).isoformat()}|{alert.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, alert_id = raw.split("|", 1)
        return datetime.fromisoformat(moment).astimezone(UTC), alert_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise BadAlertQuery("cursor is not one this API handed out") from err


def count_alerts(session: Session, flt: AlertFilter, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(count, capped): how many alerts match, counting no further than `cap`."""
    # A constant, not a column: an index holding the filtered columns then answers without reading rows.
    matching = select(literal(1)).select_from(Alert).where(*flt.conditions()).limit(cap + 1).subquery()
    total = session.scalar(select(func.count()).select_from(matching)) or 0
    return min(total, cap), total > cap


def list_alerts(session: Session, flt: AlertFilter, *, limit: int = 50, cursor: str | None = None,
                offset: int = 0, sort: str = "newest", count: bool = True) -> AlertPage:
    """One page of alerts matching `flt`, ordered by creation time (then id); after `cursor` when given, else
    after skipping `offset` alerts."""
    if sort not in SORTS:
        raise BadAlertQuery(f"sort must be one of {', '.join(SORTS)} (got {sort!r})")
    if limit < 1 or offset < 0:
        raise BadAlertQuery("limit must be positive and offset not negative")
    where = flt.conditions()
    newest = sort == "newest"
    if cursor:
        at, last_id = decode_cursor(cursor)
        # Split so the first term is a plain range on the index's leading column (a row-value or OR form is
        # not used as a range by every planner), the second breaks ties on id.
        if newest:
            where += [Alert.created_at <= at, or_(Alert.created_at < at, Alert.id < last_id)]
        else:
            where += [Alert.created_at >= at, or_(Alert.created_at > at, Alert.id > last_id)]
    order = (Alert.created_at.desc(), Alert.id.desc()) if newest else (Alert.created_at.asc(), Alert.id.asc())
    query = select(Alert).where(*where).order_by(*order).limit(limit + 1)
    if offset and not cursor:
        query = query.offset(offset)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    if not count:
        total, capped = 0, False
    elif not more and not cursor:
        total, capped = offset + len(rows), False  # the whole remainder is on this page: nothing to count
    else:
        total, capped = count_alerts(session, flt)
    return AlertPage(rows, total, capped, encode_cursor(rows[-1]) if more and rows else None,
                     offset=0 if cursor else offset, limit=limit)


# ---- one alert ----------------------------------------------------------------------------------------------


def get_alert(session: Session, alert_id: str) -> Alert | None:
    if not alert_id or len(alert_id) > 64:
        return None
    return session.get(Alert, alert_id)


def delivery_history(session: Session, alert_id: str) -> dict[str, list[dict[str, Any]]]:
    """The alert's outbox rows (one per routed destination) and every delivery attempt, oldest first."""
    outbox = [{"destination": o.destination, "state": o.state, "attempts": o.attempts,
               "next_attempt_at": iso(o.next_attempt_at), "last_error": o.last_error}
              for o in session.scalars(select(Outbox).where(Outbox.alert_id == alert_id).order_by(Outbox.destination))]
    deliveries = [{"destination": d.destination, "attempt": d.attempt, "at": iso(d.at), "outcome": d.outcome,
                   "status_code": d.status_code, "message": d.message}
                  for d in session.scalars(select(Delivery).where(Delivery.alert_id == alert_id)
                                           .order_by(Delivery.at, Delivery.id))]
    return {"outbox": outbox, "deliveries": deliveries}


def alert_detail(session: Session, alert: Alert) -> dict[str, Any]:
    """The alert with its distinct unique() count and its delivery history."""
    data = alert_json(alert)
    data["unique_values"] = session.scalar(select(func.count()).select_from(AlertUnique)
                                           .where(AlertUnique.alert_id == alert.id))
    data.update(delivery_history(session, alert.id))
    return data


# ---- triage -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    alert: Alert
    changes: dict[str, list[str | None]]  # field: [old, new]; empty when the alert already was so


def update_alerts(session: Session, alert_ids: Sequence[str], *, status: str | None = None,
                  assignee: str | None = None, actor: str = "", now: datetime | None = None) -> list[Change]:
    """Set the status and/or assignee ('' unassigns) of each alert; returns one Change per alert found, in the
    order given (unknown ids are left out). Alerts whose values change record who (`actor`) and when."""
    new_status = choice(status, ALERT_STATUSES, "status")
    new_assignee = normalize_assignee(assignee) if assignee is not None else None
    if new_status is None and assignee is None:
        raise BadAlertQuery("nothing to update: give a status and/or an assignee")
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        raise BadAlertQuery("no alert ids given")
    if len(ids) > MAX_BULK:
        raise BadAlertQuery(f"at most {MAX_BULK} alerts per update (got {len(ids)})")
    found = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_(ids)))}
    moment = now or utcnow()
    results = []
    for alert_id in ids:
        alert = found.get(alert_id)
        if alert is None:
            continue
        changes: dict[str, list[str | None]] = {}
        if new_status is not None and new_status != alert.status:
            changes["status"] = [alert.status, new_status]
            alert.status = new_status
        if assignee is not None and new_assignee != alert.assignee:
            changes["assignee"] = [alert.assignee, new_assignee]
            alert.assignee = new_assignee
        if changes:
            alert.updated_at = moment
            alert.updated_by = actor or None
        results.append(Change(alert, changes))
    session.flush()
    return results


# ---- the overview -------------------------------------------------------------------------------------------


def open_by_severity(session: Session) -> dict[str, int]:
    """Raised OPEN alerts per severity (every severity present, zeros included)."""
    rows = session.execute(select(Alert.severity, func.count()).where(Alert.raised.is_(True), Alert.status == "OPEN")
                           .group_by(Alert.severity))
    counts = dict.fromkeys(SEVERITIES, 0)
    counts.update({severity: int(n) for severity, n in rows})
    return counts


def _utc_day(session: Session) -> ColumnElement[Any]:
    """created_at's UTC day as 'YYYY-MM-DD', computed by the database (SQLite keeps UTC wall time as text)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(Alert.created_at, 1, 10)
    return func.to_char(func.timezone("UTC", Alert.created_at), "YYYY-MM-DD")


def severity_by_day(session: Session, days: int = 7, now: datetime | None = None) -> list[tuple[str, dict[str, int]]]:
    """[(YYYY-MM-DD, {severity: alerts raised that UTC day})] for the last `days` days, oldest first."""
    today = (now or utcnow()).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days - 1)
    day = _utc_day(session)
    rows = session.execute(select(day, Alert.severity, func.count())
                           .where(Alert.raised.is_(True), Alert.created_at >= start).group_by(day, Alert.severity))
    buckets = {f"{start + timedelta(days=i):%Y-%m-%d}": dict.fromkeys(SEVERITIES, 0) for i in range(days)}
    for day, severity, n in rows:
        bucket = buckets.get(str(day))
        if bucket is not None and severity in bucket:
            bucket[severity] = int(n)
    return list(buckets.items())
