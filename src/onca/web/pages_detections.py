"""Console pages for detections: the filterable list with enable/disable, and a detection's page with its code
(line-numbered, escaped), its tests and a button to run them, and a form to try it on a pasted event.

Plain HTML forms only: GET filters, POSTs carrying the CSRF field. Every render of a detection's page shows
its code, so every one is audited as `detection.read`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from onca.api import detections as api
from onca.api.deps import Principal, audit_event, get_db, requires
from onca.detections import catalog
from onca.web.render import redirect, render, safe_next

router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(requires("detections:read"))]
Writer = Annotated[Principal, Depends(requires("detections:write"))]
Db = Annotated[Session, Depends(get_db)]
Filter = Annotated[str, Query(max_length=255)]
PAGE_SIZE = 50
MAX_EVENT_CHARS = 512 * 1024
TYPES = ("rule", "scheduled_rule", "policy", "correlation_rule")


@router.get("/detections", response_class=HTMLResponse)
def detections_page(request: Request, principal: Reader, session: Db, type: Filter = "",
                    log_type: Filter = "", severity: Filter = "", enabled: Filter = "", tag: Filter = "",
                    text: Filter = "", page: Annotated[int, Query(ge=1)] = 1) -> HTMLResponse:
    form = {"type": type, "log_type": log_type, "severity": severity, "enabled": enabled, "tag": tag, "text": text}
    everything = catalog.list_detections(request.app.state.ctx.home, session)
    where = catalog.DetectionFilter(type or None, log_type or None, severity or None,
                                    {"true": True, "false": False}.get(enabled), tag or None, text or None)
    rows = [row for row in everything if where.matches(row)]
    shown = rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    base_query = urlencode({k: v for k, v in form.items() if v})
    here = "/detections" + (f"?{base_query}&page={page}" if base_query else f"?page={page}")
    return render(request, "detections.html", principal, rows=shown, total=len(rows),
                  running=sum(row.enabled for row in rows), form=form, page=page,
                  has_next=page * PAGE_SIZE < len(rows), base_query=base_query, here=here, types=TYPES,
                  log_types=sorted({t for row in everything for t in row.log_types}),
                  severities=sorted({row.severity for row in everything if row.severity}),
                  tags=sorted({t for row in everything for t in row.tags}, key=str.lower),
                  can_write=principal.can("detections:write"))


def detail_page(request: Request, principal: Principal, session: Session, detection_id: str,
                status_code: int = 200, **context: Any) -> HTMLResponse:
    _, item = api.load_detection(request, detection_id)
    view = api.detection_view(request, session, item)
    audit_event(request, principal, "detection.read", item.id)
    context.setdefault("event_text", _example_event(item.spec))
    code = view["code"]
    return render(request, "detection_detail.html", principal, status_code=status_code, d=view,
                  code_lines=code.splitlines() if code is not None else None,
                  spec_lines=view["spec_text"].splitlines(), can_write=principal.can("detections:write"),
                  **context)


def _example_event(spec: dict[str, Any]) -> str:
    """The first test's event, as a starting point for the pasted-event form."""
    for test in spec.get("Tests") or []:
        entry = test.get("Log", test.get("Resource"))
        if isinstance(entry, dict):
            return json.dumps(entry, indent=2, default=str)
    return "{\n}"


@router.get("/detections/{detection_id}", response_class=HTMLResponse)
def detection_page(detection_id: str, request: Request, principal: Reader, session: Db) -> HTMLResponse:
    return detail_page(request, principal, session, detection_id)


@router.post("/detections/{detection_id}/enable")
def enable_detection(detection_id: str, request: Request, principal: Writer, session: Db,
                     back: Annotated[str, Form(max_length=2048)] = "") -> Response:
    api.toggle(request, principal, session, detection_id, enabled=True)
    return redirect(safe_next(back, f"/detections/{quote(detection_id)}"),
                    f"{detection_id} enabled: workers run it from their next batch.")


@router.post("/detections/{detection_id}/disable")
def disable_detection(detection_id: str, request: Request, principal: Writer, session: Db,
                      back: Annotated[str, Form(max_length=2048)] = "") -> Response:
    api.toggle(request, principal, session, detection_id, enabled=False)
    return redirect(safe_next(back, f"/detections/{quote(detection_id)}"),
                    f"{detection_id} disabled: workers stop running it from their next batch.")


@router.post("/detections/{detection_id}/tests", response_class=HTMLResponse)
def run_tests(detection_id: str, request: Request, principal: Reader, session: Db) -> HTMLResponse:
    try:
        run = api.run_tests(request, principal, detection_id)
    except HTTPException as err:
        if err.status_code != 422:
            raise
        # The detection could not finish its tests: that is the answer to show, not a bad request.
        return detail_page(request, principal, session, detection_id, tests_error=err.detail)
    return detail_page(request, principal, session, detection_id, test_run=run)


@router.post("/detections/{detection_id}/event", response_class=HTMLResponse)
def test_event(detection_id: str, request: Request, principal: Reader, session: Db,
               event: Annotated[str, Form(max_length=MAX_EVENT_CHARS)] = "") -> HTMLResponse:
    try:
        parsed = json.loads(event)
    except ValueError as err:
        return detail_page(request, principal, session, detection_id, 422, event_text=event,
                           event_error=f"the event is not valid JSON: {err}")
    if not isinstance(parsed, dict):
        return detail_page(request, principal, session, detection_id, 422, event_text=event,
                           event_error="the event must be a JSON object ({...})")
    try:
        verdict = api.test_event(request, principal, detection_id, parsed)
    except HTTPException as err:
        if err.status_code != 422:
            raise
        return detail_page(request, principal, session, detection_id, event_text=event, event_error=err.detail)
    return detail_page(request, principal, session, detection_id, event_text=event, verdict=verdict)
