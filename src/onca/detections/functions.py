"""The detection function contract: calling rule()/policy() and the auxiliary functions.

Every auxiliary function is checked for its return type and post-processed (truncation, size limits,
severity normalisation, dedup fallback) exactly as the reference runtime does, because detection
authors rely on those details and the test verdicts depend on them (spec §3.2-3.5).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from onca.detections.errors import FunctionReturnTypeError, UnknownDestinationError
from onca.detections.immutable import json_encoder

SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_DEFAULT = "DEFAULT"
MAX_FIELD_SIZE = 1000
MAX_ALERT_CONTEXT_SIZE = 200 * 1024
MAX_DESTINATIONS = 10
TRUNCATED_SUFFIX = "... (truncated)"
ALERT_CONTEXT_ERROR_KEY = "_error"

# Computation order of the auxiliary functions; dedup must follow title (its fallback uses the title).
AUX_ORDER = ("title", "description", "reference", "severity", "runbook", "destinations", "dedup",
             "alert_context", "unique")


def default_dedup(detection_id: str) -> str:
    return f"defaultDedupString:{detection_id}"


def truncate(value: str) -> str:
    if len(value) > MAX_FIELD_SIZE:
        return value[: MAX_FIELD_SIZE - len(TRUNCATED_SUFFIX)] + TRUNCATED_SUFFIX
    return value


def _type_error(detection_id: str, func: Callable, result: Any, expected: str) -> FunctionReturnTypeError:
    name = getattr(func, "__name__", "function")
    return FunctionReturnTypeError(
        f"detection [{detection_id}] function [{name}] returned [{type(result).__name__}], expected [{expected}]"
    )


def call_bool(detection_id: str, func: Callable, event: Any) -> bool:
    result = func(event)
    if result is True or result is False:
        return result
    raise _type_error(detection_id, func, result, "bool")


def call_str(detection_id: str, func: Callable, event: Any) -> str:
    result = func(event)
    if isinstance(result, str):
        return result
    raise _type_error(detection_id, func, result, "str")


def severity_of(detection_id: str, func: Callable, event: Any, default: str | None) -> str | None:
    severity = call_str(detection_id, func, event).upper()
    if severity in SEVERITIES:
        return severity
    if severity == SEVERITY_DEFAULT:
        return default
    raise AssertionError(
        f"Expected severity to be any of the following: [{SEVERITIES!s}], got [{severity}] instead."
    )


def alert_context_of(detection_id: str, func: Callable, event: Any) -> str:
    """The alert context serialised as JSON; oversized contexts are replaced by an error marker."""
    context = func(event)
    if not isinstance(context, Mapping):
        raise _type_error(detection_id, func, context, "Mapping")
    serialised = json.dumps(context, default=json_encoder, allow_nan=False)
    if len(serialised) > MAX_ALERT_CONTEXT_SIZE:
        message = (f"alert_context size is [{len(serialised)}] characters, bigger than maximum of "
                   f"[{MAX_ALERT_CONTEXT_SIZE}] characters")
        return json.dumps({ALERT_CONTEXT_ERROR_KEY: message})
    return serialised


def destinations_of(
    detection_id: str, func: Callable, event: Any, known: Mapping[str, str]
) -> list[str] | None:
    """Destination ids from destinations(); `known` maps display names and ids to ids.

    None means "use the configured outputs"; an empty list suppresses delivery (["SKIP"]).
    """
    result = func(event)
    if result is None:
        return None
    if not isinstance(result, list) or not all(isinstance(item, str | bool) for item in result):
        name = getattr(func, "__name__", "destinations")
        raise FunctionReturnTypeError(
            f"detection [{detection_id}] function [{name}] returned [{type(result).__name__}], expected a list"
        )
    if not result:
        return ["SKIP"]
    resolved: list[str] = []
    unknown: list[Any] = []
    for item in result:
        destination_id = known.get(item) if isinstance(item, str) else None
        if destination_id is None:
            unknown.append(item)
        elif destination_id not in resolved:
            resolved.append(destination_id)
    if unknown:
        raise UnknownDestinationError("Invalid Destinations", unknown)
    return resolved[:MAX_DESTINATIONS]
