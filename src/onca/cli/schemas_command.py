"""`onca schemas`: list the log types Onca knows and run schema tests (`onca schemas test [PATH]`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from onca.logs.registry import SchemaRegistry, managed_schema_dir
from onca.logs.schema_model import SchemaError
from onca.logs.schema_tests import run_schema_tests, to_json, write_text

app = typer.Typer(name="schemas", help="Log schemas: list them, test them against sample logs.",
                  no_args_is_help=True, add_completion=False)


@app.command("test")
def test(
    path: Annotated[Path | None, typer.Argument(
        help="A directory of schemas and their *_tests.yml files, or one test file. Default: Onca's managed "
             "schemas.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    color: Annotated[bool | None, typer.Option(
        "--color/--no-color", help="Colour PASS/FAIL (default: when printing to a terminal).")] = None,
) -> None:
    """Run every schema's sample logs and compare the normalised rows with the expected ones."""
    if output_format not in ("text", "json"):
        raise typer.BadParameter("must be 'text' or 'json'", param_hint="--format")
    target = path if path is not None else managed_schema_dir()
    if not target.exists():
        typer.echo(f"error: {target} does not exist", err=True)
        raise typer.Exit(2)
    run = run_schema_tests(target)
    if output_format == "json":
        sys.stdout.write(json.dumps(to_json(run), indent=2, ensure_ascii=False) + "\n")
    else:
        write_text(run, sys.stdout, color=sys.stdout.isatty() if color is None else color)
    raise typer.Exit(0 if run.ok else 1)


@app.command("list")
def list_schemas(
    path: Annotated[list[Path] | None, typer.Argument(help="Directories or files of Custom.* schemas to add.")] = None,
) -> None:
    """List the log types: name, table, parser and field count."""
    try:
        registry = SchemaRegistry.load(path or [])
    except SchemaError as err:
        for line in err.errors:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1) from None
    width = max((len(schema.name) for schema in registry), default=8)
    typer.echo(f"{'LOG TYPE':<{width}}  {'TABLE':<{width}}  {'PARSER':<26}  FIELDS  KIND")
    for schema in registry:
        kind = "managed" if schema.managed else "custom"
        typer.echo(f"{schema.name:<{width}}  {schema.table_name:<{width}}  {schema.parser_kind:<26}  "
                   f"{len(schema.fields):>6}  {kind}")
