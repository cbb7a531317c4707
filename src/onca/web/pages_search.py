"""The Search page: a SQL editor over the lake (results table, CSV download), the lake's tables with their
columns, and an indicator search box. Every query and indicator search is audited as `search.run`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from onca.api import search as api
from onca.api.deps import Principal, requires
from onca.lake.browse import describe_tables
from onca.lake.query import QueryError
from onca.lake.search import KIND_COLUMNS
from onca.web.render import render

router = APIRouter(include_in_schema=False)

Searcher = Annotated[Principal, Depends(requires("search:run"))]
PAGE_LIMIT = 1000  # rows shown in the page; a CSV download takes up to the API's maximum
EXAMPLE_SQL = "SELECT p_log_type, count(*) AS events\nFROM {table}\nGROUP BY 1\nORDER BY 2 DESC"


def search_page(request: Request, principal: Principal, status_code: int = 200, **context: Any) -> HTMLResponse:
    tables = describe_tables(request.app.state.ctx.lake_dir)
    first = next((t.name for t in tables if t.rows), None)
    context.setdefault("sql", EXAMPLE_SQL.format(table=first) if first else "")
    context.setdefault("limit", PAGE_LIMIT)
    context.setdefault("indicator", {"kind": "ip", "value": "", "since": ""})
    return render(request, "search.html", principal, status_code=status_code, tables=tables,
                  kinds=list(KIND_COLUMNS), max_limit=api.MAX_LIMIT, **context)


@router.get("/search", response_class=HTMLResponse)
def search_form(request: Request, principal: Searcher,
                kind: Annotated[str, Query(max_length=16)] = "ip",
                value: Annotated[str, Query(max_length=1024)] = "",
                since: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    indicator = {"kind": kind, "value": value, "since": since}
    if not value.strip():
        return search_page(request, principal, indicator=indicator)
    if kind not in KIND_COLUMNS:
        return search_page(request, principal, 422, indicator=indicator,
                           indicator_error=f"choose one of: {', '.join(KIND_COLUMNS)}")
    try:
        hits = api.find_indicator(request, principal, kind, value.strip(), since.strip() or None, PAGE_LIMIT)
    except ValueError as err:
        return search_page(request, principal, 422, indicator=indicator, indicator_error=str(err))
    return search_page(request, principal, indicator=indicator, hits=hits)


@router.post("/search", response_class=HTMLResponse)
def run_search(request: Request, principal: Searcher,
               sql: Annotated[str, Form(max_length=100_000)] = "",
               limit: Annotated[int, Form(ge=1, le=api.MAX_LIMIT)] = PAGE_LIMIT,
               output: Annotated[Literal["table", "csv"], Form(alias="format")] = "table") -> Response:
    if not sql.strip():
        return search_page(request, principal, 422, sql=sql, limit=limit, sql_error="write a query first")
    try:
        result = api.run_sql(request, principal, sql, limit=limit, timeout_s=api.DEFAULT_TIMEOUT_S)
    except QueryError as err:
        # Refused, failed or cancelled: the editor comes back with the reason, the query kept for fixing.
        return search_page(request, principal, 400, sql=sql, limit=limit, sql_error=str(err))
    if output == "csv":
        return api.csv_response(result)
    return search_page(request, principal, sql=sql, limit=limit, result=result, cells=_cells(result.rows))


def _cells(rows: list[tuple[Any, ...]]) -> list[list[str | None]]:
    """Each value as the text a table cell shows (JSON for nested values); None stays None (shown as NULL)."""
    plain = orjson.loads(api.json_bytes(rows))
    return [[v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in row] for row in plain]
