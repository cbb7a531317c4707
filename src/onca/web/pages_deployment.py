"""The Deployment page: the stack tree with statuses, the deployed and installed versions, the recent events,
the diagnosis of the last failure and the upgrade plan. Read-only; the operator roles see it too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from onca.api.deployment import root
from onca.api.deps import Principal, requires
from onca.deploy import reports
from onca.web.render import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(requires("deployment:read"))]
EVENTS_PER_PAGE = 50


@router.get("/deployment")
def deployment_page(request: Request, principal: Reader,
                    page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    with reports.opened(request.app.state.ctx.home) as deployment:
        stack = root(request, deployment)
        status = reports.status(deployment, stack)
        events = reports.events_page(deployment, stack, offset=(page - 1) * EVENTS_PER_PAGE, limit=EVENTS_PER_PAGE)
        diagnosis = reports.diagnosis(deployment, stack)
        plan = reports.upgrade_plan(deployment, stack)
    return render(request, "deployment.html", principal, status=status, events=events, diagnosis=diagnosis,
                  plan=plan, page=page, has_next=events.offset + len(events.events) < events.total)
