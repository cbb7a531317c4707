"""Deployment parameters: their definitions, validation and resolution across deploys.

Names follow the seed (Panther's root-stack parameters) where the idea is the same. Every value is
validated before anything is touched. On update, previous values are reused unless given again,
and a default is taken only for a key that is new in this release: an omitted parameter never
silently reverts to a default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
IDENTITY = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
LISTEN = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
PIP_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?"
                             r"((==|>=|<=|~=|!=|>|<)[A-Za-z0-9.*+!-]+)?$")


class ParameterError(ValueError):
    """One or more parameters are invalid; `problems` maps each name to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.problems.items()))


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # String | Boolean | CommaDelimitedList | Email | Path | Url
    default: Any
    description: str
    required: bool = False
    check: Callable[[Any], str | None] | None = None  # returns what is wrong, or None
    allowed: str = ""  # a human description of allowed values, shown by `onca parameters`
    secret: bool = False

    def parse(self, raw: Any) -> Any:
        """A value from onca.yml or --param, typed; raises ValueError with what is wrong."""
        if self.kind == "Boolean":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "yes", "1", "on"):
                return True
            if text in ("false", "no", "0", "off"):
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        if self.kind == "CommaDelimitedList":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return [str(item).strip() for item in items if str(item).strip()]
        if raw is None:
            return ""
        if isinstance(raw, list | dict | bool):
            raise ValueError(f"expected text, got {type(raw).__name__}")
        return str(raw).strip()

    def validate(self, value: Any) -> str | None:
        if self.required and value in ("", None, []):
            return "is required" + (f" ({self.allowed})" if self.allowed else "")
        if self.check is not None and value not in ("", None, []):
            return self.check(value)
        return None


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if regex.match(str(value)) else f"{value!r} is not {what}"
    return check


def _listen(value: Any) -> str | None:
    match = LISTEN.match(str(value))
    if not match or not 0 < int(match["port"]) < 65536:
        return f"{value!r} is not HOST:PORT (for example 127.0.0.1:8000)"
    return None


def _requirements(value: Any) -> str | None:
    bad = [item for item in value if not PIP_REQUIREMENT.match(item) and not _is_local_path(item)]
    return f"not a pip requirement or local path: {', '.join(bad)}" if bad else None


def _is_local_path(item: str) -> bool:
    return item.startswith(("/", "./", "../", "file:")) or item.endswith((".whl", ".tar.gz", ".zip"))


def _pack_sources(value: Any) -> str | None:
    bad = [item for item in value if not (item.startswith("file:") or "://" not in item)]
    return f"only local paths, zip files and file:// URLs are supported: {', '.join(bad)}" if bad else None


def _database_url(value: Any) -> str | None:
    if str(value).startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        return None
    return f"{value!r} is not a sqlite:/// or postgresql:// URL"


def _smtp_url(value: Any) -> str | None:
    return None if re.match(r"^smtps?://[^/\s]+$", str(value)) else f"{value!r} is not smtp://[user:pass@]host[:port]"


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("FirstUserEmail", "Email", "", "Email of the first administrator; an invite link is printed (and "
              "emailed when SMTP is set). Changes after the first successful deploy are ignored.", required=True,
              check=_pattern(EMAIL, "an email address"), allowed="an email address"),
    Parameter("OnboardSelf", "Boolean", True, "Monitor Onca's own audit log as a log source, with detections."),
    Parameter("SentryEnvironment", "String", "prod", "Environment name for error reporting; blank disables it. "
              "Errors are only sent when SentryDsn is set too.", check=_pattern(re.compile(r"^[\w.-]{0,64}$"),
                                                                              "a short name")),
    Parameter("SentryDsn", "Url", "", "Where error reports go (a Sentry DSN); blank disables error reporting.",
              check=_pattern(re.compile(r"^https?://\S+$"), "an http(s) URL"), secret=True),
    Parameter("SupportRoleIdentityAccountId", "String", "", "Identity allowed the read-only Support role (health, "
              "metrics, deployment events and errors; never log data, alerts or detection content). Blank "
              "disables the role.", check=_pattern(IDENTITY, "an identity (letters, digits, . _ @ + -)")),
    Parameter("OpsRoleIdentityAccountId", "String", "", "Identity allowed the Operations role (migrations, backups, "
              "reprocessing). Off by default; enable only when needed.",
              check=_pattern(IDENTITY, "an identity (letters, digits, . _ @ + -)")),
    Parameter("PipLibraries", "CommaDelimitedList", [], "Extra Python packages detections may import, installed "
              "into the deployment home and verified by importing them.", check=_requirements,
              allowed="pip requirements or local wheel/sdist paths"),
    Parameter("InitialAnalysisPackUrls", "CommaDelimitedList", [], "Detection content installed on the first "
              "deploy only: local directories, zip files or file:// URLs.", check=_pack_sources),
    Parameter("CustomDomain", "String", "", "Public host name of the web console.",
              check=_pattern(HOSTNAME, "a host name")),
    Parameter("WebListenAddress", "String", "127.0.0.1:8000", "Address the web console and API listen on.",
              check=_listen),
    Parameter("WebCertificateFile", "Path", "", "PEM certificate for TLS; TLS is on when this and "
              "WebCertificateKeyFile are set."),
    Parameter("WebCertificateKeyFile", "Path", "", "PEM private key for WebCertificateFile.", secret=True),
    Parameter("MetadataDatabaseUrl", "Url", "", "Metadata database; blank means SQLite in the home. "
              "postgresql://user:password@host/db is supported.", check=_database_url, secret=True),
    Parameter("LakeLocation", "Path", "", "Directory of the data lake; blank means <home>/lake."),
    Parameter("SmtpUrl", "Url", "", "SMTP server for invites and email alerts: smtp://[user:pass@]host[:port].",
              check=_smtp_url, secret=True),
    Parameter("SmtpFrom", "Email", "onca@localhost", "Sender address of Onca's email.",
              check=_pattern(re.compile(r"^[^@\s]+@[^@\s]+$"), "an email address")),
)

BY_NAME = {p.name: p for p in PARAMETERS}


@dataclass
class DeployConfig:
    """What onca.yml and the command line ask for."""

    stack_name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    source: str = "onca.yml"


def read_config(home: Path) -> DeployConfig:
    """onca.yml in the home, if present: `stack_name:` and a `parameters:` mapping."""
    path = home / "onca.yml"
    if not path.exists():
        return DeployConfig(source=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ParameterError({"onca.yml": f"not valid YAML: {err}".replace("\n", " ")}) from err
    if not isinstance(data, dict):
        raise ParameterError({"onca.yml": "must be a mapping with stack_name and parameters"})
    unknown = set(data) - {"stack_name", "parameters"}
    if unknown:
        raise ParameterError({"onca.yml": f"unknown keys {sorted(unknown)} (allowed: stack_name, parameters)"})
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise ParameterError({"onca.yml": "parameters must be a mapping of Name: value"})
    return DeployConfig(stack_name=data.get("stack_name"), parameters=params, source=str(path))


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """--param Key=Value strings; a malformed one is a ParameterError naming it."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError({item: "must look like Key=Value"})
        overrides[key.strip()] = value
    return overrides


def resolve(
    requested: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    definitions: Iterable[Parameter] = PARAMETERS,
) -> tuple[dict[str, Any], list[str]]:
    """Typed values for every parameter, and warnings. Raises ParameterError listing every problem.

    Order: the value asked for now, else the previous deploy's value, else the default (which only
    applies to keys the previous deploy did not have, i.e. keys new in this release).
    """
    defs = {p.name: p for p in definitions}
    problems: dict[str, str] = {}
    warnings: list[str] = []
    for name in requested:
        if name not in defs:
            close = [n for n in defs if n.lower() == str(name).lower()]
            hint = f" (did you mean {close[0]}?)" if close else " (see `onca parameters`)"
            problems[name] = f"unknown parameter{hint}"
    values: dict[str, Any] = {}
    for name, definition in defs.items():
        if name in requested:
            try:
                value = definition.parse(requested[name])
            except ValueError as err:
                problems[name] = str(err)
                continue
        elif previous is not None and name in previous:
            value = previous[name]
        else:
            value = definition.default
        if name == "FirstUserEmail" and previous and previous.get(name) and value != previous[name]:
            warnings.append(f"FirstUserEmail change to {value!r} ignored: it only applies to the first deploy "
                            f"(the first admin is {previous[name]!r})")
            value = previous[name]
        problem = definition.validate(value)
        if problem:
            problems[name] = problem
        values[name] = value
    if bool(values.get("WebCertificateFile")) != bool(values.get("WebCertificateKeyFile")):
        problems.setdefault("WebCertificateKeyFile", "WebCertificateFile and WebCertificateKeyFile go together")
    if problems:
        raise ParameterError(problems)
    return values, warnings


def definitions_for(previous: Mapping[str, Any] | None, declared: Iterable[str] = ()) -> list[Parameter]:
    """The registry, plus parameters a release's migration notes declare, plus ones an earlier release
    recorded (they stay, as plain strings, rather than vanish on the next deploy)."""
    extra = [name for name in [*declared, *(previous or {})] if name not in BY_NAME]
    return [*PARAMETERS, *(Parameter(name, "String", "", "declared by a release's migration notes")
                           for name in dict.fromkeys(extra))]


def display(name: str, value: Any) -> str:
    """A value as shown to people: secrets masked, lists comma-separated."""
    definition = BY_NAME.get(name)
    if definition is not None and definition.secret and value:
        return "********"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
