"""Lifecycle commands: deploy, preflight, status, events, diagnose, parameters, backup, restore, teardown.

Exit codes: 0 done (or nothing to do), 1 the operation failed and was rolled back, 2 bad input or a
failed preflight (nothing was touched), 3 a rollback failed and needs `--continue-rollback`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from onca.core import error_reporting
from onca.deploy import diagnose as diag
from onca.deploy.backup import BackupError, create_backup, list_backups, restore_backup
from onca.deploy.deployer_role import deployer_role_sql
from onca.deploy.ledger import LockHeld
from onca.deploy.parameters import PARAMETERS, ParameterError, display, parse_overrides, read_config
from onca.deploy.preflight import PreflightFailed, checks_json, render_checks
from onca.deploy.releases import CatalogueError, UpgradePathError, load_catalogue, plan_json, render_plan
from onca.deploy.reports import DEFAULT_STACK as DEFAULT_STACK
from onca.deploy.reports import root_stack
from onca.deploy.resources import DeployContext
from onca.deploy.stacks import STUCK_STATES, DeployError, Deployment, Outcome, home_context
from onca.deploy.upgrade import UpgradeBlocked, make_plan
from onca.deploy.upgrade import upgrade as upgrade_stack

HomeOption = Annotated[Path | None, typer.Option(
    "--home", help="Deployment home (default: $ONCA_HOME, else ~/.onca).", show_default=False)]
StackOption = Annotated[str | None, typer.Option(
    "--stack-name", help="Root stack name (default: onca.yml's stack_name, the deployed stack, or onca-main).")]
FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]


def resolve_home(home: Path | None) -> Path:
    if home is not None:
        return home.expanduser().resolve()
    env = os.environ.get("ONCA_HOME")
    return Path(env).expanduser().resolve() if env else Path.home() / ".onca"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _check_format(output_format: str) -> None:
    if output_format not in ("text", "json"):
        raise typer.BadParameter("must be 'text' or 'json'", param_hint="--format")


@contextmanager
def _deployment(home: Path | None) -> Iterator[Deployment]:
    deployment = Deployment(resolve_home(home))
    error_reporting.configure(deployment.home)
    try:
        yield deployment
    except LockHeld as err:
        raise _fail(f"{err}. Wait for it to finish; if that process is gone, run the command again to recover.") \
            from err
    except DeployError as err:
        raise _fail(str(err)) from err
    finally:
        deployment.close()


@contextmanager
def deployed_context(home: Path | None) -> Iterator[DeployContext]:
    """The context of the deployment in the home, for commands that act on a deployed stack."""
    home_dir = resolve_home(home)
    ctx = home_context(home_dir)
    if ctx is None:
        typer.echo(f"error: nothing is deployed in {home_dir}; run `onca deploy` first", err=True)
        raise typer.Exit(2)
    yield ctx


def _print_outcome(outcome: Outcome) -> int:
    for note in outcome.recovered:
        typer.echo(f"recovered: {note}")
    for warning in outcome.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if outcome.status == "NO_CHANGES":
        typer.echo(f"Stack {outcome.root}: no changes.")
        return 0
    typer.echo(f"Stack {outcome.root}: {outcome.status}")
    for notice in outcome.notices:
        typer.echo(notice)
    if outcome.error:
        typer.echo(f"error: {outcome.error}", err=True)
        typer.echo("Run `onca diagnose` for the first failure and what to do.", err=True)
    if outcome.status in STUCK_STATES:
        return 3
    return 0 if outcome.ok else 1


def _progress(stack: str, resource: str | None, status: str, reason: str) -> None:
    target = f"{stack}/{resource}" if resource else stack
    typer.echo(f"  {status:<28} {target}" + (f"  {reason}" if reason and "FAILED" in status else ""))


def deploy(
    home: HomeOption = None,
    stack_name: StackOption = None,
    params: Annotated[list[str] | None, typer.Option("--param", help="Key=Value; overrides onca.yml. Repeatable.")]
    = None,
    continue_rollback: Annotated[bool, typer.Option(
        "--continue-rollback", help="Finish a rollback that failed (UPDATE_ROLLBACK_FAILED / ROLLBACK_FAILED).")]
    = False,
    skip: Annotated[list[str] | None, typer.Option(
        "--skip", help="With --continue-rollback: leave COMPONENT/RESOURCE as it is. Repeatable.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not print each event as it happens.")] = False,
) -> None:
    """Create the deployment, or update it to new parameters. Runs preflight first."""
    with _deployment(home) as deployment:
        try:
            config = read_config(deployment.home)
            requested = {**config.parameters, **parse_overrides(params or [])}
        except ParameterError as err:
            raise _fail(str(err)) from err
        root = root_stack(deployment, stack_name, config.stack_name)
        if not quiet:
            deployment.ledger.listener = _progress
        if continue_rollback:
            outcome = deployment.continue_rollback(root, skip or [])
            _print_outcome(outcome)
            raise typer.Exit(0 if outcome.status in ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE") else 3)
        else:
            if skip:
                raise _fail("--skip only goes with --continue-rollback")
            try:
                outcome = deployment.deploy(root, requested)
            except PreflightFailed as err:
                typer.echo(render_checks(err.checks), err=True)
                raise _fail("preflight failed; nothing was changed") from err
        raise typer.Exit(_print_outcome(outcome))


def preflight(home: HomeOption = None, stack_name: StackOption = None,
              params: Annotated[list[str] | None, typer.Option("--param", help="Key=Value. Repeatable.")] = None,
              output_format: FormatOption = "text") -> None:
    """Run every deploy check without changing anything."""
    _check_format(output_format)
    with _deployment(home) as deployment:
        try:
            config = read_config(deployment.home)
            requested = {**config.parameters, **parse_overrides(params or [])}
        except ParameterError as err:
            raise _fail(str(err)) from err
        root = root_stack(deployment, stack_name, config.stack_name)
        record = deployment.ledger.stack(root)
        first = record is None or record.status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE")
        try:
            _, _, checks = deployment.check(root, requested, None if first else record.parameters if record else None,
                                            first=first, version=deployment.version)
            ok = True
        except PreflightFailed as err:
            checks, ok = err.checks, False
        if output_format == "json":
            typer.echo(json.dumps({"stack": root, "ok": ok, "checks": checks_json(checks)}, indent=2))
        else:
            typer.echo(render_checks(checks))
        raise typer.Exit(0 if ok else 2)


def status(home: HomeOption = None, stack_name: StackOption = None, output_format: FormatOption = "text") -> None:
    """The root stack, its components and resources, and any operation in progress."""
    _check_format(output_format)
    with _deployment(home) as deployment:
        data = diag.status_json(deployment.ledger, root_stack(deployment, stack_name))
        typer.echo(json.dumps(data, indent=2) if output_format == "json" else diag.render_status(data))


def events(home: HomeOption = None, stack_name: StackOption = None,
           stack: Annotated[str | None, typer.Option("--stack", help="Only this nested stack (e.g. onca-main-core).")]
           = None,
           failed_only: Annotated[bool, typer.Option("--failed-only", help="Only *_FAILED events.")] = False,
           operation: Annotated[int | None, typer.Option("--operation", help="Only this operation's events.")] = None,
           output_format: FormatOption = "text") -> None:
    """Every event of the deployment, rolled-back and deleted stacks included, oldest first."""
    _check_format(output_format)
    with _deployment(home) as deployment:
        rows = diag.events_json(deployment.ledger, root_stack(deployment, stack_name), stack=stack,
                                failed_only=failed_only, operation=operation)
        typer.echo(json.dumps(rows, indent=2) if output_format == "json" else diag.render_events(rows))


def diagnose(home: HomeOption = None, stack_name: StackOption = None, output_format: FormatOption = "text") -> None:
    """Name the first failed component and resource of the last failed operation, and its first error."""
    _check_format(output_format)
    with _deployment(home) as deployment:
        result = diag.diagnose(deployment.ledger, root_stack(deployment, stack_name))
        typer.echo(json.dumps(result.to_json(), indent=2) if output_format == "json"
                   else diag.render_diagnosis(result))


def parameters(home: HomeOption = None, stack_name: StackOption = None, output_format: FormatOption = "text") -> None:
    """Every parameter with its type, default, current value and description."""
    _check_format(output_format)
    with _deployment(home) as deployment:
        record = deployment.ledger.stack(root_stack(deployment, stack_name))
        current: dict[str, Any] = (record.parameters or {}) if record else {}
        rows = [{"name": p.name, "type": p.kind, "required": p.required, "default": display(p.name, p.default),
                 "current": display(p.name, current[p.name]) if p.name in current else None,
                 "description": p.description} for p in PARAMETERS]
        if output_format == "json":
            typer.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            current_text = "(not deployed)" if row["current"] is None else row["current"] or "(blank)"
            typer.echo(f"{row['name']}  [{row['type']}{', required' if row['required'] else ''}]")
            typer.echo(f"    default: {row['default'] or '(blank)'}    current: {current_text}")
            typer.echo(f"    {row['description']}")


def backup(home: HomeOption = None, stack_name: StackOption = None,
           list_only: Annotated[bool, typer.Option("--list", help="List existing backups.")] = False) -> None:
    """Back up the metadata database, configuration and ledger, tagged with the version."""
    with _deployment(home) as deployment:
        if list_only:
            for info in list_backups(deployment.home):
                typer.echo(f"{info.path}  stack {info.stack}  version {info.version}  {info.created}  {info.label}")
            return
        try:
            info = create_backup(deployment, root_stack(deployment, stack_name))
        except BackupError as err:
            raise _fail(str(err), 1) from err
        typer.echo(f"Backup written: {info.path}")


def restore(path: Annotated[Path, typer.Argument(help="A backup directory (see `onca backup --list`).")],
            home: HomeOption = None) -> None:
    """Restore a backup taken with this same version of Onca."""
    with _deployment(home) as deployment:
        try:
            info = restore_backup(deployment, path.resolve())
        except BackupError as err:
            raise _fail(str(err), 1) from err
        typer.echo(f"Restored {info.path.name} into stack {info.stack} (version {info.version}). "
                   "Run `onca deploy` to reconcile resources with the restored parameters.")


def teardown(home: HomeOption = None, stack_name: StackOption = None,
             delete_data: Annotated[bool, typer.Option(
                 "--delete-data", help="Also delete the lake and the backups (otherwise they are kept).")] = False,
             yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False) -> None:
    """Delete every resource of the deployment in reverse order; the lake and backups stay unless --delete-data."""
    with _deployment(home) as deployment:
        root = root_stack(deployment, stack_name)
        record = deployment.ledger.stack(root)
        if record is None or record.status == "DELETE_COMPLETE":
            raise _fail(f"stack {root} is not deployed in {deployment.home}")
        what = ("everything, INCLUDING THE LAKE AND BACKUPS" if delete_data
                else "all resources (the lake and backups stay)")
        if not yes and not typer.confirm(f"Tear down stack {root}: {what}?", default=False):
            raise _fail("cancelled; nothing was changed", 1)
        deployment.ledger.listener = _progress
        lake = deployment.context(root, record.parameters or {}, first=False).lake_dir
        outcome = deployment.teardown(root, delete_data=delete_data)
        if outcome.ok and delete_data:
            shutil.rmtree(lake, ignore_errors=True)
            shutil.rmtree(deployment.home / "backups", ignore_errors=True)
        raise typer.Exit(_print_outcome(outcome))


def upgrade(
    home: HomeOption = None,
    stack_name: StackOption = None,
    plan_only: Annotated[bool, typer.Option("--plan", help="Print the path and parameter changes; change nothing.")]
    = False,
    to: Annotated[str | None, typer.Option("--to", help="Target version X.Y.Z or X.Y (default: the installed one).")]
    = None,
    params: Annotated[list[str] | None, typer.Option(
        "--param", help="Key=Value for parameters the release notes require. Repeatable.")] = None,
    catalogue_file: Annotated[Path | None, typer.Option(
        "--catalogue", help="Release catalogue to plan with (drills); default: the one shipped with Onca.",
        hidden=True)] = None,
    output_format: FormatOption = "text",
) -> None:
    """Upgrade through the latest patch of every minor in between: backup first, hop by hop, rollback on failure."""
    _check_format(output_format)
    try:
        catalogue = load_catalogue(catalogue_file)
    except (CatalogueError, OSError) as err:
        raise _fail(str(err)) from err
    home_dir = resolve_home(home)
    deployment = Deployment(home_dir, version=str(catalogue.current))
    try:
        config = read_config(home_dir)
        given = {**config.parameters, **parse_overrides(params or [])}
        root = root_stack(deployment, stack_name, config.stack_name)
        if plan_only:
            plan = make_plan(deployment, root, catalogue, target=to, given=given)
            typer.echo(json.dumps(plan_json(plan), indent=2) if output_format == "json" else render_plan(plan))
            raise typer.Exit(0 if plan.ok else 2)
        deployment.ledger.listener = _progress
        result = upgrade_stack(deployment, root, catalogue, target=to, given=given)
    except UpgradeBlocked as err:
        if err.checks:
            typer.echo(render_checks(err.checks), err=True)
        elif err.plan is not None:
            typer.echo(render_plan(err.plan), err=True)
        raise _fail(str(err)) from err
    except (ParameterError, UpgradePathError, BackupError, DeployError, LockHeld) as err:
        raise _fail(str(err)) from err
    finally:
        deployment.close()
    if result.status == "NO_UPGRADE":
        typer.echo(f"Stack {root} already runs {result.from_version}: nothing to upgrade.")
        raise typer.Exit(0)
    if result.backup is not None:
        typer.echo(f"Backup before the upgrade: {result.backup.path}")
    for notice in result.notices:
        typer.echo(notice)
    if result.status == "UPGRADE_COMPLETE":
        typer.echo(f"Stack {root} upgraded {result.from_version} -> {result.to_version} "
                   f"(through {', '.join(result.hops)}).")
        raise typer.Exit(0)
    typer.echo(f"error: {result.error}", err=True)
    typer.echo(f"The upgrade was rolled back: stack {root} is back at {result.from_version} with its database "
               "and configuration from the pre-upgrade backup. Run `onca diagnose` for the cause.", err=True)
    raise typer.Exit(1)


def deployer_role(home: HomeOption = None, stack_name: StackOption = None,
                  role: Annotated[str | None, typer.Option("--role", help="Role name (default <stack>-deployer).")]
                  = None) -> None:
    """Print the SQL that creates or upgrades the PostgreSQL deployer role this release needs."""
    with _deployment(home) as deployment:
        config = read_config(deployment.home)
        root = root_stack(deployment, stack_name, config.stack_name)
        ctx = deployment.context(root, {}, first=False)
        typer.echo(deployer_role_sql(root, ctx.schema, role_name=role))


def register(app: typer.Typer) -> None:
    for command in (deploy, preflight, status, events, diagnose, parameters, backup, restore, teardown, upgrade,
                    deployer_role):
        app.command(command.__name__.replace("_", "-"))(command)
