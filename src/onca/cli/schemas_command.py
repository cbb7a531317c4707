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

app = typer.Typer(name="schemas", help="Log schemas: list them, test them against sample logs, add your own.",
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


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="A Custom.* schema YAML file.")],
    home: Annotated[Path | None, typer.Option("--home", help="Deployment home (default: $ONCA_HOME, ~/.onca).")]
    = None,
) -> None:
    """Install or update a Custom.* schema in <home>/schemas; an update may only add fields."""
    from onca.cli.deploy_commands import resolve_home
    from onca.logs.schema import check_update, load_schema

    try:
        schema = load_schema(file)
    except SchemaError as err:
        for line in err.errors:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    if not schema.name.startswith("Custom."):
        typer.echo(f"error: {schema.name}: your own schemas must be named Custom.<Name>", err=True)
        raise typer.Exit(2)
    folder = resolve_home(home) / "schemas"
    target = folder / f"{schema.name}.yml"
    existed = target.exists()
    if existed:
        problems = check_update(load_schema(target), schema)
        if problems:
            for problem in problems:
                typer.echo(f"error: {problem}", err=True)
            typer.echo("A schema update may only add fields: existing data keeps the old columns. Add a new field "
                       "instead, or create a new Custom.* log type.", err=True)
            raise typer.Exit(2)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"{'Updated' if existed else 'Installed'} {schema.name} in {target}")
