"""`onca alerts`: list, show and update the alerts in the metadata database of a deployment home.

The database is the deployed stack's (its MetadataDatabaseUrl from the ledger), else <home>/metadata.db.
Exit codes: 0 done, 1 no such alert, 2 bad input or no usable metadata database.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from onca.cli.deploy_commands import DEFAULT_STACK, HomeOption, resolve_home
from onca.core import audit
from onca.deploy.components.core import metadata_session
from onca.deploy.resources import DeployContext, ResourceFailure
from onca.deploy.stacks import home_context
from onca.store.db import make_engine, redact, sqlite_path
from onca.store.models import ALERT_STATUSES, SEVERITIES, Alert, AlertUnique, Delivery, Outbox, utcnow

app = typer.Typer(name="alerts", help="List, show and update alerts.", no_args_is_help=True)

ALERT_UPDATED = "alert.updated"  # audit action; details: the changed fields as [old, new]
FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


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


def _choice(value: str | None, allowed: tuple[str, ...], hint: str) -> str | None:
    if value is None:
        return None
    upper = value.strip().upper()
    if upper not in allowed:
        raise typer.BadParameter(f"must be one of {', '.join(allowed)}", param_hint=hint)
    return upper


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id, "type": alert.kind, "rule_id": alert.rule_id, "title": alert.title,
        "severity": alert.severity, "status": alert.status, "assignee": alert.assignee, "dedup": alert.dedup,
        "event_count": alert.event_count, "unique_count": alert.unique_count, "log_types": alert.log_types,
        "first_event_time": _time(alert.first_event_time), "last_event_time": _time(alert.last_event_time),
        "window_start": _time(alert.window_start), "window_end": _time(alert.window_end), "raised": alert.raised,
        "raised_at": _time(alert.raised_at), "created_at": _time(alert.created_at),
        "updated_at": _time(alert.updated_at), "description": alert.description, "reference": alert.reference,
        "runbook": alert.runbook, "alert_context": alert.alert_context, "destinations": alert.destinations,
        "tags": alert.tags, "reports": alert.reports,
    }


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
    wanted_status = _choice(status, ALERT_STATUSES, "--status")
    wanted_severity = _choice(severity, SEVERITIES, "--severity")
    query = select(Alert)
    if not pending:
        query = query.where(Alert.raised.is_(True))
    if wanted_status:
        query = query.where(Alert.status == wanted_status)
    if wanted_severity:
        query = query.where(Alert.severity == wanted_severity)
    if rule:
        query = query.where(Alert.rule_id == rule)
    query = query.order_by(Alert.created_at.desc(), Alert.id).limit(limit)
    with _session(home) as (_, session):
        alerts = list(session.scalars(query))
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
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise _fail(f"no alert {alert_id}", 1)
        data = alert_json(alert)
        data["unique_values"] = session.scalar(select(func.count()).select_from(AlertUnique)
                                               .where(AlertUnique.alert_id == alert.id))
        data["outbox"] = [{"destination": o.destination, "state": o.state, "attempts": o.attempts,
                           "next_attempt_at": _time(o.next_attempt_at), "last_error": o.last_error}
                          for o in session.scalars(select(Outbox).where(Outbox.alert_id == alert.id)
                                                   .order_by(Outbox.destination))]
        data["deliveries"] = [{"destination": d.destination, "attempt": d.attempt, "at": _time(d.at),
                               "outcome": d.outcome, "status_code": d.status_code, "message": d.message}
                              for d in session.scalars(select(Delivery).where(Delivery.alert_id == alert.id)
                                                       .order_by(Delivery.at, Delivery.id))]
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
    new_status = _choice(status, ALERT_STATUSES, "--status")
    new_assignee: str | None = None
    if assignee is not None:
        new_assignee = assignee.strip().lower()
        if new_assignee and (len(new_assignee) > 320 or not _EMAIL.match(new_assignee)):
            raise typer.BadParameter("must be an email address, or '' to unassign", param_hint="--assignee")
    if new_status is None and assignee is None:
        raise _fail("nothing to update: give --status and/or --assignee")
    with _session(home) as (home_dir, session):
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise _fail(f"no alert {alert_id}", 1)
        changes: dict[str, list[str | None]] = {}
        if new_status is not None and new_status != alert.status:
            changes["status"] = [alert.status, new_status]
            alert.status = new_status
        if assignee is not None and (new_assignee or None) != alert.assignee:
            changes["assignee"] = [alert.assignee, new_assignee or None]
            alert.assignee = new_assignee or None
        if changes:
            alert.updated_at = utcnow()
            audit.record(home_dir, _actor(), ALERT_UPDATED, alert.id, changes, session=session)
        summary = f"status {alert.status}, assignee {alert.assignee or 'none'}"
    typer.echo(f"alert {alert_id}: {summary}" if changes else f"alert {alert_id} unchanged: {summary}")
