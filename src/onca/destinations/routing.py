"""Which destinations an alert goes to.

Precedence (as in Panther): the rule's `destinations()` result overrides everything; else the rule's
`OutputIds`; else every enabled destination whose severity and log-type filters accept the alert.
An explicit choice (the first two) is not filtered by severity or log type: the author asked for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

SKIP = "SKIP"
T = TypeVar("T")


def route(alert: Any, destinations: Iterable[T], rule_outputs: Sequence[str] | None = None,
          rule_destinations: Sequence[str] | None = None) -> list[T]:
    """The destinations (objects with name, id, enabled, severities, log_types) the alert is delivered to.

    `rule_destinations`: None means the rule did not choose; [] or ["SKIP"] means deliver nowhere.
    Destinations are named by name or id. Disabled destinations never receive alerts.
    """
    enabled = [d for d in destinations if getattr(d, "enabled", True)]
    if rule_destinations is not None:
        if not rule_destinations or SKIP in rule_destinations:
            return []
        return _named(enabled, rule_destinations)
    if rule_outputs:
        return _named(enabled, rule_outputs)
    severity = str(getattr(alert, "severity", "") or "").upper()
    log_types = set(getattr(alert, "log_types", None) or [])
    return [d for d in enabled if _accepts(d, severity, log_types)]


def _named(destinations: list[T], wanted: Sequence[str]) -> list[T]:
    keys = {str(item) for item in wanted}
    return [d for d in destinations if getattr(d, "name", None) in keys or str(getattr(d, "id", "")) in keys]


def _accepts(destination: Any, severity: str, log_types: set[str]) -> bool:
    # An empty filter accepts everything.
    severities = {str(s).upper() for s in getattr(destination, "severities", None) or []}
    if severities and severity not in severities:
        return False
    wanted = set(getattr(destination, "log_types", None) or [])
    return not wanted or bool(wanted & log_types)
