"""Per-rule alerting settings, alert identities and event times: the pure helpers of the alert manager."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from onca.store.models import SEVERITIES

DEFAULT_DEDUP_MINUTES = 60
DEFAULT_THRESHOLD = 1
RULE = "RULE"
RULE_ERROR = "RULE_ERROR"


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """What the alert manager needs of a rule's spec (the YAML keys of the analysis file)."""

    dedup_minutes: int = DEFAULT_DEDUP_MINUTES
    threshold: int = DEFAULT_THRESHOLD
    create_alert: bool = True
    severity: str = "INFO"
    description: str = ""
    reference: str = ""
    runbook: str = ""
    tags: list[str] = field(default_factory=list)
    reports: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dedup_period(self) -> timedelta:
        return timedelta(minutes=self.dedup_minutes)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RuleSettings:
        """Settings from a rule spec; missing or malformed values take the defaults (a bad spec never drops alerts)."""
        spec = spec or {}
        return cls(
            dedup_minutes=_positive_int(spec.get("DedupPeriodMinutes"), DEFAULT_DEDUP_MINUTES, minimum=1),
            threshold=_positive_int(spec.get("Threshold"), DEFAULT_THRESHOLD, minimum=1),
            create_alert=spec.get("CreateAlert") is not False,
            severity=normalize_severity(spec.get("Severity")),
            description=str(spec.get("Description") or ""),
            reference=str(spec.get("Reference") or ""),
            runbook=str(spec.get("Runbook") or ""),
            tags=[str(tag) for tag in spec.get("Tags") or []],
            reports={str(k): [str(v) for v in (vs or [])] for k, vs in (spec.get("Reports") or {}).items()},
        )


def _positive_int(value: Any, default: int, *, minimum: int) -> int:
    # Threshold 0 is allowed by the reference and means "alert on the first event", as 1 does.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        number = int(value)
    except ValueError:
        return default
    return max(number, minimum) if number >= 0 else default


def normalize_severity(value: Any, default: str = "INFO") -> str:
    text = str(value or "").strip().upper()
    return text if text in SEVERITIES else default


def rule_meta_from_specs(specs: Mapping[str, Mapping[str, Any]] | list[Mapping[str, Any]]) -> dict[str, RuleSettings]:
    """{rule id: settings} from rule specs (a list of specs keyed by their RuleID, or a mapping by id)."""
    if isinstance(specs, Mapping):
        return {rule_id: RuleSettings.from_spec(spec) for rule_id, spec in specs.items()}
    return {str(spec["RuleID"]): RuleSettings.from_spec(spec) for spec in specs if spec.get("RuleID")}


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=16).hexdigest()


def dedup_key(kind: str, rule_id: str, dedup: str) -> str:
    """The merge key of an alert: the same for every window of (kind, rule, dedup)."""
    return _digest(kind, rule_id, dedup)


def alert_id(kind: str, rule_id: str, dedup: str, window_start: datetime) -> str:
    """32 hex digits, a function of the alert's group and window only: a replay finds the same alert."""
    return _digest(dedup_key(kind, rule_id, dedup), to_utc(window_start).isoformat())


def row_id_of(event: Mapping[str, Any]) -> str:
    """The event's p_row_id; rows without one are identified by a digest of their content."""
    row_id = event.get("p_row_id")
    if isinstance(row_id, str) and row_id:
        return row_id
    content = json.dumps(event, sort_keys=True, default=str, separators=(",", ":"))
    return "h" + hashlib.blake2b(content.encode("utf-8"), digest_size=16).hexdigest()


def to_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, str) and value:
        try:
            return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def event_time_of(event: Mapping[str, Any], fallback: datetime) -> datetime:
    """p_event_time, else p_parse_time, else `fallback` (the processing time)."""
    return _as_time(event.get("p_event_time")) or _as_time(event.get("p_parse_time")) or to_utc(fallback)


def parse_context(value: str | None) -> Any:
    """The alert context as stored on the alert: the object the rule returned (RuleMatch carries it as JSON)."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return {"raw": value}
