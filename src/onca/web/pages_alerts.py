"""Console pages: the Overview (`/`), the alerts list with bulk triage (`/alerts`) and an alert's page
(`/alerts/{id}`). Plain HTML forms (GET filters, POST triage with the CSRF field); no JavaScript.

The Overview is for every signed-in role (health:read); its alert panels only for those who may read alerts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from onca.alerts import queries
from onca.alerts.events import MAX_EVENTS_PAGE
from onca.alerts.queries import AlertFilter, BadAlertQuery
from onca.api import alerts as api
from onca.api.deps import Principal, get_db, requires
from onca.lake.activity import daily_volume
from onca.sources import store as sources_store
from onca.sources.health import source_health
from onca.store.models import ALERT_KINDS, ALERT_STATUSES, SEVERITIES
from onca.web import charts
from onca.web.render import redirect, render, safe_next

router = APIRouter(include_in_schema=False)

Health = Annotated[Principal, Depends(requires("health:read"))]
Reader = Annotated[Principal, Depends(requires("alerts:read"))]
Writer = Annotated[Principal, Depends(requires("alerts:write"))]
Db = Annotated[Session, Depends(get_db)]
PAGE_SIZE = 50
EVENTS_PAGE = 20


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, principal: Health, session: Db) -> HTMLResponse:
    lake_dir = request.app.state.ctx.lake_dir
    context: dict[str, Any] = {}
    if principal.can("alerts:read"):
        context["open_alerts"] = queries.open_by_severity(session)
        context["alerts_chart"] = charts.stacked_bars(
            "Alerts by severity, last 7 days (UTC)", queries.severity_by_day(session, 7), charts.SEVERITY_FILLS)
    volume = daily_volume(lake_dir, 7)
    context["volume_chart"] = charts.bars("Events ingested per day, last 7 days (event time, UTC)", volume.events)
    context["quarantined_total"] = sum(n for _, n in volume.quarantined)
    sources = sources_store.listing(session)
    health = source_health(lake_dir, [s.name for s in sources])
    context["sources"] = [(s, health[s.name]) for s in sources]
    return render(request, "overview.html", principal, **context)


def _moment(text: str | None, name: str) -> datetime | None:
    """A date (YYYY-MM-DD, from a date input) or an ISO date-time; blank is None."""
    if not text or not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise HTTPException(422, f"{name} must be a date (YYYY-MM-DD) or an ISO date-time") from err


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request, principal: Reader, session: Db,
    status: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    rule_id: Annotated[str, Query(max_length=255)] = "",
    log_type: Annotated[str, Query(max_length=255)] = "",
    type: Annotated[str, Query(max_length=32)] = "",
    assignee: Annotated[str, Query(max_length=320)] = "",
    title: Annotated[str, Query(max_length=500)] = "",
    created_after: Annotated[str, Query(max_length=40)] = "",
    created_before: Annotated[str, Query(max_length=40)] = "",
    sort: Annotated[str, Query(max_length=16)] = "newest",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    try:
        flt = AlertFilter.parse(statuses=status or [], severities=severity or [], rule_id=rule_id, log_type=log_type,
                                kind=type, assignee=assignee, title=title,
                                created_after=_moment(created_after, "created after"),
                                created_before=_moment(created_before, "created before"))
    except BadAlertQuery as err:
        raise HTTPException(422, str(err)) from err
    found = api.list_page(request, principal, session, flt, limit=PAGE_SIZE, cursor=cursor, page=1, sort=sort)
    # The filters as given (not normalized), for the form and for the pager's links.
    form = {"status": flt.statuses, "severity": flt.severities, "rule_id": rule_id, "log_type": log_type,
            "type": type, "assignee": assignee, "title": title, "created_after": created_after,
            "created_before": created_before, "sort": sort}
    query = urlencode([(k, v) for k, value in form.items()
                       for v in (value if isinstance(value, tuple) else [value]) if v and (k, v) != ("sort", "newest")])
    here = "/alerts" + (f"?{query}" if query else "")
    next_url = f"/alerts?{query}{'&' if query else ''}cursor={found.next_cursor}" if found.next_cursor else None
    return render(request, "alerts.html", principal, page=found, form=form, statuses=ALERT_STATUSES,
                  severities=SEVERITIES, kinds=ALERT_KINDS, first_url=here if cursor else None, next_url=next_url,
                  here=(here + (f"{'&' if query else '?'}cursor={cursor}" if cursor else "")),
                  can_write=principal.can("alerts:write"))


@router.post("/alerts/bulk")
def alerts_bulk(
    request: Request, principal: Writer, session: Db,
    ids: Annotated[list[str] | None, Form()] = None,
    status: Annotated[str, Form(max_length=16)] = "",
    assignee: Annotated[str, Form(max_length=320)] = "",
    unassign: Annotated[str, Form(max_length=8)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/alerts",
) -> RedirectResponse:
    target = safe_next(back, "/alerts")
    if not target.startswith("/alerts"):
        target = "/alerts"
    if not ids:
        return redirect(target, "Select at least one alert first.", "warning")
    new_assignee = "" if unassign else (assignee.strip() or None)
    if not status and new_assignee is None:
        return redirect(target, "Choose a status and/or an assignee to apply.", "warning")
    try:
        changes = api.change_alerts(request, principal, session, ids, status=status or None, assignee=new_assignee)
    except BadAlertQuery as err:
        return redirect(target, str(err), "error")
    changed = sum(1 for c in changes if c.changes)
    return redirect(target, f"Updated {changed} of {len(changes)} selected alert(s).")


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(
    request: Request, principal: Reader, session: Db, alert_id: str,
    events: Annotated[int, Query(ge=0, le=1_000_000, description="Offset in the matching events.")] = 0,
) -> HTMLResponse:
    alert, detail, page = api.read_alert(request, principal, session, alert_id, events_offset=events,
                                         events_limit=min(EVENTS_PAGE, MAX_EVENTS_PAGE))
    context = alert.alert_context
    rows = ([(str(k), v) for k, v in sorted(context.items())] if isinstance(context, dict)
            else [("context", context)] if context is not None else [])
    return render(request, "alert_detail.html", principal, alert=alert, detail=detail, events=page,
                  context_rows=rows, statuses=ALERT_STATUSES, can_write=principal.can("alerts:write"))


@router.post("/alerts/{alert_id}")
def alert_update(
    request: Request, principal: Writer, session: Db, alert_id: str,
    status: Annotated[str, Form(max_length=16)] = "",
    assignee: Annotated[str, Form(max_length=320)] = "",
) -> RedirectResponse:
    alert = api.load_alert(session, alert_id)
    try:
        (change,) = api.change_alerts(request, principal, session, [alert.id], status=status or None,
                                      assignee=assignee)
    except BadAlertQuery as err:
        return redirect(f"/alerts/{alert.id}", str(err), "error")
    if not change.changes:
        return redirect(f"/alerts/{alert.id}", "Nothing changed.", "info")
    return redirect(f"/alerts/{alert.id}", "Alert updated: " + ", ".join(
        f"{name} {old or 'none'} → {new or 'none'}" for name, (old, new) in change.changes.items()))
