"""What detection code sees of a normalised row: `json` fields decoded and timestamps as Panther prints them,
at any depth (a json field inside an object, a timestamp inside an array of objects), as `onca test` gives them.

The row itself is left as it is (it also goes to the lake's rule_matches tables, where json fields stay text):
only the objects on the way to a converted value are copied. The paths to convert are compiled once per
schema, so a row costs a walk of those paths, not of the whole event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from onca.logs.normalize import Compiler
from onca.logs.schema import LogSchema

JSON, TIMESTAMP = "json", "timestamp"
# A plan maps a field name to JSON, TIMESTAMP or the plan of an object (or of an array's object elements).
Plan = dict[str, Any]


@lru_cache(maxsize=65_536)
def panther_time(value: datetime) -> str:
    # Cached: a batch repeats the same instants (events of one second, session creation times) and strftime
    # is the dearest step of building a rule's event.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def compile_plan(schema: LogSchema) -> Plan:
    """The converted fields of `schema`'s rows; top-level timestamps are found by type at run time anyway."""
    return _plan(schema.fields, Compiler(schema.definitions))


def _plan(fields: list[dict[str, Any]], compiler: Compiler) -> Plan:
    plan: Plan = {}
    for spec in fields:
        target = _target(spec, compiler)
        if target:
            plan[spec["name"]] = target
    return plan


def _target(spec: dict[str, Any], compiler: Compiler) -> Any:
    spec = compiler.resolve(spec)
    kind = spec["type"]
    if kind in (JSON, TIMESTAMP):
        return kind
    if kind == "object":
        return _plan(spec["fields"], compiler) or None
    if kind == "array":
        return _target({**spec["element"], "name": "item"}, compiler)
    return None


def rule_event(row: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """The event a rule gets for `row` (absent and null fields left out at the top, as Panther does)."""
    event: dict[str, Any] = {}
    for key, value in row.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = panther_time(value)
        else:
            target = plan.get(key)
            if target is not None:
                value = _convert(value, target)
        event[key] = value
    return event


def _convert(value: Any, target: Any) -> Any:
    if isinstance(value, list):
        return [_convert(item, target) for item in value]
    if target == JSON:
        if isinstance(value, str):
            with contextlib.suppress(orjson.JSONDecodeError):
                return orjson.loads(value)
        return value
    if target == TIMESTAMP:
        return panther_time(value) if isinstance(value, datetime) else value
    if not isinstance(value, dict):
        return value
    converted = dict(value)
    for key, child in target.items():
        inner = converted.get(key)
        if inner is not None:
            converted[key] = _convert(inner, child)
    return converted
