"""Lake commands: `onca query`, `onca search`, and `onca lake tables|compact|retention`.

The lake is --lake DIR, else <home>/lake with the home of the deploy commands (--home, $ONCA_HOME, ~/.onca).
Exit codes: 0 done, 1 the query failed or timed out, 2 bad input.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from onca.cli.deploy_commands import resolve_home
from onca.deploy.stacks import home_context
from onca.lake.catalog import Catalog
from onca.lake.compaction import compact_lake
from onca.lake.query import DEFAULT_LIMIT, FORMATTERS, QueryError, execute_query
from onca.lake.retention import apply_retention
from onca.lake.search import parse_since
from onca.lake.search import search as search_lake

LakeOption = Annotated[Path | None, typer.Option("--lake", help="Lake directory (default: <home>/lake).",
                                                 show_default=False)]
HomeOption = Annotated[Path | None, typer.Option(
    "--home", help="Deployment home (default: $ONCA_HOME, else ~/.onca).", show_default=False)]
FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv.")]



def resolve_lake(lake: Path | None, home: Path | None) -> Path:
    """--lake, else the deployed stack's LakeLocation, else <home>/lake."""
    if lake is not None:
        return lake.expanduser().resolve()
    home_dir = resolve_home(home)
    ctx = home_context(home_dir)
    return ctx.lake_dir if ctx is not None else home_dir / "lake"


def _since(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--since") from err


def _check_format(output_format: str) -> None:
    if output_format not in FORMATTERS:
        raise typer.BadParameter("must be 'table', 'json' or 'csv'", param_hint="--format")


def query(
    sql: Annotated[str, typer.Argument(help="One read-only statement: SELECT, WITH, DESCRIBE, SHOW, EXPLAIN.")],
    output_format: FormatOption = "table",
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = DEFAULT_LIMIT,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before the query is stopped.")] = 60.0,
    lake: LakeOption = None,
    home: HomeOption = None,
) -> None:
    """Run SQL over the lake: one view per table (aws_cloudtrail, ...) and `quarantine`."""
    _check_format(output_format)
    try:
        result = execute_query(resolve_lake(lake, home), sql, limit=limit, timeout_s=timeout)
    except QueryError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(FORMATTERS[output_format](result.columns, result.rows).rstrip("\n"))
    if result.truncated:
        typer.echo(f"(first {limit} rows; raise --limit for more)", err=True)


def search(
    ip: Annotated[str | None, typer.Option("--ip", help="An IP address.")] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="A domain name.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="A user name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="An email address.")] = None,
    hash_: Annotated[str | None, typer.Option("--hash", help="An MD5, SHA1 or SHA256 hash.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only events since: 24h, 7d, or an ISO time.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events (newest first).")] = 1000,
    output_format: FormatOption = "table",
    lake: LakeOption = None,
    home: HomeOption = None,
) -> None:
    """Find an indicator in every table (through the p_any_* columns), newest first."""
    _check_format(output_format)
    given = [(kind, value) for kind, value in
             (("ip", ip), ("domain", domain), ("user", user), ("email", email), ("hash", hash_)) if value]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --ip, --domain, --user, --email, --hash")
    kind, value = given[0]
    moment = _since(since) if since else None
    hits = search_lake(resolve_lake(lake, home), kind, value, moment, limit=limit)
    columns = ["table", "p_event_time", "p_log_type", "p_row_id", "summary"]
    rows = [(h.table, h.p_event_time, h.p_log_type, h.p_row_id, h.summary) for h in hits]
    typer.echo(FORMATTERS[output_format](columns, rows).rstrip("\n"))
    if output_format == "table":
        typer.echo(f"{len(hits)} event(s)" + (" (limit reached)" if len(hits) == limit else ""), err=True)


lake_app = typer.Typer(help="Lake maintenance: tables, compaction, retention.", no_args_is_help=True)


@lake_app.command("tables")
def tables(output_format: FormatOption = "table", lake: LakeOption = None, home: HomeOption = None) -> None:
    """Every table with its row and file counts."""
    _check_format(output_format)
    infos = Catalog(resolve_lake(lake, home)).tables()
    typer.echo(FORMATTERS[output_format](["table", "rows", "files"],
                                         [(i.name, i.rows, i.files) for i in infos]).rstrip("\n"))


@lake_app.command("compact")
def compact(
    table: Annotated[list[str] | None, typer.Option("--table", help="Only this table (repeatable).")] = None,
    lake: LakeOption = None,
    home: HomeOption = None,
) -> None:
    """Merge the small files of every partition into one."""
    merged = compact_lake(resolve_lake(lake, home), tables=table or None)
    typer.echo(f"compacted {merged} partition(s)")


@lake_app.command("retention")
def retention(
    keep: Annotated[list[str], typer.Option("--keep", help="TABLE=DAYS (repeatable); other tables are kept.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted.")] = False,
    lake: LakeOption = None,
    home: HomeOption = None,
) -> None:
    """Delete partitions older than each table's retention (days)."""
    days: dict[str, int | None] = {}
    for item in keep:
        name, _, count = item.partition("=")
        if not name or not count.strip().isdigit():
            raise typer.BadParameter(f"{item!r}: use TABLE=DAYS", param_hint="--keep")
        days[name.strip()] = int(count)
    deleted = apply_retention(resolve_lake(lake, home), days, dry_run=dry_run)
    for d in deleted:
        typer.echo(f"{'would delete' if dry_run else 'deleted'} {d.table}/{d.partition} ({d.files} file(s))")
    typer.echo(orjson.dumps({"partitions": len(deleted), "dry_run": dry_run}).decode(), err=True)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.command("search")(search)
    app.add_typer(lake_app, name="lake")
