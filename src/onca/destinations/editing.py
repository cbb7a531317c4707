"""Destinations as the API and the console edit them: each kind's fields, a view that hides every secret, and
changes that keep a stored secret the user left blank.

A secret is never sent back, not even masked in part: a secret field that is set shows as MASK, and
`has_secret` says whether any is set. On an edit, a secret field left blank (or holding MASK) keeps its stored
value, so changing a severity filter does not mean typing the token again.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.destinations import registry
from onca.destinations import store as destinations
from onca.destinations.base import DEFAULT_TIMEOUT, ConfigError, DestinationConfig, split_list
from onca.destinations.outbox import load_destination
from onca.store import models

MASK = "••••"


@dataclass(frozen=True)
class KindField:
    """One setting of a kind, as a form shows it."""

    name: str
    input: str  # text | secret | checkbox | select | list (comma-separated) | json (an object)
    required: bool
    default: Any
    choices: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "input": self.input, "required": self.required, "default": self.default,
                "choices": list(self.choices)}


def _input(annotation: Any, secret: bool) -> tuple[str, tuple[str, ...]]:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return "checkbox", ()
    if origin is typing.Literal:
        return "select", tuple(str(choice) for choice in typing.get_args(annotation))
    if origin is list:
        return "list", ()
    if origin is dict:
        return "json", ()
    if origin in (typing.Union, types.UnionType):
        return _input(next(a for a in typing.get_args(annotation) if a is not type(None)), secret)
    return ("secret" if secret else "text"), ()


def kind_fields(kind: str) -> list[KindField]:
    """The kind's settings in declaration order (ConfigError for an unknown kind)."""
    model = registry.kind_of(kind).config_model
    fields = []
    for name, info in model.model_fields.items():
        widget, choices = _input(info.annotation, name in model.secret_fields)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        fields.append(KindField(name, widget, info.is_required(), default, choices))
    return fields


def form_config(kind: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """A kind's raw config from form fields (strings): blanks left out, lists split, checkboxes read."""
    raw: dict[str, Any] = {}
    for spec in kind_fields(kind):
        value = form.get(spec.name)
        if spec.input == "checkbox":
            raw[spec.name] = str(value).lower() in ("1", "true", "on", "yes") if value is not None else False
        elif isinstance(value, str) and value.strip():
            raw[spec.name] = split_list(value) if spec.input == "list" else value.strip()
        elif isinstance(value, list | dict | bool):
            raw[spec.name] = value
    return raw


def listing(session: Session) -> list[models.Destination]:
    return list(session.scalars(select(models.Destination).order_by(models.Destination.name)))


def public_view(row: models.Destination, fernet: Fernet) -> dict[str, Any]:
    """The destination without any secret: secret fields that are set read MASK."""
    view: dict[str, Any] = {"id": row.id, "name": row.name, "kind": row.kind, "enabled": bool(row.enabled),
                            "severities": list(row.severities or []), "log_types": list(row.log_types or []),
                            "updated_at": row.updated_at.isoformat() if row.updated_at else None}
    try:
        _, config = load_destination(row, fernet)
    except Exception as err:  # one unreadable row must not break a listing; say what is wrong, never a value
        problem = (f"the stored config is invalid ({', '.join(err.problems)})" if isinstance(err, ConfigError)
                   else "the stored config cannot be decrypted with this deployment's keyring")
        return {**view, "config": {}, "secret_fields": [], "has_secret": False, "error": problem}
    secrets = type(config).secret_fields
    data = config.model_dump()
    shown = {name: (MASK if value not in ("", None, {}, []) else value) if name in secrets else value
             for name, value in data.items()}
    return {**view, "config": shown, "secret_fields": list(secrets),
            "has_secret": any(data.get(name) not in ("", None, {}, []) for name in secrets), "error": None}


def keep_secrets(stored: Mapping[str, Any], raw: Mapping[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """`raw` with each secret field that is absent, blank or MASK taken from `stored`."""
    merged = dict(raw)
    for name in secret_fields:
        value = merged.get(name)
        if (value is None or value == MASK or (isinstance(value, str) and not value.strip())) and name in stored:
            merged[name] = stored[name]
    return merged


def save(session: Session, fernet: Fernet, name: str, kind: str, raw: Mapping[str, Any], *,
         severities: Iterable[str] = (), log_types: Iterable[str] = (), enabled: bool = True,
         existing: bool = False) -> models.Destination:
    """Create (`existing` False) or change a destination. A change keeps the kind's stored secrets left blank;
    a change of kind keeps none. ConfigError names the bad fields; DestinationError says what else is wrong."""
    if existing:
        row = destinations.get(session, name)
        assert row is not None
        try:
            stored_kind, stored = load_destination(row, fernet)
        except Exception:  # an unreadable stored config: the new one must then be complete
            stored_kind, stored = None, None
        target = registry.kind_of(kind)
        if stored is not None and stored_kind is not None and stored_kind.kind == target.kind:
            raw = keep_secrets(stored.model_dump(), raw, type(stored).secret_fields)
    elif destinations.get(session, name, required=False) is not None:
        raise ConfigError("destination", {"name": f"a destination named {name!r} already exists"})
    try:
        return destinations.add(session, fernet, name, kind, raw, severities=severities, log_types=log_types,
                                enabled=enabled, replace=existing)
    except ConfigError as err:
        # A validator may quote what it was given; a mistyped secret must not come back in the answer either.
        secrets = registry.kind_of(kind).config_model.secret_fields
        given = [str(raw[key]) for key in secrets if raw.get(key)]
        problems = {field: _without(problem, given) for field, problem in err.problems.items()}
        raise ConfigError(err.kind, problems) from None


def _without(text: str, values: list[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def form_text(value: Any) -> str:
    """How a form shows a list or object field's current value."""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value) if value else ""
    return "" if value is None else str(value)


@dataclass(frozen=True)
class TestOutcome:
    """A test send's answer as shown to people: the service's reply with every secret value taken out."""

    success: bool
    message: str
    status_code: int | None
    permanent: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def secret_values(config: DestinationConfig) -> list[str]:
    """The secret values of a config, and the path of a secret URL (often the secret itself), longest first."""
    found: list[str] = []
    data = config.model_dump()
    for name in type(config).secret_fields:
        value = data.get(name)
        values = [str(v) for v in value.values()] if isinstance(value, dict) else [str(value or "")]
        for text in values:
            found.append(text)
            if "://" in text:
                parts = urlsplit(text)
                found += [parts.path, parts.query, parts.password or ""]
    return [v for v in found if v]


def scrub(message: str, config: DestinationConfig) -> str:
    return _without(message, secret_values(config))


def send_test(session: Session, fernet: Fernet, name: str, timeout: float = DEFAULT_TIMEOUT) -> TestOutcome | None:
    """Send a test alert now (see store.send_test); None when there is no such destination."""
    row = destinations.get(session, name, required=False)
    if row is None:
        return None
    try:
        _, config = load_destination(row, fernet)
    except Exception:  # undecryptable or no longer valid: say so without echoing the stored values
        return TestOutcome(False, "the stored config cannot be used: edit the destination and save it again",
                           None, True)
    result = destinations.send_test(session, fernet, name, timeout)
    return TestOutcome(result.success, scrub(result.message, config), result.status_code, result.permanent)
