"""`/api/v1/search`: read-only SQL over the lake, indicator search, and the tables with their columns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from onca.api.deps import Principal, audit_event, requires
from onca.lake.browse import describe_tables
from onca.lake.query import DEFAULT_LIMIT, QueryError, QueryResult, execute_query, format_csv
from onca.lake.search import KIND_COLUMNS, Hit, parse_since
from onca.lake.search import search as search_lake

router = APIRouter(prefix="/api/v1/search", tags=["search"])

Searcher = Annotated[Principal, Depends(requires("search:run"))]
MAX_LIMIT = 10_000
MAX_TIMEOUT_S = 60.0
DEFAULT_TIMEOUT_S = 30.0
AUDITED_SQL_CHARS = 4000  # enough to tell what was asked, without letting one query bloat the audit log


class SqlBody(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One read-only statement: SELECT, WITH, "
                                                                    "DESCRIBE, SHOW or EXPLAIN of a SELECT.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many rows.")
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S,
                             description="Seconds before the query is cancelled.")


def run_sql(request: Request, principal: Principal, sql: str, *, limit: int = DEFAULT_LIMIT,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> QueryResult:
    """Run one query over the lake, audited whatever the outcome; QueryError carries the reason for the user."""
    details: dict[str, Any] = {"kind": "sql", "sql": sql[:AUDITED_SQL_CHARS], "limit": limit}
    try:
        result = execute_query(request.app.state.ctx.lake_dir, sql, limit=limit, timeout_s=timeout_s)
    except QueryError as err:
        audit_event(request, principal, "search.run", "lake", {**details, "error": str(err)}, outcome="failure")
        raise
    audit_event(request, principal, "search.run", "lake",
                {**details, "rows": len(result.rows), "truncated": result.truncated})
    return result


def find_indicator(request: Request, principal: Principal, kind: str, value: str, since: str | None,
                   limit: int) -> list[Hit]:
    """Indicator search over every table (audited); ValueError for a bad `since`."""
    moment = parse_time(since)
    hits = search_lake(request.app.state.ctx.lake_dir, kind, value, moment, limit=limit)
    audit_event(request, principal, "search.run", "lake",
                {"kind": kind, "value": value, "since": since, "hits": len(hits)})
    return hits


def parse_time(since: str | None) -> datetime | None:
    if not since:
        return None
    try:
        return parse_since(since)
    except ValueError as err:
        raise ValueError(f"since={err}") from err


def _json_value(value: Any) -> Any:
    """What orjson cannot write itself (Decimal, timedelta, bytes, ...) as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def json_bytes(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_json_value, option=orjson.OPT_NON_STR_KEYS)


def csv_response(result: QueryResult) -> Response:
    return Response(format_csv(result.columns, result.rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="onca-search.csv"'})


@router.post("/sql", summary="Run read-only SQL over the lake",
             responses={200: {"content": {"application/json": {}, "text/csv": {}},
                              "description": "columns and rows (JSON), or a CSV download with ?format=csv"},
                        400: {"description": "refused (not a read), failed, or cancelled after the timeout"}})
def search_sql(request: Request, principal: Searcher, body: SqlBody,
               output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json") -> Response:
    try:
        result = run_sql(request, principal, body.sql, limit=body.limit, timeout_s=body.timeout_s)
    except QueryError as err:
        raise HTTPException(400, str(err)) from err
    if output == "csv":
        return csv_response(result)
    return Response(json_bytes({"columns": result.columns, "rows": result.rows, "truncated": result.truncated,
                                "limit": body.limit}), media_type="application/json")


@router.get("/indicators", summary="Find an IP, domain, user, email or hash in every table")
def search_indicators(
    request: Request, principal: Searcher,
    ip: str | None = None, domain: str | None = None, user: str | None = None, email: str | None = None,
    hash_: Annotated[str | None, Query(alias="hash", description="An MD5, SHA1 or SHA256 hash")] = None,
    since: Annotated[str | None, Query(description="24h, 7d, or an ISO time")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
) -> Response:
    given = [(kind, value) for kind, value in
             (("ip", ip), ("domain", domain), ("user", user), ("email", email), ("hash", hash_)) if value]
    if len(given) != 1:
        raise HTTPException(400, f"give exactly one of {', '.join(KIND_COLUMNS)}")
    kind, value = given[0]
    try:
        hits = find_indicator(request, principal, kind, value, since, limit)
    except ValueError as err:
        raise HTTPException(400, str(err)) from err
    return Response(json_bytes({"kind": kind, "value": value, "limit": limit,
                                "hits": [hit.as_dict() for hit in hits]}), media_type="application/json")


@router.get("/tables", summary="The lake's tables with their columns, row and file counts")
def list_tables(request: Request, principal: Searcher) -> dict[str, Any]:
    tables = describe_tables(request.app.state.ctx.lake_dir)
    return {"tables": [{"name": t.name, "rows": t.rows, "files": t.files,
                        "columns": [{"name": c.name, "type": c.data_type} for c in t.columns]} for t in tables]}
