"""Validation of panther-analysis specs: the same valid/invalid verdict as the official tool, better words.

`validate_spec` judges one parsed YAML file:
1. `AnalysisType` must be known; it picks the schema (any truthy `BaseDetection` makes a derived
   detection; a lookup table with a query key is the SQL variant).
2. The type's strict record (schemas_types) checks keys and value types; extra keys are rejected,
   also inside tests and mocks.
3. Rules a record cannot express: exactly-one-of key groups, Schedule arithmetic, set-like lists
   without duplicates (Tags also case-insensitively), match-expression grammar (schemas_match).
With `ignore_extra_keys`, rules, policies and derived detections may carry unknown top-level keys,
but keys the format knows are still type-checked wherever they appear.

Checks that need several files (ID conflicts, data-model LogType conflicts, pack contents) are pure
functions over `(path, spec)` pairs so the loader decides what to pass in and in which order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, NotRequired, TypeVar

from pydantic import TypeAdapter, ValidationError

from onca.detections import schemas_types as types
from onca.detections.schemas_match import match_expression_errors
from onca.detections.schemas_messages import Loc, at, kind, show, validation_messages

ANALYSIS_TYPES = (
    "correlation_rule",
    "datamodel",
    "global",
    "pack",
    "policy",
    "rule",
    "saved_query",
    "scheduled_rule",
    "scheduled_query",
    "lookup_table",
    "scheduled_prompt",
)
_ID_KEYS = {
    "rule": "RuleID",
    "scheduled_rule": "RuleID",
    "correlation_rule": "RuleID",
    "policy": "PolicyID",
    "datamodel": "DataModelID",
    "global": "GlobalID",
    "scheduled_query": "QueryName",
    "saved_query": "QueryName",
    "pack": "PackID",
    "lookup_table": "LookupName",
    "scheduled_prompt": "PromptName",
}
# Lists the backend stores as sets: a repeated entry is an error, not a harmless no-op.
SET_FIELDS = ("LogTypes", "PackIDs", "OutputIds", "SummaryAttributes", "Suppressions", "Tags")

P = TypeVar("P")


def id_key(analysis_type: str, spec: Any = None) -> str:
    """The key holding the ID of a spec of this type (derived and simple detections use RuleID too,
    so `spec` never changes the answer; it is accepted so callers can pass what they have)."""
    try:
        return _ID_KEYS[analysis_type]
    except (KeyError, TypeError):
        raise ValueError(f"unknown AnalysisType {analysis_type!r}") from None


def spec_id(spec: Any) -> str | None:
    """The spec's ID, or None when the spec has no known type or no string ID."""
    if type(spec) is not dict:
        return None
    key = _ID_KEYS.get(spec.get("AnalysisType")) if type(spec.get("AnalysisType")) is str else None
    value = spec.get(key) if key else None
    return value if type(value) is str else None


def _join(keys: tuple[str, ...], word: str) -> str:
    return keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} {word} {keys[-1]}"


def _exactly_one(data: Any, keys: tuple[str, ...], loc: Loc = ()) -> list[str]:
    if type(data) is not dict or sum(key in data for key in keys) == 1:
        return []
    return [at(loc, f"{_join(keys, 'and')}: exactly one is required")]


def _at_least_one(data: Any, keys: tuple[str, ...], loc: Loc = ()) -> list[str]:
    if type(data) is not dict or any(key in data for key in keys):
        return []
    return [at(loc, f"{_join(keys, 'or')}: one is required")]


def _schedule_errors(spec: dict[Any, Any]) -> list[str]:
    schedule = spec.get("Schedule")
    errors = _exactly_one(schedule, ("CronExpression", "RateMinutes"), ("Schedule",))
    if type(schedule) is dict and type(schedule.get("RateMinutes")) is int:
        rate, timeout = schedule["RateMinutes"], schedule.get("TimeoutMinutes")
        if rate <= 1:
            errors.append(f"Schedule.RateMinutes: must be greater than 1, got {rate}")
        elif type(timeout) is int and rate < timeout:
            errors.append(f"Schedule.RateMinutes: must be at least TimeoutMinutes ({timeout}), got {rate}")
    return errors


def _rule_errors(spec: dict[Any, Any]) -> list[str]:
    return _exactly_one(spec, ("Filename", "Detection")) + _exactly_one(
        spec, ("LogTypes", "ScheduledQueries")
    )


def _query_errors(spec: dict[Any, Any]) -> list[str]:
    return _at_least_one(spec, types.QUERY_KEYS)


def _scheduled_query_errors(spec: dict[Any, Any]) -> list[str]:
    return _query_errors(spec) + _schedule_errors(spec)


def _datamodel_errors(spec: dict[Any, Any]) -> list[str]:
    mappings = spec.get("Mappings")
    if type(mappings) is not list:
        return []
    return [
        message
        for index, mapping in enumerate(mappings)
        for message in _exactly_one(mapping, ("Path", "Method"), ("Mappings", index))
    ]


def _lookup_table_errors(spec: dict[Any, Any]) -> list[str]:
    return _at_least_one(spec, ("Filename", "Refresh")) + _exactly_one(
        spec.get("Refresh"), ("RoleARN", "GCSCredentials"), ("Refresh",)
    )


def _sql_lookup_table_errors(spec: dict[Any, Any]) -> list[str]:
    return _query_errors(spec) + _exactly_one(
        spec.get("Refresh"), ("PeriodMinutes", "CronExpression"), ("Refresh",)
    )


def _no_extra_errors(_spec: dict[Any, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class _Schema:
    root: Any
    adapter: TypeAdapter[Any]
    keys: frozenset[str]
    extra_errors: Callable[[dict[Any, Any]], list[str]]
    lenient: bool


_FIELDS: dict[str, tuple[dict[str, Any], Callable[[dict[Any, Any]], list[str]]]] = {
    "rule": (types.RULE, _rule_errors),
    "derived": (types.DERIVED, _no_extra_errors),
    "correlation_rule": (types.CORRELATION_RULE, _no_extra_errors),
    "policy": (types.POLICY, _no_extra_errors),
    "global": (types.GLOBAL, _no_extra_errors),
    "datamodel": (types.DATAMODEL, _datamodel_errors),
    "pack": (types.PACK, _no_extra_errors),
    "saved_query": (types.SAVED_QUERY, _query_errors),
    "scheduled_query": (types.SCHEDULED_QUERY, _scheduled_query_errors),
    "scheduled_prompt": (types.SCHEDULED_PROMPT, _schedule_errors),
    "lookup_table": (types.LOOKUP_TABLE, _lookup_table_errors),
    "sql_lookup_table": (types.SQL_LOOKUP_TABLE, _sql_lookup_table_errors),
}
_LENIENT_TESTS = {"rule": types.RULE_TEST, "policy": types.POLICY_TEST}


@cache
def _schema(name: str, lenient: bool) -> _Schema:
    fields, extra_errors = _FIELDS[name]
    if lenient and name in _LENIENT_TESTS:
        test = types.lenient_test(f"{name}Test", _LENIENT_TESTS[name])
        fields = {**fields, "Tests": NotRequired[list[test]]}
    root = types.record(name, fields, types.LENIENT if lenient else types.FORBID)
    return _Schema(root, TypeAdapter(root), frozenset(fields), extra_errors, lenient)


@cache
def _json_properties() -> TypeAdapter[Any]:
    return TypeAdapter(types.JSON_PROPERTIES)


def _schema_name(spec: dict[Any, Any]) -> str:
    analysis_type = spec["AnalysisType"]
    if spec.get("BaseDetection"):
        return "derived"
    if analysis_type == "lookup_table" and any(key in spec for key in types.QUERY_KEYS):
        return "sql_lookup_table"
    return "rule" if analysis_type == "scheduled_rule" else analysis_type


def _duplicate_errors(spec: dict[Any, Any], skip: set[Any]) -> list[str]:
    errors = []
    for field in SET_FIELDS:
        values = spec.get(field)
        if field in skip or type(values) is not list:
            continue
        seen: set[Any] = set()
        lowered: dict[str, Any] = {}
        for value in values:
            try:
                if value in seen:
                    errors.append(f"{field}: duplicate value {show(value)}")
                    continue
                seen.add(value)
            except TypeError:  # unhashable entries are a type error reported elsewhere
                continue
            if field == "Tags" and type(value) is str:
                if value.lower() in lowered:
                    first = lowered[value.lower()]
                    errors.append(f"Tags: {show(first)} and {show(value)} differ only in case")
                lowered.setdefault(value.lower(), value)
    return errors


def validate_spec(spec: Any, *, ignore_extra_keys: bool = False) -> list[str]:
    """Every problem with one parsed spec file, as messages naming the key path; [] when it is valid."""
    if type(spec) is not dict:
        return [f"expected a mapping of keys at the top of the file, got {kind(spec)}"]
    if "AnalysisType" not in spec:
        return ["missing required key 'AnalysisType'"]
    analysis_type = spec["AnalysisType"]
    if type(analysis_type) is not str or analysis_type not in _ID_KEYS:
        return [f"AnalysisType: {show(analysis_type)} is not one of {', '.join(ANALYSIS_TYPES)}"]
    name = _schema_name(spec)
    schema = _schema(name, ignore_extra_keys and name in ("rule", "policy", "derived"))
    errors: list[str] = []
    failed: set[Any] = set()
    try:
        schema.adapter.validate_python(spec)
    except ValidationError as exc:
        for loc, message in validation_messages(exc, schema.root):
            errors.append(message)
            failed.add(loc[0] if loc else None)
    errors += schema.extra_errors(spec)
    errors += _duplicate_errors(spec, failed)
    for key in ("Detection", "InlineFilters"):
        if key in spec and key not in failed:
            errors += match_expression_errors(spec[key], (key,), inline=key == "InlineFilters")
    if schema.lenient:
        errors += _unknown_key_errors(spec, schema.keys)
    return errors


def _unknown_key_errors(spec: dict[Any, Any], known: frozenset[str]) -> list[str]:
    # Keys let through by ignore_extra_keys are still typed if the format gives them a meaning.
    extra = {key: value for key, value in spec.items() if key not in known}
    try:
        _json_properties().validate_python(extra)
    except ValidationError as exc:
        return [message for _, message in validation_messages(exc, types.JSON_PROPERTIES)]
    return []


def dedup_period_warnings(spec: Any) -> list[str]:
    """Warnings (not errors) for a DedupPeriodMinutes the backend will not honour as written."""
    value = spec.get("DedupPeriodMinutes") if type(spec) is dict else None
    if type(value) is not int:
        return []
    ident = spec_id(spec) or "UNKNOWN_ID"
    if value == 0:
        return [
            f"DedupPeriodMinutes is set to 0 for {ident}. This will be ignored by the backend. "
            "If you want to disable dedup, alter the `dedup` function to return 'p_row_id' instead."
        ]
    if value < 5:
        return [
            f"DedupPeriodMinutes for {ident} is less than 5. This is below Panther's DedupPeriodMinutes "
            "threshold, and will be treated as '5' upon upload."
        ]
    return []


def find_id_conflicts(items: Iterable[tuple[P, Any]]) -> list[tuple[P, str]]:
    """IDs must be unique across all types; every spec after the first holder of an ID is in conflict.

    Pass the specs in load order (the reference tool only registers specs that passed validation)."""
    seen: set[str] = set()
    conflicts = []
    for path, spec in items:
        ident = spec_id(spec)
        if ident is None:
            continue
        if ident in seen:
            conflicts.append((path, f"Conflicting AnalysisID: [{ident}]"))
        seen.add(ident)
    return conflicts


def find_datamodel_logtype_conflicts(items: Iterable[tuple[P, Any]]) -> list[tuple[P, str]]:
    """A LogType may belong to at most one enabled data model; later claims are conflicts."""
    owners: dict[str, str] = {}
    conflicts = []
    for path, spec in items:
        if (
            type(spec) is not dict
            or spec.get("AnalysisType") != "datamodel"
            or spec.get("Enabled") is not True
        ):
            continue
        ident, log_types = spec_id(spec), spec.get("LogTypes")
        if ident is None or type(log_types) is not list:
            continue
        for log_type in log_types:
            if type(log_type) is not str:
                continue
            if log_type in owners:
                conflicts.append((path, f"Conflicting Enabled LogType [{log_type}] in Data Model [{ident}]"))
            else:
                owners[log_type] = ident
    return conflicts


def find_pack_problems(packs: Iterable[tuple[P, Any]], known_ids: Collection[str]) -> list[tuple[P, str]]:
    """Packs whose PackDefinition.IDs name items that were not loaded (`known_ids`: IDs of valid specs)."""
    problems = []
    for path, spec in packs:
        definition = spec.get("PackDefinition") if type(spec) is dict else None
        ids = definition.get("IDs") if type(definition) is dict else None
        if type(ids) is not list:
            continue
        missing = [str(item) for item in ids if type(item) is not str or item not in known_ids]
        if missing:
            listed = ", ".join(missing)
            message = f"pack ({spec.get('PackID')}) definition includes item(s) that do not exist ({listed})"
            problems.append((path, message))
    return problems
