"""The `onca` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from onca import __version__
from onca.cli import (
    alerts_command,
    deploy_commands,
    destinations_command,
    detections_command,
    ingest_command,
    lake_commands,
    schemas_command,
    serve_command,
    test_command,
)

app = typer.Typer(
    name="onca",
    help="Onca: self-hosted security monitoring with detections as Python code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"onca {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Onca: self-hosted security monitoring with detections as Python code."""


app.command("test")(test_command.test)
deploy_commands.register(app)
app.add_typer(schemas_command.app, name="schemas")
app.command("ingest")(ingest_command.ingest)
lake_commands.register(app)
app.add_typer(detections_command.app, name="detections")
app.add_typer(alerts_command.app, name="alerts")
app.add_typer(destinations_command.app, name="destinations")
app.command("serve")(serve_command.serve)
app.command("up")(serve_command.up)
app.add_typer(serve_command.sources_app, name="sources")


def main() -> None:
    sys.exit(app())
