"""Turning validation failures into the one-line messages a detection author reads.

A message names the key path the way the YAML reads (`Tests[2].Mocks[0]`), says what is wrong, and,
for an unknown key, which keys are allowed there.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NotRequired, Required, get_args, get_origin, get_type_hints

from pydantic import ValidationError
from typing_extensions import is_typeddict

Loc = tuple[Any, ...]

_YAML_KINDS = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
    list: "list",
    dict: "mapping",
}
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_SHOW_LIMIT = 60


def kind(value: Any) -> str:
    """The YAML name of a value's type."""
    return _YAML_KINDS.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A short, quoted rendering of a user value for a message."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def described(value: Any) -> str:
    """A value with its YAML type, as in "got integer 5" (a null needs no second word)."""
    return "null" if value is None else f"{kind(value)} {show(value)}"


def path_text(loc: Loc) -> str:
    parts: list[str] = []
    for step in loc:
        if type(step) is int:
            parts.append(f"[{step}]")
        elif type(step) is str and _PLAIN_KEY.match(step):
            parts.append(f".{step}" if parts else step)
        else:
            parts.append(f"[{step!r}]")
    return "".join(parts)


def at(loc: Loc, text: str) -> str:
    return f"{path_text(loc)}: {text}" if loc else text


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) in (Annotated, NotRequired, Required):
        annotation = get_args(annotation)[0]
    return annotation


def allowed_keys(root: Any, loc: Loc) -> list[str]:
    """The keys the record at `loc` (a path into data of type `root`) accepts, in declaration order."""
    current = _unwrap(root)
    for step in loc:
        if is_typeddict(current):
            hints = get_type_hints(current, include_extras=True)
            if step not in hints:
                return []
            current = _unwrap(hints[step])
        elif get_origin(current) is list:
            current = _unwrap(get_args(current)[0])
        elif get_origin(current) is dict:
            current = _unwrap(get_args(current)[1])
        else:
            return []
    return list(get_type_hints(current)) if is_typeddict(current) else []


def _message(error: Any, root: Any, base: Loc) -> tuple[Loc, str]:
    loc = base + tuple(error["loc"])
    error_type = error["type"]
    if error_type == "missing":
        return loc, at(loc[:-1], f"missing required key {loc[-1]!r}")
    if error_type == "extra_forbidden":
        allowed = ", ".join(allowed_keys(root, tuple(error["loc"])[:-1]))
        return loc, at(loc[:-1], f"unknown key {show(loc[-1])} (allowed: {allowed})")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        return loc, at(loc[:-1], f"key {show(loc[-1])}: expected {_EXPECTED.get(error_type, 'a string')}")
    if error_type in _EXPECTED:
        value = error.get("input")
        return loc, at(loc, f"expected {_EXPECTED[error_type]}, got {described(value)}")
    return loc, at(loc, error["msg"])


def validation_messages(exc: ValidationError, root: Any, base: Loc = ()) -> list[tuple[Loc, str]]:
    """(full key path, message) for every error pydantic found in data of type `root` found at `base`."""
    return [_message(error, root, base) for error in exc.errors(include_url=False)]
