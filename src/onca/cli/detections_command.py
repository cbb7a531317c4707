"""`onca detections install|list|enable|disable`: the detection content of a deployment."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from onca.cli.deploy_commands import deployed_context
from onca.deploy.components import detections as component
from onca.deploy.components.core import metadata_session
from onca.deploy.resources import DeployContext, ResourceFailure
from onca.detections import catalog

app = typer.Typer(name="detections", help="Detection content of a deployment: install packs, list, enable, disable.",
                  no_args_is_help=True, add_completion=False)
HomeOption = Annotated[Path | None, typer.Option("--home", help="Deployment home (default: $ONCA_HOME, ~/.onca).")]


@contextmanager
def _session(ctx: DeployContext) -> Iterator[Session]:
    try:
        with metadata_session(ctx) as session:
            yield session
    except ResourceFailure as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


@app.command("install")
def install(source: Annotated[str, typer.Argument(help="A panther-analysis-format directory, zip or file:// URL.")],
            home: HomeOption = None) -> None:
    """Validate a pack and add it to the deployment; workers pick it up without a restart."""
    with deployed_context(home) as ctx:
        root = component.content_dir(ctx.home)
        packs = root / "packs"
        packs.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            taken = {p.name for p in packs.iterdir()}
            info = component.stage_pack(source, staging, taken)
            target = packs / info["name"]
            (staging / info["name"]).rename(target)
        except ResourceFailure as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        problems = component.deployed_content(ctx.home).problems
        clashing = [p for p in problems if Path(p.path).is_relative_to(target.resolve()) or "Conflicting" in p.message]
        if clashing:
            shutil.rmtree(target)
            for problem in clashing:
                typer.echo(f"error: {problem.path}: {problem.message}", err=True)
            typer.echo("The pack was not installed: its detections clash with installed content.", err=True)
            raise typer.Exit(2)
        manifest_path = root / component.MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"sources": [], "packs": []}
        manifest["sources"].append(source)
        manifest["packs"].append(info)
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        typer.echo(f"Installed pack {info['name']!r}: {info['detections']} detection(s) in {target}")


@app.command("list")
def list_detections(home: HomeOption = None,
                    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """Every installed detection: id, type, log types, severity, and whether it runs."""
    with deployed_context(home) as ctx, _session(ctx) as session:
        summaries = catalog.list_detections(ctx.home, session)
    rows = [{"id": s.id, "type": s.analysis_type, "log_types": list(s.log_types), "severity": s.severity,
             "enabled": s.enabled, "disabled_by_operator": s.disabled_by_operator, "file": s.file}
            for s in summaries]
    if output_format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["id"]) for r in rows), default=10)
    for row in rows:
        state = "on" if row["enabled"] else ("off (operator)" if row["disabled_by_operator"] else "off")
        typer.echo(f"{row['id']:<{width}}  {row['type']:<16} {row['severity'] or '-':<9} {state:<15} "
                   f"{','.join(row['log_types'])}")
    typer.echo(f"{len(rows)} detection(s), {sum(r['enabled'] for r in rows)} running")


def _toggle(ids: list[str], home: Path | None, *, disable: bool) -> None:
    with deployed_context(home) as ctx, _session(ctx) as session:
        try:
            changed = catalog.set_enabled(ctx.home, session, ids, enabled=not disable)
        except catalog.UnknownDetection as err:
            typer.echo(f"error: {err} (see `onca detections list`)", err=True)
            raise typer.Exit(2) from err
    verb = "disabled" if disable else "enabled"
    typer.echo(f"{', '.join(ids)}: {verb}" if changed else f"{', '.join(ids)}: already {verb}")


@app.command("enable")
def enable(ids: Annotated[list[str], typer.Argument(help="Detection IDs.")], home: HomeOption = None) -> None:
    """Let these detections run again."""
    _toggle(ids, home, disable=False)


@app.command("disable")
def disable(ids: Annotated[list[str], typer.Argument(help="Detection IDs.")], home: HomeOption = None) -> None:
    """Stop these detections from running (their content stays installed)."""
    _toggle(ids, home, disable=True)
