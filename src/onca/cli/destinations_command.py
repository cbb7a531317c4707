"""`onca destinations`: add, list, remove and test alert destinations.

Configs are validated per kind before anything is stored, stored encrypted with the deployment's
keyring, and listed with every secret masked. Exit codes: 0 done, 1 a test delivery failed, 2 bad input.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from onca.cli.deploy_commands import HomeOption, resolve_home
from onca.core import audit
from onca.deploy.resources import ResourceFailure
from onca.deploy.stacks import home_context
from onca.destinations import registry
from onca.destinations import store as destinations
from onca.destinations.base import ConfigError
from onca.destinations.secrets import SecretError, keyring
from onca.store.db import StoreError, make_engine, session_scope, sqlite_path

app = typer.Typer(help="Alert destinations: Slack, Teams, PagerDuty, Opsgenie, Jira, GitHub, webhook, email, "
                       "SNS, SQS.", no_args_is_help=True)

FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def database(home: Path) -> tuple[str, str | None]:
    """The deployed stack's metadata database URL and schema (SQLite in the home unless configured)."""
    ctx = home_context(home)
    if ctx is None:
        return f"sqlite:///{home / 'metadata.db'}", None
    return ctx.database_url, ctx.schema


@contextmanager
def _open(home_option: Path | None) -> Iterator[tuple[Path, Session, Fernet]]:
    home = resolve_home(home_option)
    url, schema = database(home)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise _fail(f"no metadata database at {path}: run `onca deploy` first")
    try:
        fernet = keyring(home)
    except ResourceFailure as err:
        raise _fail(str(err)) from err
    try:
        engine = make_engine(url, schema)
    except StoreError as err:
        raise _fail(str(err)) from err
    try:
        with session_scope(engine) as session:
            yield home, session, fernet
    finally:
        engine.dispose()


def parse_config(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; a key given twice becomes a list (e.g. two `to=` recipients)."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        if key in config:
            previous = config[key]
            config[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            config[key] = value
    return config


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name (rules' OutputIds and destinations() use it).")],
    kind: Annotated[str, typer.Option("--kind", help=f"One of: {', '.join(registry.KINDS)}.")],
    config: Annotated[list[str] | None, typer.Option("--config", help="KEY=VALUE setting of the kind. Repeatable.")]
    = None,
    severity: Annotated[list[str] | None, typer.Option(
        "--severity", help="Only alerts of these severities (repeatable or comma-separated; default all).")] = None,
    log_type: Annotated[list[str] | None, typer.Option(
        "--log-type", help="Only alerts from these log types (repeatable or comma-separated; default all).")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Store it without sending to it yet.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing destination of this name.")] = False,
    home: HomeOption = None,
) -> None:
    """Add a destination (its configuration is checked, then stored encrypted)."""
    raw = parse_config(config or [])
    with _open(home) as (home_dir, session, fernet):
        try:
            row = destinations.add(session, fernet, name, kind, raw, severities=severity or [],
                                   log_types=log_type or [], enabled=not disabled, replace=replace)
        except ConfigError as err:
            for field, problem in err.problems.items():
                typer.echo(f"error: {field}: {problem}", err=True)
            raise typer.Exit(2) from err
        except destinations.DestinationError as err:
            raise _fail(str(err)) from err
        audit.record(home_dir, _actor(), "destination.updated" if replace else "destination.created", name,
                     {"kind": row.kind, "severities": row.severities, "log_types": row.log_types}, session=session)
        typer.echo(f"Destination {name} ({row.kind}) saved.")


@app.command("list")
def list_(output_format: FormatOption = "text", home: HomeOption = None) -> None:
    """List destinations; secrets are masked."""
    if output_format not in ("text", "json"):
        raise typer.BadParameter("must be 'text' or 'json'", param_hint="--format")
    with _open(home) as (_, session, fernet):
        found = destinations.views(session, fernet)
    if output_format == "json":
        typer.echo(json.dumps([view.as_json() for view in found], indent=2))
        return
    if not found:
        typer.echo("No destinations. Add one with `onca destinations add NAME --kind KIND --config KEY=VALUE`.")
        return
    for view in found:
        state = "" if view.enabled else " (disabled)"
        typer.echo(f"{view.name}  {view.kind}{state}")
        typer.echo(f"  severities: {', '.join(view.severities) or 'all'}")
        typer.echo(f"  log types:  {', '.join(view.log_types) or 'all'}")
        for key, value in view.config.items():
            if value not in ("", [], {}, None):
                typer.echo(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}")


@app.command("remove")
def remove(name: Annotated[str, typer.Argument()], home: HomeOption = None) -> None:
    """Remove a destination."""
    with _open(home) as (home_dir, session, _):
        try:
            destinations.remove(session, name)
        except destinations.DestinationError as err:
            raise _fail(str(err)) from err
        audit.record(home_dir, _actor(), "destination.removed", name, {}, session=session)
    typer.echo(f"Destination {name} removed.")


@app.command("test")
def test(
    name: Annotated[str, typer.Argument()],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the service.")] = 10.0,
    home: HomeOption = None,
) -> None:
    """Send a test alert to a destination now and print what the service answered."""
    with _open(home) as (_, session, fernet):
        try:
            result = destinations.send_test(session, fernet, name, timeout)
        except destinations.DestinationError as err:
            raise _fail(str(err)) from err
        except (ConfigError, SecretError) as err:
            raise _fail(f"{name}: {err}") from err
    if result.success:
        typer.echo(f"OK: {name}: {result.message}")
        return
    kind = "permanent failure" if result.permanent else "transient failure (the outbox would retry)"
    typer.echo(f"FAILED: {name}: {kind}: {result.message}", err=True)
    raise typer.Exit(1)
