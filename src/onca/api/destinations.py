"""/api/v1/destinations: alert destinations (CRUD with each kind's validation, and a test send).

No answer ever carries a secret: secret fields that are set read "••••" and `has_secret` says whether any is
set. On PUT, a secret field left out, blank or "••••" keeps its stored value.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from onca.api.deps import Principal, audit_event, get_db, requires
from onca.destinations import editing, registry
from onca.destinations import store as destinations
from onca.destinations.base import DEFAULT_TIMEOUT, ConfigError
from onca.destinations.secrets import keyring

router = APIRouter(prefix="/api/v1/destinations", tags=["destinations"])

Db = Annotated[Session, Depends(get_db)]
Reader = Annotated[Principal, Depends(requires("destinations:read"))]
Writer = Annotated[Principal, Depends(requires("destinations:write"))]


class DestinationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=64, description="slack, teams, pagerduty, opsgenie, jira, github, webhook, "
                                                 "email, sns or sqs.")
    config: dict[str, Any] = Field(default_factory=dict, description="The kind's settings (see /kinds).")
    severities: list[str] = Field(default_factory=list, max_length=5, description="Only these (default all).")
    log_types: list[str] = Field(default_factory=list, max_length=200, description="Only these (default all).")
    enabled: bool = True


class DestinationIn(DestinationSettings):
    name: str = Field(max_length=200)


def config_error(err: ConfigError) -> HTTPException:
    return HTTPException(422, {"message": str(err), "errors": err.problems})


def missing(err: destinations.DestinationError) -> HTTPException:
    return HTTPException(404, str(err))


def audit_details(row: Any) -> dict[str, Any]:
    return {"kind": row.kind, "severities": row.severities, "log_types": row.log_types, "enabled": row.enabled}


def save(request: Request, db: Session, name: str, body: DestinationSettings, *, existing: bool) -> Any:
    try:
        return editing.save(db, keyring(request.app.state.ctx.home), name, body.kind, body.config,
                            severities=body.severities, log_types=body.log_types, enabled=body.enabled,
                            existing=existing)
    except ConfigError as err:
        raise config_error(err) from err
    except destinations.DestinationError as err:
        raise missing(err) from err


@router.get("", summary="List destinations (secrets hidden)")
def list_destinations(request: Request, db: Db, _: Reader) -> dict[str, Any]:
    fernet = keyring(request.app.state.ctx.home)
    return {"destinations": [editing.public_view(row, fernet) for row in editing.listing(db)]}


@router.get("/kinds", summary="Each destination kind's settings")
def kinds(_: Reader) -> dict[str, Any]:
    return {"kinds": {kind: [field.as_json() for field in editing.kind_fields(kind)] for kind in registry.KINDS}}


@router.post("", status_code=201, summary="Add a destination (its config is checked, then stored encrypted)")
def add_destination(body: DestinationIn, request: Request, db: Db, principal: Writer) -> dict[str, Any]:
    row = save(request, db, body.name, body, existing=False)
    audit_event(request, principal, "destination.created", row.name, audit_details(row))
    return {"destination": editing.public_view(row, keyring(request.app.state.ctx.home))}


@router.get("/{name}", summary="One destination (secrets hidden)")
def get_destination(name: str, request: Request, db: Db, _: Reader) -> dict[str, Any]:
    row = destinations.get(db, name, required=False)
    if row is None:
        raise HTTPException(404, f"no destination named {name!r}")
    return {"destination": editing.public_view(row, keyring(request.app.state.ctx.home))}


@router.put("/{name}", summary="Change a destination (secrets left blank are kept)")
def change_destination(name: str, body: DestinationSettings, request: Request, db: Db,
                       principal: Writer) -> dict[str, Any]:
    row = save(request, db, name, body, existing=True)
    audit_event(request, principal, "destination.updated", name, audit_details(row))
    return {"destination": editing.public_view(row, keyring(request.app.state.ctx.home))}


@router.delete("/{name}", status_code=204, summary="Remove a destination")
def remove_destination(name: str, request: Request, db: Db, principal: Writer) -> Response:
    try:
        destinations.remove(db, name)
    except destinations.DestinationError as err:
        raise missing(err) from err
    audit_event(request, principal, "destination.removed", name)
    return Response(status_code=204)


@router.post("/{name}/test", summary="Send a test alert now and report what the service answered")
def test_destination(name: str, request: Request, db: Db, principal: Writer) -> dict[str, Any]:
    result = editing.send_test(db, keyring(request.app.state.ctx.home), name, DEFAULT_TIMEOUT)
    if result is None:
        raise HTTPException(404, f"no destination named {name!r}")
    audit_event(request, principal, "destination.tested", name, {"success": result.success})
    return result.as_json()
