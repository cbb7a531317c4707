"""`/api/v1/alerts`: list with filters and pagination, read one with its events and deliveries, triage.

The functions below the models are shared with the console pages (onca.web.pages_alerts): both audit the
same way. Reads are audited as alert.read (and events.read when events are shown), changes as alert.updated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from onca.alerts import queries
from onca.alerts.events import MAX_EVENTS_PAGE, EventsPage, alert_events
from onca.alerts.queries import ALERT_READ, ALERT_UPDATED, EVENTS_READ, AlertFilter, BadAlertQuery
from onca.api.deps import Principal, audit_event, get_db, requires
from onca.store.models import Alert

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Reader = Annotated[Principal, Depends(requires("alerts:read"))]
Writer = Annotated[Principal, Depends(requires("alerts:write"))]
Db = Annotated[Session, Depends(get_db)]


class AlertChange(BaseModel):
    """Fields to change; a field left out stays as it is. `assignee` null or "" unassigns."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, description="OPEN, TRIAGED, CLOSED or RESOLVED.")
    assignee: str | None = Field(None, max_length=320, description="The assignee's email; null or '' unassigns.")


class BulkChange(AlertChange):
    ids: list[str] = Field(min_length=1, max_length=queries.MAX_BULK, description="Alert ids.")


def bad_query(err: BadAlertQuery) -> HTTPException:
    return HTTPException(422, str(err))


def list_page(request: Request, principal: Principal, session: Session, flt: AlertFilter, *, limit: int,
              cursor: str | None, page: int, sort: str) -> queries.AlertPage:
    """One page of alerts (audited as alert.read of a list)."""
    try:
        found = queries.list_alerts(session, flt, limit=limit, cursor=cursor, offset=(page - 1) * limit, sort=sort)
    except BadAlertQuery as err:
        raise bad_query(err) from err
    audit_event(request, principal, ALERT_READ, "", {"filters": flt.as_dict(), "shown": len(found.alerts)})
    return found


def load_alert(session: Session, alert_id: str) -> Alert:
    alert = queries.get_alert(session, alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return alert


def read_alert(request: Request, principal: Principal, session: Session, alert_id: str, *, events_offset: int,
               events_limit: int) -> tuple[Alert, dict[str, Any], EventsPage]:
    """The alert, its detail (deliveries included) and a page of its events from the lake (both audited)."""
    alert = load_alert(session, alert_id)
    detail = queries.alert_detail(session, alert)
    audit_event(request, principal, ALERT_READ, alert.id)
    events = alert_events(request.app.state.ctx.lake_dir, alert, offset=events_offset, limit=events_limit)
    audit_event(request, principal, EVENTS_READ, alert.id, {"offset": events.offset, "shown": len(events.events)})
    return alert, detail, events


def change_alerts(request: Request, principal: Principal, session: Session, ids: list[str], *,
                  status: str | None, assignee: str | None) -> list[queries.Change]:
    """Apply a triage change; one alert.updated record per alert that changed. BadAlertQuery for a bad value."""
    changes = queries.update_alerts(session, ids, status=status, assignee=assignee, actor=principal.identity)
    for change in changes:
        if change.changes:
            audit_event(request, principal, ALERT_UPDATED, change.alert.id, change.changes)
    return changes


def _assignee(body: AlertChange) -> str | None:
    """The assignee to set: '' (unassign) for an explicit null, None when the field was left out."""
    if "assignee" not in body.model_fields_set:
        return None
    return body.assignee or ""


@router.get("")
def list_alerts(
    request: Request, principal: Reader, session: Db,
    status: Annotated[list[str] | None, Query(description="OPEN, TRIAGED, CLOSED, RESOLVED; repeatable (any of).")]
    = None,
    severity: Annotated[list[str] | None, Query(description="INFO, LOW, MEDIUM, HIGH, CRITICAL; repeatable.")]
    = None,
    rule_id: Annotated[str | None, Query(max_length=255)] = None,
    log_type: Annotated[str | None, Query(max_length=255)] = None,
    type: Annotated[str | None, Query(description="RULE or RULE_ERROR.")] = None,
    assignee: Annotated[str | None, Query(max_length=320, description="An email, or 'none' for unassigned.")]
    = None,
    title: Annotated[str | None, Query(max_length=500, description="Contained in the title (any case).")] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    pending: Annotated[bool, Query(description="Also alerts still below their rule's Threshold.")] = False,
    sort: Annotated[str, Query(description="newest or oldest (by creation time).")] = "newest",
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")] = None,
    page: Annotated[int, Query(ge=1, le=10_000, description="Page number, when not using a cursor.")] = 1,
) -> dict[str, Any]:
    """Alerts matching every given filter, newest first; `total` counts up to 10000 (`total_capped` beyond)."""
    try:
        flt = AlertFilter.parse(statuses=status or [], severities=severity or [], rule_id=rule_id,
                                log_type=log_type, kind=type, assignee=assignee, title=title,
                                created_after=created_after, created_before=created_before, include_pending=pending)
    except BadAlertQuery as err:
        raise bad_query(err) from err
    found = list_page(request, principal, session, flt, limit=limit, cursor=cursor, page=page, sort=sort)
    return {"alerts": [queries.alert_json(a) for a in found.alerts], "total": found.total,
            "total_capped": found.total_capped, "next_cursor": found.next_cursor, "limit": found.limit,
            "page": None if cursor else page}


@router.post("/bulk")
def bulk_update(request: Request, principal: Writer, session: Db, body: BulkChange) -> dict[str, Any]:
    """Set the status and/or assignee of up to 500 alerts; says which changed, which already were so, and which
    ids are unknown."""
    try:
        changes = change_alerts(request, principal, session, body.ids, status=body.status, assignee=_assignee(body))
    except BadAlertQuery as err:
        raise bad_query(err) from err
    found = {c.alert.id for c in changes}
    return {"updated": [c.alert.id for c in changes if c.changes],
            "unchanged": [c.alert.id for c in changes if not c.changes],
            "missing": [i for i in dict.fromkeys(body.ids) if i not in found]}


@router.get("/{alert_id}")
def get_alert(
    request: Request, principal: Reader, session: Db, alert_id: str,
    events_offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    events_limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 20,
) -> dict[str, Any]:
    """The alert with its context, delivery history and a page of its matching events from the lake."""
    _, detail, events = read_alert(request, principal, session, alert_id, events_offset=events_offset,
                                   events_limit=events_limit)
    return {**detail, "events": {"items": events.events, "offset": events.offset, "limit": events.limit,
                                 "has_more": events.has_more}}


@router.patch("/{alert_id}")
def update_alert(request: Request, principal: Writer, session: Db, alert_id: str, body: AlertChange) -> dict[str, Any]:
    """Change the alert's status and/or assignee (recorded with who and when, and audited)."""
    load_alert(session, alert_id)
    try:
        (change,) = change_alerts(request, principal, session, [alert_id], status=body.status,
                                  assignee=_assignee(body))
    except BadAlertQuery as err:
        raise bad_query(err) from err
    return {**queries.alert_json(change.alert), "changed": change.changes}
