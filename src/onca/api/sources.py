"""/api/v1/sources: the configured log sources (CRUD, an http source's token), their health and quarantine.

Health (last event, volumes, quarantined counts) holds no log data: `health:read` may see it for every source.
Quarantined samples are raw log records: they need `logs:read`, and every read is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from onca.api.deps import Principal, audit_event, get_db, requires
from onca.sources import store as sources
from onca.sources.health import quarantine_samples, source_health

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])

Db = Annotated[Session, Depends(get_db)]
Reader = Annotated[Principal, Depends(requires("sources:read"))]
Writer = Annotated[Principal, Depends(requires("sources:write"))]
HealthReader = Annotated[Principal, Depends(requires("health:read"))]
LogReader = Annotated[Principal, Depends(requires("logs:read"))]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200, description="Unique; an http source's intake URL is /ingest/<name>.")
    kind: str = Field("http", description="http (push with a bearer token), syslog, directory or s3.")
    log_types: list[str] = Field(min_length=1, max_length=50, description="Candidate log types.")
    udp: str | None = Field(None, max_length=300, description="syslog: HOST:PORT to listen on over UDP.")
    tcp: str | None = Field(None, max_length=300, description="syslog: HOST:PORT to listen on over TCP.")
    path: str | None = Field(None, max_length=4096, description="directory: the absolute path to watch.")
    bucket: str | None = Field(None, max_length=63, description="s3: the bucket to read.")
    prefix: str | None = Field(None, max_length=1024, description="s3: only keys under this prefix.")
    queue_url: str | None = Field(None, max_length=2048,
                                  description="s3: an SQS queue receiving the bucket's ObjectCreated notifications.")
    region: str | None = Field(None, max_length=64, description="s3: the AWS region.")
    endpoint_url: str | None = Field(None, max_length=2048, description="s3: an S3-compatible endpoint (MinIO...).")


class SourceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log_types: list[str] | None = Field(None, min_length=1, max_length=50)
    enabled: bool | None = None


def source_error(err: sources.SourceError) -> HTTPException:
    return HTTPException(404 if err.missing else 422, {"message": str(err), "errors": err.problems})


def with_health(request: Request, rows: list[Any]) -> list[dict[str, Any]]:
    health = source_health(request.app.state.ctx.lake_dir, [row.name for row in rows])
    return [{**sources.public_view(row), "health": health[row.name].as_json()} for row in rows]


# The changes below are made, and audited, the same way from the API and from the console pages.


def create_source(request: Request, db: Session, principal: Principal, body: SourceIn) -> tuple[Any, str | None]:
    """Add the source (SourceError if it cannot be) and audit it; returns it and an http source's token."""
    config = sources.kind_config(body.kind, udp=body.udp, tcp=body.tcp, path=body.path,
                                 s3={key: getattr(body, key) for key in sources.S3_FIELDS})
    row, token = sources.add(db, body.name, body.kind, body.log_types, config)
    audit_event(request, principal, "source.created", row.name, {"kind": row.kind, "log_types": row.log_types})
    return row, token


def update_source(request: Request, db: Session, principal: Principal, name: str, changes: dict[str, Any]) -> Any:
    """Change a source's log types and/or switch it on or off (`changes`: only what changes), audited."""
    try:
        row = sources.update(db, name, **changes)
    except sources.SourceError as err:
        raise source_error(err) from err
    audit_event(request, principal, "source.updated", name, changes)
    return row


def delete_source(request: Request, db: Session, principal: Principal, name: str) -> None:
    try:
        row = sources.remove(db, name)
    except sources.SourceError as err:
        raise source_error(err) from err
    audit_event(request, principal, "source.deleted", name, {"kind": row.kind, "log_types": row.log_types})


def new_token(request: Request, db: Session, principal: Principal, name: str) -> str:
    try:
        token = sources.rotate_token(db, name)
    except sources.SourceError as err:
        raise source_error(err) from err
    audit_event(request, principal, "source.token_rotated", name)
    return token


@router.get("", summary="List sources with their health")
def list_sources(request: Request, db: Db,
                 _: Reader) -> dict[str, Any]:
    return {"sources": with_health(request, sources.listing(db))}


@router.post("", status_code=201, summary="Add a source (an http source's token is in this answer only)")
def add_source(body: SourceIn, request: Request, db: Db,
               principal: Writer) -> dict[str, Any]:
    try:
        row, token = create_source(request, db, principal, body)
    except sources.SourceError as err:
        raise source_error(err) from err
    return {"source": sources.public_view(row), "token": token,
            "ingest_path": f"/ingest/{row.name}" if row.kind == "http" else None}


@router.get("/health", summary="Every source's last event, volumes and quarantined counts (no log data)")
def health(request: Request, db: Db,
           _: HealthReader) -> dict[str, Any]:
    rows = sources.listing(db)
    numbers = source_health(request.app.state.ctx.lake_dir, [row.name for row in rows])
    return {"sources": [{**numbers[row.name].as_json(), "kind": row.kind, "enabled": bool(row.enabled)}
                        for row in rows]}


@router.get("/{name}", summary="One source with its health")
def get_source(name: str, request: Request, db: Db,
               _: Reader) -> dict[str, Any]:
    try:
        row = sources.get(db, name)
    except sources.SourceError as err:
        raise source_error(err) from err
    return {"source": with_health(request, [row])[0]}


@router.patch("/{name}", summary="Change a source's log types or switch it on or off")
def change_source(name: str, body: SourceChange, request: Request, db: Db,
                  principal: Writer) -> dict[str, Any]:
    row = update_source(request, db, principal, name, body.model_dump(exclude_none=True))
    return {"source": sources.public_view(row)}


@router.delete("/{name}", status_code=204, summary="Remove a source (its data stays in the lake)")
def remove_source(name: str, request: Request, db: Db,
                  principal: Writer) -> Response:
    delete_source(request, db, principal, name)
    return Response(status_code=204)


@router.post("/{name}/token", summary="Issue a new token for an http source (the old one stops working)")
def rotate_token(name: str, request: Request, db: Db,
                 principal: Writer) -> dict[str, Any]:
    return {"name": name, "token": new_token(request, db, principal, name)}


@router.get("/{name}/quarantine", summary="Recently quarantined records of a source, with the parsers' reasons")
def quarantined(name: str, request: Request, db: Db, principal: LogReader,
                limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    try:
        sources.get(db, name)
    except sources.SourceError as err:
        raise source_error(err) from err
    samples = quarantine_samples(request.app.state.ctx.lake_dir, name, limit=limit)
    audit_event(request, principal, "source.quarantine_viewed", name, {"samples": len(samples)})
    return {"name": name, "samples": [sample.as_json() for sample in samples]}
