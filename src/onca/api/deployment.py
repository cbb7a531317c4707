"""/api/v1/deployment: the deployment's status, events, diagnosis and upgrade plan (read-only).

These hold no log data and no secret (secret parameters are masked), so the operator roles read them too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from onca.api.deps import Principal, requires
from onca.deploy import reports
from onca.deploy.stacks import Deployment

router = APIRouter(prefix="/api/v1/deployment", tags=["deployment"])

Reader = Annotated[Principal, Depends(requires("deployment:read"))]


def root(request: Request, deployment: Deployment) -> str:
    """The stack the app serves (the one deployed in its home)."""
    return reports.root_stack(deployment, request.app.state.ctx.stack_name)


@router.get("/status", summary="The root stack, its components and resources, versions and any lock")
def status(request: Request, _: Reader) -> dict[str, Any]:
    with reports.opened(request.app.state.ctx.home) as deployment:
        return reports.status(deployment, root(request, deployment))


@router.get("/events", summary="The deployment's events, newest first, a page at a time")
def events(request: Request, _: Reader, offset: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int, Query(ge=1, le=500)] = 50,
           stack: Annotated[str | None, Query(max_length=200, description="Only this nested stack.")] = None,
           failed_only: bool = False,
           operation: Annotated[int | None, Query(ge=1, description="Only this operation's events.")] = None,
           ) -> dict[str, Any]:
    with reports.opened(request.app.state.ctx.home) as deployment:
        page = reports.events_page(deployment, root(request, deployment), offset=offset, limit=limit,
                                   stack=stack, failed_only=failed_only, operation=operation)
    return page.as_json()


@router.get("/diagnose", summary="The first failure of the last failed operation, and what to do")
def diagnose(request: Request, _: Reader) -> dict[str, Any]:
    with reports.opened(request.app.state.ctx.home) as deployment:
        return reports.diagnosis(deployment, root(request, deployment))


@router.get("/upgrade-plan", summary="The upgrade path to the installed version (or `target`), changing nothing")
def upgrade_plan(request: Request, _: Reader,
                 target: Annotated[str | None, Query(max_length=20, pattern=r"^\d+\.\d+(\.\d+)?$")] = None,
                 ) -> dict[str, Any]:
    with reports.opened(request.app.state.ctx.home) as deployment:
        return reports.upgrade_plan(deployment, root(request, deployment), target=target)
