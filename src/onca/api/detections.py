"""`/api/v1/detections`: list, read (spec, code, tests), enable/disable, run tests, test an event."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from onca.api.deps import Principal, audit_event, get_db, requires
from onca.deploy.components.detections import deployed_content
from onca.detections import catalog, workbench
from onca.detections.content import Content, ContentItem
from onca.detections.enablement import disabled_ids

router = APIRouter(prefix="/api/v1/detections", tags=["detections"])

Reader = Annotated[Principal, Depends(requires("detections:read"))]
Writer = Annotated[Principal, Depends(requires("detections:write"))]
Db = Annotated[Session, Depends(get_db)]


class EventBody(BaseModel):
    event: dict[str, Any] = Field(description="One log event as JSON, as the rule would receive it.")


def load_detection(request: Request, detection_id: str) -> tuple[Content, ContentItem]:
    """The deployment's content and the named detection in it, or 404."""
    content = deployed_content(request.app.state.ctx.home)
    try:
        return content, catalog.find_detection(content, detection_id)
    except catalog.UnknownDetection as err:
        raise HTTPException(404, f"no detection {detection_id!r} is installed") from err


def detection_view(request: Request, session: Session, item: ContentItem) -> dict[str, Any]:
    """Everything about one detection: the summary row, its spec, code and tests."""
    home = request.app.state.ctx.home
    summary = catalog.summarize(home, item, disabled_ids(session))
    return {**summary.as_dict(), "spec": item.spec, "spec_text": catalog.detection_spec_text(item),
            "code": catalog.detection_code(item),
            "tests": [{"name": t.get("Name"), "expected": t.get("ExpectedResult")}
                      for t in item.spec.get("Tests") or []]}


def toggle(request: Request, principal: Principal, session: Session, detection_id: str,
           *, enabled: bool) -> dict[str, Any]:
    """Turn a detection on or off (audited): its summary row afterwards, with whether anything changed."""
    _, item = load_detection(request, detection_id)
    home = request.app.state.ctx.home
    changed = catalog.set_enabled(home, session, [item.id], enabled=enabled)
    audit_event(request, principal, "detection.enabled" if enabled else "detection.disabled", item.id,
                {"changed": changed})
    return {**catalog.summarize(home, item, disabled_ids(session)).as_dict(), "changed": changed}


def run_tests(request: Request, principal: Principal, detection_id: str) -> dict[str, Any]:
    content, item = load_detection(request, detection_id)
    try:
        report = workbench.run_tests(request.app.state.ctx.home, content, item)
    except workbench.WorkbenchError as err:
        audit_event(request, principal, "detection.tests_run", detection_id, {"error": str(err)}, outcome="failure")
        raise HTTPException(422, str(err)) from err
    result = workbench.report_as_dict(report)
    audit_event(request, principal, "detection.tests_run", detection_id,
                {"status": result["status"], "passed": result["passed"], "failed": result["failed"]})
    return result


def test_event(request: Request, principal: Principal, detection_id: str, event: dict[str, Any]) -> dict[str, Any]:
    content, item = load_detection(request, detection_id)
    try:
        verdict = workbench.try_event(request.app.state.ctx.home, content, item, event)
    except workbench.WorkbenchError as err:
        audit_event(request, principal, "detection.event_tested", detection_id, {"error": str(err)},
                    outcome="failure")
        raise HTTPException(422, str(err)) from err
    audit_event(request, principal, "detection.event_tested", detection_id,
                {"matched": verdict.matched, "errors": len(verdict.errors)})
    return verdict.as_dict()


@router.get("", summary="List detections")
def list_detections(
    request: Request, principal: Reader, session: Db,
    analysis_type: Annotated[str | None, Query(alias="type", description="rule, scheduled_rule, policy, "
                                                                        "correlation_rule")] = None,
    log_type: Annotated[str | None, Query(description="A log type the detection runs on, e.g. AWS.CloudTrail")] = None,
    severity: Annotated[str | None, Query(description="Info, Low, Medium, High or Critical")] = None,
    enabled: Annotated[bool | None, Query(description="Only detections that run (true) or do not (false)")] = None,
    tag: Annotated[str | None, Query(description="A tag, case-insensitive")] = None,
    text: Annotated[str | None, Query(description="Words in the id, name or description")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    where = catalog.DetectionFilter(analysis_type, log_type, severity, enabled, tag, text)
    rows = catalog.list_detections(request.app.state.ctx.home, session, where)
    return {"total": len(rows), "limit": limit, "offset": offset,
            "items": [row.as_dict() for row in rows[offset:offset + limit]]}


@router.get("/{detection_id}", summary="A detection's spec, code and tests")
def get_detection(request: Request, principal: Reader, session: Db, detection_id: str) -> dict[str, Any]:
    _, item = load_detection(request, detection_id)
    view = detection_view(request, session, item)
    audit_event(request, principal, "detection.read", detection_id)
    return view


@router.post("/{detection_id}/enable", summary="Let a detection run (workers pick it up without restart)")
def enable_detection(request: Request, principal: Writer, session: Db, detection_id: str) -> dict[str, Any]:
    return toggle(request, principal, session, detection_id, enabled=True)


@router.post("/{detection_id}/disable", summary="Stop a detection from running (its content stays installed)")
def disable_detection(request: Request, principal: Writer, session: Db, detection_id: str) -> dict[str, Any]:
    return toggle(request, principal, session, detection_id, enabled=False)


@router.post("/{detection_id}/tests/run", summary="Run the detection's unit tests")
def run_detection_tests(request: Request, principal: Reader, detection_id: str) -> dict[str, Any]:
    return run_tests(request, principal, detection_id)


@router.post("/{detection_id}/test-event", summary="Run one pasted event through the detection")
def test_detection_event(request: Request, principal: Reader, detection_id: str, body: EventBody) -> dict[str, Any]:
    return test_event(request, principal, detection_id, body.event)
