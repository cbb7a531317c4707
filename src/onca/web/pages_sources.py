"""Console pages for log sources: the list with each source's last event, volumes and quarantine count, a
source's page with its quarantined records (samples only for those who may read logs), add, token, remove."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from onca.api.deps import Principal, audit_event, get_db, requires
from onca.api.sources import (
    SourceIn,
    create_source,
    delete_source,
    new_token,
    source_error,
    update_source,
    with_health,
)
from onca.sources import store as sources
from onca.sources.health import SAMPLE_BYTES, quarantine_samples
from onca.web.render import redirect, render

router = APIRouter(include_in_schema=False)

Db = Annotated[Session, Depends(get_db)]
Reader = Annotated[Principal, Depends(requires("sources:read"))]
Writer = Annotated[Principal, Depends(requires("sources:write"))]
Text = Annotated[str, Form(max_length=4096)]


def list_page(request: Request, db: Session, principal: Principal, status_code: int = 200,
              **context: Any) -> HTMLResponse:
    context.setdefault("form", {"kind": "http"})
    context.setdefault("errors", {})
    return render(request, "sources.html", principal, status_code=status_code,
                  sources=with_health(request, sources.listing(db)), kinds=sources.KINDS, **context)


def detail_page(request: Request, db: Session, principal: Principal, name: str, token: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    try:
        row = sources.get(db, name)
    except sources.SourceError as err:
        raise source_error(err) from err
    samples = None
    if principal.can("logs:read"):
        samples = quarantine_samples(request.app.state.ctx.lake_dir, name)
        audit_event(request, principal, "source.quarantine_viewed", name, {"samples": len(samples)})
    return render(request, "source_detail.html", principal, status_code=status_code,
                  source=with_health(request, [row])[0], samples=samples, token=token, sample_bytes=SAMPLE_BYTES)


@router.get("/sources")
def sources_page(request: Request, db: Db, principal: Reader) -> HTMLResponse:
    return list_page(request, db, principal)


@router.post("/sources")
def add_source(request: Request, db: Db, principal: Writer, name: Text = "", kind: Text = "http",
               log_types: Text = "", udp: Text = "", tcp: Text = "", path: Text = "") -> Response:
    form = {"name": name, "kind": kind, "log_types": log_types, "udp": udp, "tcp": tcp, "path": path}
    try:
        body = SourceIn(name=name.strip(), kind=kind, log_types=[t for t in log_types.replace(",", " ").split()],
                        udp=udp or None, tcp=tcp or None, path=path or None)
        row, token = create_source(request, db, principal, body)
    except ValidationError as err:
        errors = {str(e["loc"][0]) if e["loc"] else "form": e["msg"] for e in err.errors()}
        return list_page(request, db, principal, 422, form=form, errors=errors)
    except sources.SourceError as err:
        return list_page(request, db, principal, 422, form=form, errors=err.problems)
    if token is None:
        return redirect(f"/sources/{quote(row.name)}", f"Source {row.name} added; restart `onca serve` to start it.")
    return detail_page(request, db, principal, row.name, token=token, status_code=201)


@router.get("/sources/{name}")
def source_page(name: str, request: Request, db: Db, principal: Reader) -> HTMLResponse:
    return detail_page(request, db, principal, name)


@router.post("/sources/{name}/token")
def rotate_token(name: str, request: Request, db: Db, principal: Writer) -> HTMLResponse:
    return detail_page(request, db, principal, name, token=new_token(request, db, principal, name))


@router.post("/sources/{name}/enabled")
def set_enabled(name: str, request: Request, db: Db, principal: Writer, enabled: Text = "") -> Response:
    on = enabled == "true"
    update_source(request, db, principal, name, {"enabled": on})
    return redirect(f"/sources/{quote(name)}", f"Source {name} {'enabled' if on else 'disabled'}.")


@router.post("/sources/{name}/delete")
def remove_source(name: str, request: Request, db: Db, principal: Writer) -> Response:
    delete_source(request, db, principal, name)
    return redirect("/sources", f"Source {name} removed; its data stays in the lake.")
