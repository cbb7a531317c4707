"""`onca serve` and `onca sources`: run a deployment's pipeline, and manage where its logs come from."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from onca.api.server import WebServerError
from onca.cli.deploy_commands import DEFAULT_STACK, deployed_context, resolve_home
from onca.deploy.components.core import metadata_session
from onca.deploy.parameters import LISTEN, ParameterError, read_config
from onca.deploy.preflight import PreflightFailed
from onca.deploy.resources import ResourceFailure
from onca.deploy.stacks import Deployment, home_context
from onca.pipeline import serve as serving
from onca.sources import store as sources

HomeOption = Annotated[Path | None, typer.Option("--home", help="Deployment home (default: $ONCA_HOME, ~/.onca).")]
sources_app = typer.Typer(name="sources", help="Log sources: where logs come from, with their log types and tokens.",
                          no_args_is_help=True, add_completion=False)


def up(
    home: HomeOption = None,
    first_user_email: Annotated[str | None, typer.Option(
        "--first-user-email", help="The first administrator, for a first deploy (asked for when not given).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Replay Onca's own sample events so alerts appear.")] = False,
    listen: Annotated[str, typer.Option("--listen", help="Address of the intake, HOST:PORT.")] = "127.0.0.1:8100",
    ready_file: Annotated[Path | None, typer.Option("--ready-file", hidden=True)] = None,
) -> None:
    """Deploy a local stack with defaults if there is none, then serve it (with --demo, replay sample events)."""
    deployment = Deployment(resolve_home(home))
    try:
        if home_context(deployment.home) is None:
            email = first_user_email
            if email is None and sys.stdin.isatty():
                email = typer.prompt("Email of the first administrator")
            if not email:
                typer.echo("error: no deployment here yet: give --first-user-email to create one", err=True)
                raise typer.Exit(2)
            config = read_config(deployment.home)
            try:
                outcome = deployment.deploy(config.stack_name or DEFAULT_STACK,
                                            {**config.parameters, "FirstUserEmail": email})
            except (PreflightFailed, ParameterError) as err:
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(2) from err
            for notice in outcome.notices:
                typer.echo(notice)
            if not outcome.ok:
                typer.echo(f"error: the deploy failed ({outcome.error}); run `onca diagnose`", err=True)
                raise typer.Exit(1)
    finally:
        deployment.close()
    serve(home=home, listen=listen, ready_file=ready_file, demo=demo)


def serve(
    home: HomeOption = None,
    listen: Annotated[str, typer.Option("--listen", help="Address of the intake, HOST:PORT.")] = "127.0.0.1:8100",
    ready_file: Annotated[Path | None, typer.Option("--ready-file", help="Write HOST:PORT here once serving.",
                                                   hidden=True)] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Replay Onca's own sample events so alerts appear.")] = False,
    role: Annotated[str | None, typer.Option(
        "--role", help="Run one role alone: api (intake, pollers, /metrics), worker or scheduler.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Worker processes, i.e. partitions of the sources (default: one per CPU).")] = None,
    partition: Annotated[str | None, typer.Option(
        "--partition", help="--role worker: the partition(s) to run, e.g. 0 or 0,2 (default: all).")] = None,
) -> None:
    """Run the intake (POST /ingest/<source> with the source's bearer token), worker processes (parse, lake,
    rules, alerts) and the scheduler (delivery outbox, periodic jobs) until SIGTERM or Ctrl-C. GET /healthz and
    /metrics are served too. --role runs one of them alone."""
    match = LISTEN.match(listen)
    if not match:
        raise typer.BadParameter(f"{listen!r} is not HOST:PORT", param_hint="--listen")
    if role is not None and role not in serving.ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(serving.ROLES)}", param_hint="--role")
    if demo and role not in (None, "api"):
        raise typer.BadParameter("--demo needs the api role", param_hint="--demo")
    options = serving.ServeOptions(host=match["host"].strip("[]"), port=int(match["port"]), ready=ready_file,
                                   role=role, demo=demo)
    if workers is not None:
        options.workers = workers
    if partition is not None:
        if role != "worker":
            raise typer.BadParameter("only with --role worker", param_hint="--partition")
        try:
            options.partitions = [int(p) for p in partition.split(",")]
        except ValueError:
            options.partitions = []
        if not options.partitions or any(not 0 <= p < options.workers for p in options.partitions):
            raise typer.BadParameter(f"partitions are 0 to {options.workers - 1}", param_hint="--partition")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s {role or 'serve'}[%(process)d] "
                        "%(name)s: %(message)s")
    with deployed_context(home) as ctx:
        signal.signal(signal.SIGTERM, lambda *_: serving.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: serving.stop_event.set())
        if role in (None, "api"):
            typer.echo(f"Onca serving {ctx.stack_name} from {ctx.home}: intake on http://{listen} "
                       "(POST /ingest/<source>), /healthz, /metrics")
        try:
            serving.serve_home(ctx, options, announce=typer.echo)
        except WebServerError as err:
            typer.echo(f"error: {err}; choose another address with "
                       "`onca deploy --param WebListenAddress=HOST:PORT`", err=True)
            raise typer.Exit(2) from err
        if role in (None, "api"):
            typer.echo("stopped")


@contextmanager
def _sources_session(home: Path | None) -> Iterator[Any]:
    with deployed_context(home) as ctx:
        try:
            with metadata_session(ctx) as session:
                yield session
        except ResourceFailure as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err


def _source_error(err: sources.SourceError) -> typer.Exit:
    for field, problem in err.problems.items():
        typer.echo(f"error: {field}: {problem}", err=True)
    return typer.Exit(2)


@sources_app.command("add")
def add(name: Annotated[str, typer.Argument(help="Source name; the intake URL is /ingest/<name>.")],
        log_types: Annotated[list[str], typer.Option("--log-type", help="Candidate log type (repeatable).")],
        kind: Annotated[str, typer.Option("--kind", help="http (push with a token), syslog, directory or s3.")]
        = "http",
        udp: Annotated[str | None, typer.Option("--udp", help="syslog: listen on HOST:PORT over UDP.")] = None,
        tcp: Annotated[str | None, typer.Option("--tcp", help="syslog: listen on HOST:PORT over TCP.")] = None,
        path: Annotated[Path | None, typer.Option("--path", help="directory: the directory to watch.")] = None,
        bucket: Annotated[str | None, typer.Option("--bucket", help="s3: the bucket to read.")] = None,
        prefix: Annotated[str | None, typer.Option("--prefix", help="s3: only keys under this prefix.")] = None,
        queue_url: Annotated[str | None, typer.Option(
            "--queue-url", help="s3: an SQS queue receiving the bucket's ObjectCreated notifications.")] = None,
        region: Annotated[str | None, typer.Option("--region", help="s3: the AWS region.")] = None,
        endpoint_url: Annotated[str | None, typer.Option(
            "--endpoint-url", help="s3: an S3-compatible endpoint (MinIO...).")] = None,
        home: HomeOption = None) -> None:
    """Add a source. An http source gets a bearer token (shown once; only its hash is kept); a syslog source
    listens on --udp/--tcp; a directory source ingests each complete file dropped into --path, then moves
    it to done/; an s3 source ingests each object written under --bucket/--prefix once, found by listing or
    from --queue-url notifications."""
    s3 = {"bucket": bucket, "prefix": prefix, "queue_url": queue_url, "region": region, "endpoint_url": endpoint_url}
    try:
        config = sources.kind_config(kind, udp=udp, tcp=tcp, path=path.resolve() if path else None, s3=s3)
        with _sources_session(home) as session:
            _, token = sources.add(session, name, kind, log_types, config)
    except sources.SourceError as err:
        raise _source_error(err) from err
    typer.echo(f"Source {name} ({kind}) added for {', '.join(log_types)}.")
    if token is not None:
        typer.echo(f"Token (shown once): {token}\nSend logs with: curl -H 'Authorization: Bearer <token>' "
                   f"--data-binary @events.ndjson http://<onca>/ingest/{name}")
    else:
        typer.echo("`onca serve` starts it (restart a running server to pick it up).")


@sources_app.command("list")
def list_sources(home: HomeOption = None,
                 output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """Every source with its kind and log types (tokens are never shown)."""
    with _sources_session(home) as session:
        rows = [{"name": s.name, "kind": s.kind, "log_types": s.log_types or [], "enabled": s.enabled}
                for s in sources.listing(session)]
    if output_format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "on " if row["enabled"] else "off"
        typer.echo(f"{row['name']:<24} {row['kind']:<8} {state} {','.join(row['log_types'])}")


@sources_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Source name.")], home: HomeOption = None) -> None:
    """Remove a source: its token stops working; data already in the lake stays."""
    try:
        with _sources_session(home) as session:
            sources.remove(session, name)
    except sources.SourceError as err:
        raise _source_error(err) from err
    typer.echo(f"Source {name} removed.")
