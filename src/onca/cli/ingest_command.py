"""`onca ingest PATH...`: logs from files, directories or stdin into the lake, with a summary per log type."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from onca.cli.deploy_commands import resolve_home
from onca.cli.lake_commands import resolve_lake
from onca.logs.model import Source
from onca.logs.pipeline import IngestError, render_summary
from onca.logs.pipeline import ingest as run_ingest
from onca.logs.registry import SchemaRegistry
from onca.logs.schema_model import SchemaError


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, directories or - (stdin); plain, gzip or zip.")],
    log_types: Annotated[list[str] | None, typer.Option(
        "--log-type", help="Candidate log type (repeatable). Default: every known schema.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Source name recorded in p_source_label.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Ingest files whose content was already ingested.")] = False,
    lake: Annotated[Path | None, typer.Option("--lake", help="Lake directory (default: <home>/lake).")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="Deployment home (default: $ONCA_HOME, ~/.onca).")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> None:
    """Parse, normalise and store logs; what no schema accepts goes to the quarantine table with the reasons."""
    custom = resolve_home(home) / "schemas"
    try:
        registry = SchemaRegistry.load([custom] if custom.is_dir() else [])
    except SchemaError as err:
        typer.echo(f"error: invalid schema: {err}", err=True)
        raise typer.Exit(2) from err
    label = source or "onca ingest"
    origin = Source(id=f"cli:{label}", label=label, log_types=list(log_types or []))
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=quiet or not console.is_terminal) as progress:
        task = progress.add_task("reading", total=None)

        def advance(records: int) -> None:
            progress.update(task, description=f"{records:,} records read")

        try:
            summary = run_ingest(paths, lake=resolve_lake(lake, home), registry=registry,
                                 log_types=log_types or [], source=origin, force=force, progress=advance)
        except IngestError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
    typer.echo(render_summary(summary))
    raise typer.Exit(0 if summary.conserved else 1)
