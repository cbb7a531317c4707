"""Simple detections: a rule whose logic is a `Detection:` match-expression list instead of Python.

`build_simple_detection` turns the spec into a module-like namespace holding the same functions a Python
rule defines, so the runner, the test harness and the alert manager treat both kinds alike:

* `rule(event) -> bool` from `Detection`;
* `title(event) -> str` from `AlertTitle`: `{field}` / `{a.b[0].c}` placeholders are filled from the
  event, `{{` and `}}` are literal braces. A missing or null field renders as the empty string (so
  `"User [{user}]"` reads `User []`), strings render as they are, booleans as `true`/`false`, lists and
  mappings as compact JSON, other values with `str()`;
* `alert_context(event) -> dict` from `AlertContext`: `{KeyName: value}`, a missing field giving None;
* `dedup(event) -> str` from `GroupBy`: the rendered values joined with `DEDUP_SEPARATOR`. When every
  value is missing the result is "" so the usual fallback (title, then the default dedup string) applies;
* `severity(event) -> str` from `DynamicSeverities`: the upper-cased `ChangeTo` of the first entry whose
  `Conditions` match, else "DEFAULT" (the YAML `Severity`).

Only the functions whose key is present are defined, because "defined" changes the runner's fallbacks.
`InlineFilters` are not folded into `rule`: the runner applies them to every rule kind alike.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from onca.detections.errors import ContentError
from onca.detections.match import MISSING, Getter, compile_key, compile_match

DEDUP_SEPARATOR = "|"
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _raw(event: Any) -> Any:
    raw_view = getattr(event, "raw_view", None)
    return raw_view() if raw_view is not None else event


def render(value: Any) -> str:
    """How a field value reads inside a title or dedup string."""
    if type(value) is str:
        return value
    if value is None or value is MISSING:
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _compile_title(template: Any, where: str) -> Callable[[Any], str]:
    if not isinstance(template, str):
        raise ContentError(f"{where}: AlertTitle must be a string, got {type(template).__name__}")
    parts: list[str | Getter] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        token = match.group(0)
        parts.append(template[pos : match.start()])
        pos = match.end()
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise ContentError(f"{where}: unbalanced {token!r} in AlertTitle {template!r}, write {token * 2}")
        else:
            parts.append(compile_key({"KeyPath": match.group(1)}, where=f"{where}: AlertTitle placeholder"))
    parts.append(template[pos:])
    pieces = tuple(part for part in parts if part != "")

    def title(event: Any) -> str:
        raw = _raw(event)
        return "".join(part if type(part) is str else render(part(raw)) for part in pieces)

    return title


def _compile_context(entries: Any, where: str) -> Callable[[Any], dict[str, Any]]:
    if not isinstance(entries, list):
        raise ContentError(f"{where}: AlertContext must be a list of {{KeyName, KeyValue}}")
    fields: list[tuple[str, Getter]] = []
    for i, entry in enumerate(entries):
        here = f"{where}: AlertContext[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"KeyName", "KeyValue"}:
            raise ContentError(f"{here}: an entry must have exactly the keys KeyName and KeyValue")
        if not isinstance(entry["KeyName"], str) or not entry["KeyName"]:
            raise ContentError(f"{here}: KeyName must be a non-empty string")
        fields.append((entry["KeyName"], compile_key(entry["KeyValue"], where=f"{here}.KeyValue")))

    def alert_context(event: Any) -> dict[str, Any]:
        raw = _raw(event)
        context = {}
        for name, get in fields:
            value = get(raw)
            context[name] = None if value is MISSING else value
        return context

    return alert_context


def _compile_group_by(specs: Any, where: str) -> Callable[[Any], str]:
    if not isinstance(specs, list) or not specs:
        raise ContentError(f"{where}: GroupBy must be a non-empty list of key specifiers")
    getters = tuple(compile_key(spec, where=f"{where}: GroupBy[{i}]") for i, spec in enumerate(specs))

    def dedup(event: Any) -> str:
        raw = _raw(event)
        values = [get(raw) for get in getters]
        if all(value is MISSING or value is None for value in values):
            return ""
        return DEDUP_SEPARATOR.join(render(value) for value in values)

    return dedup


def _compile_severities(entries: Any, where: str) -> Callable[[Any], str]:
    if not isinstance(entries, list):
        raise ContentError(f"{where}: DynamicSeverities must be a list of {{ChangeTo, Conditions}}")
    rules: list[tuple[Callable[[Any], bool], str]] = []
    for i, entry in enumerate(entries):
        here = f"{where}: DynamicSeverities[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"ChangeTo", "Conditions"}:
            raise ContentError(f"{here}: an entry must have exactly the keys ChangeTo and Conditions")
        level = entry["ChangeTo"]
        if not isinstance(level, str) or level.upper() not in SEVERITIES:
            raise ContentError(f"{here}: ChangeTo must be Info, Low, Medium, High or Critical, not {level!r}")
        rules.append((compile_match(entry["Conditions"], where=f"{here}.Conditions"), level.upper()))

    def severity(event: Any) -> str:
        raw = _raw(event)
        for matches, level in rules:
            if matches(raw):
                return level
        return "DEFAULT"

    return severity


def build_simple_detection(spec: Mapping[str, Any], where: str) -> types.ModuleType:
    """Compile a `Detection:` rule spec into a namespace of detection functions (see the module doc).

    Raises ContentError, naming `where` and the offending key, when the spec cannot be compiled."""
    if "Detection" not in spec or spec["Detection"] is None:
        raise ContentError(f"{where}: a simple detection needs a Detection list")
    name = spec.get("RuleID") if isinstance(spec.get("RuleID"), str) else where
    module = types.ModuleType(name, f"Simple detection compiled from {where}")
    matches = compile_match(spec["Detection"], where=f"{where}: Detection")

    def rule(event: Any) -> bool:
        return matches(_raw(event))

    module.rule = rule  # type: ignore[attr-defined]
    if spec.get("AlertTitle") is not None:
        module.title = _compile_title(spec["AlertTitle"], where)  # type: ignore[attr-defined]
    if spec.get("AlertContext") is not None:
        module.alert_context = _compile_context(spec["AlertContext"], where)  # type: ignore[attr-defined]
    if spec.get("GroupBy") is not None:
        module.dedup = _compile_group_by(spec["GroupBy"], where)  # type: ignore[attr-defined]
    if spec.get("DynamicSeverities") is not None:
        module.severity = _compile_severities(spec["DynamicSeverities"], where)  # type: ignore[attr-defined]
    return module
