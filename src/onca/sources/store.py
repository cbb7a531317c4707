"""The configured sources in the metadata database: add, list, change, remove, and issue an http source's token.

The CLI (`onca sources`) and the API both call these functions. Bad input raises SourceError naming each bad
field, before anything is stored; an http source's bearer token is returned once by `add`/`rotate_token` and
only its hash is kept (see onca.pipeline.tokens).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.deploy.parameters import LISTEN
from onca.logs.registry import SchemaRegistry
from onca.pipeline.poller_s3 import s3_source_config
from onca.pipeline.tokens import CONFIG_KEY, issue_token
from onca.store.models import Source

# The kinds `onca serve` starts: http push (with a token), syslog listeners, directory and S3 pollers.
KINDS = ("http", "syslog", "directory", "s3")
S3_FIELDS = ("bucket", "prefix", "queue_url", "region", "endpoint_url")
# The name is the intake URL's last segment (/ingest/<name>), so it stays URL-safe.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class SourceError(ValueError):
    """A source cannot be added, changed or found as asked; `problems` maps each field to what is wrong."""

    def __init__(self, problems: dict[str, str], *, missing: bool = False) -> None:
        self.problems = problems
        self.missing = missing  # the source named does not exist (an API answers 404)
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in problems.items()))


def kind_config(kind: str, *, udp: str | None = None, tcp: str | None = None,
                path: str | Path | None = None, s3: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The stored config of a source of `kind` from what the user gave (blank values count as absent);
    `s3` holds an S3 source's bucket, prefix, queue_url, region and endpoint_url."""
    if kind == "http":
        return {}
    if kind == "syslog":
        given = {key: value.strip() for key, value in (("udp", udp), ("tcp", tcp)) if value and value.strip()}
        if not given:
            raise SourceError({"udp": "a syslog source needs udp and/or tcp as HOST:PORT"})
        bad = {key: f"{value!r} is not HOST:PORT" for key, value in given.items() if not LISTEN.match(value)}
        if bad:
            raise SourceError(bad)
        return given
    if kind == "directory":
        # Absolute: a relative path would mean whatever directory the server happens to run in.
        directory = Path(str(path).strip()) if path and str(path).strip() else None
        if directory is None or not directory.is_absolute():
            raise SourceError({"path": "a directory source needs the absolute path of an existing directory"})
        if not directory.is_dir():
            raise SourceError({"path": f"{str(directory)!r} is not an existing directory"})
        return {"path": str(directory.resolve())}
    if kind == "s3":
        given = {key: (value or "").strip() for key, value in (s3 or {}).items() if key in S3_FIELDS}
        try:
            return s3_source_config(**given)
        except ValueError as err:
            # The message starts with the field it is about; the missing-bucket one names the bucket.
            first = str(err).split(" ", 1)[0]
            raise SourceError({first if first in S3_FIELDS else "bucket": str(err)}) from err
    raise SourceError({"kind": f"must be one of {', '.join(KINDS)}"})


def check_log_types(log_types: Iterable[str], registry: SchemaRegistry | None = None) -> list[str]:
    """The log types, each a shipped schema or a Custom.* one (defined in the home's schemas/)."""
    chosen = list(dict.fromkeys(t.strip() for t in log_types if t and t.strip()))
    if not chosen:
        raise SourceError({"log_types": "give at least one log type"})
    known = set((registry or SchemaRegistry.load()).names())
    unknown = [t for t in chosen if t not in known and not t.startswith("Custom.")]
    if unknown:
        raise SourceError({"log_types": f"unknown log type(s): {', '.join(unknown)} (see `onca schemas list`)"})
    return chosen


def get(session: Session, name: str) -> Source:
    source = session.scalars(select(Source).where(Source.name == name)).first()
    if source is None:
        raise SourceError({"name": f"no source named {name!r}"}, missing=True)
    return source


def listing(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.name)))


def add(session: Session, name: str, kind: str, log_types: Iterable[str], config: Mapping[str, str],
        registry: SchemaRegistry | None = None) -> tuple[Source, str | None]:
    """Store a new enabled source (`config` from `kind_config`); returns it and an http source's token (or None)."""
    problems: dict[str, str] = {}
    if not NAME.match(name or ""):
        problems["name"] = "must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit"
    elif session.scalars(select(Source).where(Source.name == name)).first() is not None:
        problems["name"] = f"source {name!r} already exists"
    if kind not in KINDS:
        problems["kind"] = f"must be one of {', '.join(KINDS)}"
    try:
        types = check_log_types(log_types, registry)
    except SourceError as err:
        problems.update(err.problems)
    if problems:
        raise SourceError(problems)
    source = Source(name=name, kind=kind, log_types=types, config=dict(config), enabled=True)
    session.add(source)
    session.flush()
    token = issue_token(session, name) if kind == "http" else None
    return source, token


def update(session: Session, name: str, *, log_types: Iterable[str] | None = None, enabled: bool | None = None,
           registry: SchemaRegistry | None = None) -> Source:
    """Change a source's log types and/or switch it on or off (its kind and address stay: add a new one)."""
    source = get(session, name)
    if log_types is not None:
        source.log_types = check_log_types(log_types, registry)
    if enabled is not None:
        source.enabled = enabled
    session.flush()
    return source


def rotate_token(session: Session, name: str) -> str:
    """A new token for an http source; the previous one stops working (within the intake's cache time)."""
    source = get(session, name)
    if source.kind != "http":
        raise SourceError({"kind": f"only http sources have a token ({name!r} is a {source.kind} source)"})
    return issue_token(session, name)


def remove(session: Session, name: str) -> Source:
    """Delete the source: its token stops working; data already in the lake stays."""
    source = get(session, name)
    session.delete(source)
    session.flush()
    return source


def public_view(source: Source) -> dict[str, Any]:
    """The source as listings show it: the token's hash is left out, only whether there is one."""
    config = {key: value for key, value in (source.config or {}).items() if key != CONFIG_KEY}
    return {"name": source.name, "kind": source.kind, "log_types": list(source.log_types or []),
            "enabled": bool(source.enabled), "config": config, "has_token": CONFIG_KEY in (source.config or {}),
            "created_at": source.created_at.isoformat() if source.created_at else None}
