"""Console pages for alert destinations: the list (secrets hidden), a create/edit form per kind with field-level
errors, a test send, removal. A secret is never put back into a page, not even into a form being corrected."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from onca.api.deps import Principal, audit_event, get_db, requires
from onca.destinations import editing, registry
from onca.destinations import store as destinations
from onca.destinations.base import SEVERITIES, ConfigError
from onca.destinations.secrets import keyring
from onca.web.render import redirect, render

router = APIRouter(include_in_schema=False)

Db = Annotated[Session, Depends(get_db)]
Reader = Annotated[Principal, Depends(requires("destinations:read"))]
Writer = Annotated[Principal, Depends(requires("destinations:write"))]
CONFIG_PREFIX = "config."  # form fields of the kind's settings, apart from name, kind and the filters


def form_page(request: Request, principal: Principal, *, kind: str, values: dict[str, Any], errors: dict[str, str],
              editing_name: str | None = None, has_secret: dict[str, bool] | None = None,
              status_code: int = 200) -> HTMLResponse:
    try:
        fields = editing.kind_fields(kind)
    except ConfigError as err:
        raise HTTPException(404, err.problems.get("kind", str(err))) from err
    shown = {spec.name: editing.form_text(values.get(spec.name, spec.default if spec.input != "secret" else ""))
             for spec in fields}
    for spec in fields:
        if spec.input == "secret":
            shown[spec.name] = ""  # a secret never goes back into the page
    return render(request, "destination_form.html", principal, status_code=status_code, kind=kind,
                  kinds=list(registry.KINDS), fields=fields, values=shown, checked=values, errors=errors,
                  editing_name=editing_name, has_secret=has_secret or {}, severities=SEVERITIES,
                  config_prefix=CONFIG_PREFIX)


async def submitted(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """(name/kind/filters, the kind's raw config) from the posted form."""
    form = await request.form()
    config_form = {key.removeprefix(CONFIG_PREFIX): value for key, value in form.items()
                   if key.startswith(CONFIG_PREFIX) and isinstance(value, str)}
    meta = {"name": str(form.get("name") or "").strip(), "kind": str(form.get("kind") or ""),
            "severities": [str(v) for v in form.getlist("severities")],
            "log_types": str(form.get("log_types") or ""), "enabled": form.get("enabled") == "on"}
    return meta, config_form


async def save_form(request: Request, db: Session, principal: Principal, name: str | None) -> Response:
    meta, config_form = await submitted(request)
    target = name if name is not None else meta["name"]
    try:
        raw = editing.form_config(meta["kind"], config_form)
    except ConfigError as err:
        raise HTTPException(422, err.problems.get("kind", str(err))) from err
    try:
        row = editing.save(db, keyring(request.app.state.ctx.home), target, meta["kind"], raw,
                           severities=meta["severities"], log_types=[meta["log_types"]], enabled=meta["enabled"],
                           existing=name is not None)
    except ConfigError as err:
        ticked = {key: value for key, value in raw.items() if isinstance(value, bool)}
        values = {**config_form, **ticked, **meta, "log_types_text": meta["log_types"]}
        return form_page(request, principal, kind=meta["kind"], values=values, errors=err.problems,
                         editing_name=name, status_code=422)
    except destinations.DestinationError as err:
        raise HTTPException(404, str(err)) from err
    audit_event(request, principal, "destination.updated" if name is not None else "destination.created", row.name,
                {"kind": row.kind, "severities": row.severities, "log_types": row.log_types, "enabled": row.enabled})
    return redirect("/destinations", f"Destination {row.name} saved.")


@router.get("/destinations")
def destinations_page(request: Request, db: Db, principal: Reader) -> HTMLResponse:
    fernet = keyring(request.app.state.ctx.home)
    return render(request, "destinations.html", principal,
                  destinations=[editing.public_view(row, fernet) for row in editing.listing(db)])


@router.get("/destinations/new")
def new_destination(request: Request, principal: Writer, kind: str = "webhook") -> HTMLResponse:
    return form_page(request, principal, kind=kind, values={"enabled": True}, errors={})


@router.post("/destinations/new")
async def create_destination(request: Request, db: Db, principal: Writer) -> Response:
    return await save_form(request, db, principal, None)


@router.get("/destinations/{name}/edit")
def edit_destination(name: str, request: Request, db: Db, principal: Writer) -> HTMLResponse:
    row = destinations.get(db, name, required=False)
    if row is None:
        raise HTTPException(404, f"no destination named {name!r}")
    view = editing.public_view(row, keyring(request.app.state.ctx.home))
    values = {**view["config"], "name": view["name"], "severities": view["severities"],
              "log_types_text": ", ".join(view["log_types"]), "enabled": view["enabled"]}
    has_secret = {key: view["config"].get(key) == editing.MASK for key in view["secret_fields"]}
    return form_page(request, principal, kind=row.kind, values=values, errors={}, editing_name=name,
                     has_secret=has_secret)


@router.post("/destinations/{name}/edit")
async def update_destination(name: str, request: Request, db: Db, principal: Writer) -> Response:
    return await save_form(request, db, principal, name)


@router.post("/destinations/{name}/test")
def test_destination(name: str, request: Request, db: Db, principal: Writer) -> Response:
    outcome = editing.send_test(db, keyring(request.app.state.ctx.home), name)
    if outcome is None:
        raise HTTPException(404, f"no destination named {name!r}")
    audit_event(request, principal, "destination.tested", name, {"success": outcome.success})
    if outcome.success:
        return redirect("/destinations", f"Test alert sent to {name}: {outcome.message}")
    kind = "permanent failure" if outcome.permanent else "transient failure (the outbox would retry)"
    return redirect("/destinations", f"Test alert to {name} failed: {kind}: {outcome.message}", "error")


@router.post("/destinations/{name}/delete")
def remove_destination(name: str, request: Request, db: Db, principal: Writer) -> Response:
    try:
        destinations.remove(db, name)
    except destinations.DestinationError as err:
        raise HTTPException(404, str(err)) from err
    audit_event(request, principal, "destination.removed", name)
    return redirect("/destinations", f"Destination {name} removed.")
