"""`onca test [PATH]`: run detection unit tests, with the reference tool's verdicts and summary."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from onca.detections.content import is_repository_root
from onca.detections.report import TextReporter, write_json
from onca.detections.testing import Options, parse_filter, run_tests


def builtin_content() -> Path:
    """Onca's own detections, shipped inside the package."""
    return Path(str(resources.files("onca") / "content"))


def default_target() -> Path:
    """The current directory when it is a content repository (as the reference tool assumes), else Onca's own."""
    cwd = Path(".")
    return cwd if is_repository_root(cwd.resolve()) else builtin_content()


def test(
    path: Annotated[Path | None, typer.Argument(
        help="Content directory or file. Default: the current directory if it holds content "
             "(rules/, policies/ ...), else Onca's own detections.")] = None,
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", help="Only detections whose KEY matches: Key=v1,v2 (any of) or Key!=v. Repeatable; ANDed.")] = None,
    minimum_tests: Annotated[int, typer.Option(
        "--minimum-tests", min=0, help="Fail detections with fewer tests (and, above 1, without both outcomes).")] = 0,
    skip_disabled_tests: Annotated[bool, typer.Option(
        "--skip-disabled-tests", help="Skip detections with Enabled: false.")] = False,
    test_names: Annotated[list[str] | None, typer.Option(
        "--test-names", help="Run only tests with these names. Repeatable.")] = None,
    show_failures_only: Annotated[bool, typer.Option(
        "--show-failures-only", help="Print only failing detections and tests (then the summary).")] = False,
    output_format: Annotated[str, typer.Option(
        "--format", help="text (the reference tool's layout) or json (one document).")] = "text",
    compat: Annotated[bool, typer.Option(
        "--compat", help="Skip what panther_analysis_tool skips without a backend (correlation rules, simple "
                         "detections, InlineFilters), for side-by-side counts.")] = False,
    available_destinations: Annotated[list[str] | None, typer.Option(
        "--available-destination", help="A destination name destinations() may return. Repeatable.")] = None,
    ignore_files: Annotated[list[str] | None, typer.Option(
        "--ignore-files", help="YAML file names to leave out. Repeatable.")] = None,
    ignore_extra_keys: Annotated[bool, typer.Option(
        "--ignore-extra-keys", help="Accept unknown keys in rule and policy specs.")] = False,
    workers: Annotated[int, typer.Option(
        "--workers", min=0, help="Processes to run tests in (0 = one per core, up to 2).")] = 0,
    color: Annotated[bool | None, typer.Option(
        "--color/--no-color", help="Colour PASS/FAIL (default: when printing to a terminal).")] = None,
    home: Annotated[Path | None, typer.Option(
        "--home", help="Test a deployment's installed content, with its PipLibraries importable.")] = None,
) -> None:
    """Run the unit tests of every detection under PATH."""
    if output_format not in ("text", "json"):
        raise typer.BadParameter("must be 'text' or 'json'", param_hint="--format")
    try:
        parsed_filters = [parse_filter(f) for f in filters or []]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--filter") from err
    extra_paths: list[Path] = []
    if home is not None:
        home = home.expanduser().resolve()
        extra_paths.append(home / "python")
        if path is None:
            path = home / "content"
    target = path if path is not None else default_target()
    if not target.exists():
        typer.echo(f"error: {target} does not exist", err=True)
        raise typer.Exit(2)
    options = Options(
        compat=compat,
        filters=parsed_filters,
        minimum_tests=minimum_tests,
        skip_disabled=skip_disabled_tests,
        test_names=set(test_names) if test_names else None,
        available_destinations=available_destinations or [],
        ignore_files=ignore_files or [],
        ignore_extra_keys=ignore_extra_keys,
        workers=workers,
        extra_paths=extra_paths,
    )
    if output_format == "json":
        run = run_tests(target, options)
        write_json(run, sys.stdout)
    else:
        use_color = sys.stdout.isatty() if color is None else color
        reporter = TextReporter(sys.stdout, color=use_color, failures_only=show_failures_only)
        run = run_tests(target, options, on_report=reporter.detection)
        reporter.summary(run, err=sys.stderr)
    raise typer.Exit(run.exit_code)
