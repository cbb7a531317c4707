"""Read-only SQL over the lake: `run_query(root, sql, limit=..., timeout_s=...)`, and output formats.

Read-only is enforced twice: the statement is parsed by DuckDB and anything but one SELECT (which
covers WITH, DESCRIBE, SHOW, SUMMARIZE, FROM-first) or an EXPLAIN of one is refused; and the connection
may touch no file outside the lake (enable_external_access off, the lake as the only allowed directory,
configuration locked), so a query cannot read other files or change those settings back.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson

from onca.lake.catalog import Catalog

DEFAULT_LIMIT = 1000
DEFAULT_TIMEOUT_S = 60.0
_EXPLAIN = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?", re.IGNORECASE)


class QueryError(ValueError):
    """A query that was refused, failed or timed out; the message is for the user."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # more rows than the limit


def check_read_only(sql: str) -> None:
    """Raise QueryError unless `sql` is exactly one read-only statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryError(f"invalid SQL: {err}") from err
    if len(statements) != 1:
        raise QueryError(f"one statement at a time, please (got {len(statements)})")
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", sql, count=1)
        inner_statements = duckdb.extract_statements(inner) if inner != sql else []
        if len(inner_statements) == 1 and inner_statements[0].type == duckdb.StatementType.SELECT:
            return
        raise QueryError("only EXPLAIN of a SELECT is allowed (EXPLAIN ANALYZE runs the statement)")
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(f"the lake is read-only: {kind.name} statements are refused; "
                         "use SELECT, WITH, DESCRIBE, SHOW or EXPLAIN")


def connect_read_only(root: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    Catalog(root).attach(con)
    allowed = str(root.resolve()).replace("'", "''") + "/"
    con.execute(f"SET allowed_directories=['{allowed}']")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def execute_query(root: Path | str, sql: str, *, limit: int | None = DEFAULT_LIMIT,
                  timeout_s: float | None = DEFAULT_TIMEOUT_S) -> QueryResult:
    check_read_only(sql)
    con = connect_read_only(Path(root))
    timer = None
    timed_out = threading.Event()
    if timeout_s is not None:
        def interrupt() -> None:
            timed_out.set()
            con.interrupt()
        timer = threading.Timer(timeout_s, interrupt)
        timer.daemon = True
        timer.start()
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        if limit is None:
            rows = cursor.fetchall()
            truncated = False
        else:
            rows = cursor.fetchmany(limit + 1)
            truncated = len(rows) > limit
            rows = rows[:limit]
    except duckdb.Error as err:
        if timed_out.is_set():
            raise QueryError(f"query timed out after {timeout_s:g} s") from err
        raise QueryError(str(err)) from err
    finally:
        if timer is not None:
            timer.cancel()
        con.close()
    return QueryResult(columns, rows, truncated)


def run_query(root: Path | str, sql: str, *, limit: int | None = DEFAULT_LIMIT,
              timeout_s: float | None = DEFAULT_TIMEOUT_S) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only statement over the lake; (column names, rows), at most `limit` rows."""
    result = execute_query(root, sql, limit=limit, timeout_s=timeout_s)
    return result.columns, result.rows


# --- output formats -----------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A DuckDB value as JSON can hold it: times as ISO text, bytes as text, decimals as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def format_table(columns: list[str], rows: list[tuple[Any, ...]], max_width: int = 60) -> str:
    """Aligned text columns; long cells cut with an ellipsis."""
    cells = [[_cell(v).replace("\n", " ") for v in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[:max_width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def format_json(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A JSON array of objects, one per row."""
    return orjson.dumps([dict(zip(columns, (plain(v) for v in row), strict=True)) for row in rows],
                        option=orjson.OPT_INDENT_2).decode()


def format_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}
