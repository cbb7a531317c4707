"""`onca alerts`: list, show and update the alerts in the metadata database of a deployment home.

The database is the deployed stack's (its MetadataDatabaseUrl from the ledger), else <home>/metadata.db.
Exit codes: 0 done, 1 no such alert, 2 bad input or no usable metadata database.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from onca.alerts import queries
from onca.alerts.queries import ALERT_UPDATED, BadAlertQuery, alert_json
from onca.cli.deploy_commands import DEFAULT_STACK, HomeOption, resolve_home
from onca.core import audit
from onca.deploy.components.core import metadata_session
from onca.deploy.resources import DeployContext, ResourceFailure
from onca.deploy.stacks import home_context
from onca.store.db import make_engine, redact, sqlite_path

app = typer.Typer(name="alerts", help="List, show and update alerts.", no_args_is_help=True)

FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _context(home: Path) -> DeployContext:
    """The deployed stack's context (its database parameters), else the defaults of a fresh home."""
    return home_context(home) or DeployContext(home=home, stack_name=DEFAULT_STACK, params={}, version="",
                                               first_deploy=False)


@contextmanager
def _session(home: Path | None) -> Iterator[tuple[Path, Session]]:
    home_dir = resolve_home(home)
    ctx = _context(home_dir)
    path = sqlite_path(ctx.database_url)
    if path is not None and not path.exists():
        raise _fail(f"no metadata database at {path}: deploy first (`onca deploy`)")
    engine = make_engine(ctx.database_url, ctx.schema)
    try:
        has_alerts = inspect(engine).has_table("alerts")
    finally:
        engine.dispose()
    if not has_alerts:
        raise _fail(f"the metadata database {redact(ctx.database_url)} has no alerts table: "
                    "upgrade the deployment (`onca deploy`) to migrate it")
    try:
        with metadata_session(ctx) as session:
            yield home_dir, session
    except ResourceFailure as err:
        raise _fail(str(err)) from err


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment (a container without passwd entry)
        return "cli"


def _check_format(output_format: str) -> None:
    if output_format not in ("text", "json"):
        raise typer.BadParameter("must be 'text' or 'json'", param_hint="--format")


@app.command("list")
def list_alerts(
    status: Annotated[str | None, typer.Option("--status", help="OPEN, TRIAGED, CLOSED or RESOLVED.")] = None,
    severity: Annotated[str | None, typer.Option("--severity", help="INFO, LOW, MEDIUM, HIGH or CRITICAL.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only alerts of this rule id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most this many, newest first.")] = 50,
    pending: Annotated[bool, typer.Option("--pending", help="Also alerts still below their rule's Threshold.")]
    = False,
    output_format: FormatOption = "text",
    home: HomeOption = None,
) -> None:
    """List alerts, newest first."""
    _check_format(output_format)
    try:
        wanted = queries.AlertFilter.parse(statuses=[status or ""], severities=[severity or ""], rule_id=rule,
                                           include_pending=pending)
    except BadAlertQuery as err:
        raise typer.BadParameter(str(err)) from err
    with _session(home) as (_, session):
        alerts = queries.list_alerts(session, wanted, limit=limit, count=False).alerts
        if output_format == "json":
            typer.echo(json.dumps([alert_json(a) for a in alerts], indent=2))
            return
        if not alerts:
            typer.echo("no alerts")
            return
        typer.echo(f"{'ID':<32}  {'CREATED':<20}  {'SEVERITY':<8}  {'STATUS':<8}  {'EVENTS':>6}  RULE / TITLE")
        for alert in alerts:
            created = alert.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            marker = "" if alert.raised else " (below threshold)"
            typer.echo(f"{alert.id:<32}  {created:<20}  {alert.severity:<8}  {alert.status:<8}  "
                       f"{alert.event_count:>6}  {alert.rule_id}: {alert.title}{marker}")


@app.command("show")
def show(
    alert_id: Annotated[str, typer.Argument(metavar="ID", help="The alert id.")],
    output_format: FormatOption = "text",
    home: HomeOption = None,
) -> None:
    """Show one alert with its delivery state."""
    _check_format(output_format)
    with _session(home) as (_, session):
        alert = queries.get_alert(session, alert_id)
        if alert is None:
            raise _fail(f"no alert {alert_id}", 1)
        data = queries.alert_detail(session, alert)
    if output_format == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if key in ("outbox", "deliveries"):
            continue
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        typer.echo(f"{key:<17} {'' if shown is None else shown}")
    for row in data["outbox"]:
        typer.echo(f"outbox            {row['destination']}: {row['state']} after {row['attempts']} attempt(s)"
                   + (f" ({row['last_error']})" if row["last_error"] else ""))
    for row in data["deliveries"]:
        code = f" HTTP {row['status_code']}" if row["status_code"] is not None else ""
        typer.echo(f"delivery          {row['at']} {row['destination']} #{row['attempt']}: {row['outcome']}{code} "
                   f"{row['message']}".rstrip())


@app.command("update")
def update(
    alert_id: Annotated[str, typer.Argument(metavar="ID", help="The alert id.")],
    status: Annotated[str | None, typer.Option("--status", help="OPEN, TRIAGED, CLOSED or RESOLVED.")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Email of the assignee; '' unassigns.")]
    = None,
    home: HomeOption = None,
) -> None:
    """Change an alert's status and/or assignee (recorded in the audit log)."""
    if status is None and assignee is None:
        raise _fail("nothing to update: give --status and/or --assignee")
    actor = _actor()
    with _session(home) as (home_dir, session):
        try:
            changed = queries.update_alerts(session, [alert_id], status=status, assignee=assignee, actor=actor)
        except BadAlertQuery as err:
            raise typer.BadParameter(str(err)) from err
        if not changed:
            raise _fail(f"no alert {alert_id}", 1)
        (change,) = changed
        if change.changes:
            audit.record(home_dir, actor, ALERT_UPDATED, alert_id, change.changes, session=session)
        summary = f"status {change.alert.status}, assignee {change.alert.assignee or 'none'}"
    typer.echo(f"alert {alert_id}: {summary}" if change.changes else f"alert {alert_id} unchanged: {summary}")
