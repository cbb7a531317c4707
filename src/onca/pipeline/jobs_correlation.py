"""Correlation rules on the scheduler: member rule matches from the lake -> the engine -> alerts.

At each tick T of a rule's Schedule, the window is [T - LookbackWindowMinutes, T) in event time. The
matches of its member rules in that window are read from every `rule_matches_*` table (alerting matches
and CreateAlert: false signals alike), one Occurrence per matched event at its p_event_time, with the
values at the rule's join paths (`p_alert_context.x` reads the match's alert context, other paths the
event's columns, JSON text decoded on the way). Every join key the rule fires for becomes one match of the
correlation rule, handed to the AlertManager like any rule match (dedup, threshold, routing, outbox).

The event an alert keeps summarises the correlation (rule, join key, window, member rules, the alerts and
rows that made it fire) and goes to `rule_matches_onca_correlation`, so correlation rules can be members
of other correlation rules. Its p_row_id is a digest of rule id, join key and the window the engine found
the members in: re-running a tick after a crash, or a later overlapping lookback that sees the same
members, counts nothing twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from onca.alerts.manager import AlertManager
from onca.detections.content import ContentItem
from onca.detections.correlation import CorrelationMatch, CorrelationRule, JoinKey, Occurrence
from onca.detections.detection import RuleMatch
from onca.detections.functions import default_dedup
from onca.lake.catalog import Catalog
from onca.lake.layout import table_dirs
from onca.lake.query import QueryError, execute_query
from onca.pipeline.cadence import from_schedule, timeout_seconds
from onca.pipeline.jobs import FAILED, OK, JobRun, row_id

log = logging.getLogger(__name__)

CORRELATION_LOG_TYPE = "Onca.Correlation"
MATCHES_PREFIX = "rule_matches_"
_PARTITION_COLUMNS = ("dt", "hour")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_matches(lake: Path, rule_ids: Sequence[str], start: datetime, end: datetime,
                 timeout_s: float) -> list[dict[str, Any]]:
    """Rows of every rule_matches_* table whose p_rule_id is one of `rule_ids`, p_event_time in [start, end)."""
    catalog = Catalog(lake)
    rules = ", ".join(_literal(rule_id) for rule_id in sorted(set(rule_ids)))
    first, last = _literal(start.astimezone(UTC).date().isoformat()), _literal(end.astimezone(UTC).date().isoformat())
    condition = (f"p_rule_id IN ({rules}) AND p_event_time >= {_literal(start.isoformat())}::TIMESTAMPTZ "
                 f"AND p_event_time < {_literal(end.isoformat())}::TIMESTAMPTZ "
                 # the partition columns prune whole directories before any file is opened
                 f"AND dt BETWEEN DATE {first} AND DATE {last}")
    rows: list[dict[str, Any]] = []
    for table_dir in table_dirs(lake):
        if not table_dir.name.startswith(MATCHES_PREFIX) or catalog.source_sql(table_dir.name) is None:
            continue
        result = execute_query(lake, f'SELECT * FROM "{table_dir.name}" WHERE {condition}', limit=None,
                               timeout_s=timeout_s)
        for values in result.rows:
            row = dict(zip(result.columns, values, strict=True))
            for column in _PARTITION_COLUMNS:
                row.pop(column, None)
            rows.append(row)
    return rows


def resolve(row: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted field path; JSON text met on the way (p_alert_context, json columns) is decoded."""
    value: Any = row
    for segment in path.split("."):
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def _minutes(moment: datetime) -> float:
    return moment.timestamp() / 60.0


def _moment(minutes: float) -> datetime:
    return datetime.fromtimestamp(minutes * 60.0, UTC)


def _join_set(value: Any) -> set[Any]:
    items = value if isinstance(value, list) else [value]
    found = set()
    for item in items:
        try:
            if item is not None:
                found.add(item)
        except TypeError:  # unhashable values join nothing, as in the engine
            continue
    return found


class CorrelationJob:
    """One correlation rule on its Schedule."""

    catch_up = True

    def __init__(self, item: ContentItem, rule: CorrelationRule, lake: Path, alerts: AlertManager) -> None:
        self.spec = item.spec
        self.rule = rule
        self.rule_id = str(rule.rule_id)
        self.name = f"correlation:{self.rule_id}"
        body = item.spec["Detection"][0]
        self.cadence = from_schedule(body.get("Schedule"))
        self.timeout_s = timeout_seconds(body.get("Schedule"))
        self.lake = lake
        self.alerts = alerts
        self.key_names = self._key_names(body)

    def _key_names(self, body: Mapping[str, Any]) -> list[str]:
        """What each join key position is called in the alert: the MatchCriteria name, or the Sequence's
        join path without its prefix (p_alert_context.target_user -> target_user)."""
        if self.rule.kind == "Group":
            return [str(name) for name in (body.get("MatchCriteria") or {})]
        paths = [path for member in self.rule.members for path in self.rule.field_paths(member.id)]
        return [paths[0].rsplit(".", 1)[-1]] if paths else []

    def run(self, tick: datetime) -> JobRun:
        start = tick - timedelta(minutes=self.rule.lookback)
        try:
            rows = read_matches(self.lake, [m.rule_id for m in self.rule.members], start, tick, self.timeout_s)
        except QueryError as err:
            log.error("%s: reading member matches for the window ending %s failed: %s", self.name, tick, err)
            return JobRun(self.name, tick, FAILED, error=str(err))
        occurrences = self._occurrences(rows)
        fired = fire_all(self.rule, [occ for occ, _row in occurrences])
        summaries = [self._summary(found, occurrences) for found in fired]
        events = [event for event, _context in summaries]
        matches = [self._match(index, found, context) for index, (found, (_event, context))
                   in enumerate(zip(fired, summaries, strict=True))]
        counts = {"member_matches": len(rows), "fired": len(fired), "alerts_raised": 0, "replayed": 0}
        if fired:
            outcome = self.alerts.process(matches, [], events=events, log_type=CORRELATION_LOG_TYPE,
                                          rule_meta={self.rule_id: self.spec})
            counts.update(alerts_raised=len(outcome.raised), replayed=outcome.replayed)
            log.info("%s fired for %d join key(s) in the window ending %s", self.name, len(fired), tick)
        return JobRun(self.name, tick, OK, counts)

    def _occurrences(self, rows: list[dict[str, Any]]) -> list[tuple[Occurrence, dict[str, Any]]]:
        found = []
        for row in rows:
            moment = row.get("p_event_time")
            if not isinstance(moment, datetime):
                continue
            for member in self.rule.members:
                if member.rule_id == row.get("p_rule_id"):
                    values = {path: resolve(row, path) for path in self.rule.field_paths(member.id)}
                    found.append((Occurrence(member.id, values, _minutes(moment)), row))
        return found

    def _key_values(self, key: JoinKey) -> dict[str, Any]:
        if key is None:
            return {}
        return {name: value for name, value in zip(self.key_names, key, strict=False) if value is not None}

    def _carries(self, occurrence: Occurrence, key: JoinKey) -> bool:
        paths = self.rule.field_paths(occurrence.group)
        wanted = {value for value in key or () if value is not None}
        if not paths or not wanted:
            return True
        return any(wanted & _join_set(occurrence.values.get(path)) for path in paths)

    def _summary(self, found: CorrelationMatch, occurrences: list[tuple[Occurrence, dict[str, Any]]]
                 ) -> tuple[dict[str, Any], str]:
        """The event the alert keeps, and its alert context (the join values, then the details)."""
        absent = {member.id for member in self.rule.members if member.absent}
        members: dict[str, dict[str, Any]] = {}
        alert_ids: set[str] = set()
        row_ids: set[str] = set()
        for occurrence, row in occurrences:
            if occurrence.group in absent or not found.start <= occurrence.time <= found.end:
                continue
            if not self._carries(occurrence, found.join_key):
                continue
            entry = members.setdefault(occurrence.group, {"rule_id": row["p_rule_id"], "matches": 0,
                                                          "first": occurrence.time, "last": occurrence.time})
            entry["matches"] += 1
            entry["first"] = min(entry["first"], occurrence.time)
            entry["last"] = max(entry["last"], occurrence.time)
            if row.get("p_alert_id"):
                alert_ids.add(str(row["p_alert_id"]))
            if row.get("p_row_id"):
                row_ids.add(str(row["p_row_id"]))
        for entry in members.values():
            entry["first"], entry["last"] = _moment(entry["first"]).isoformat(), _moment(entry["last"]).isoformat()
        key = self._key_values(found.join_key)
        start, end = _moment(found.start), _moment(found.end)
        identity = json.dumps([self.rule_id, list(found.join_key or ()), found.start, found.end], default=str)
        context = {**key, "correlation": {"rule_id": self.rule_id, "join_key": key, "window_start": start.isoformat(),
                                          "window_end": end.isoformat(), "members": members,
                                          "alert_ids": sorted(alert_ids)}}
        event = {
            "p_row_id": row_id("correlation", identity),
            "p_event_time": end,
            "p_log_type": CORRELATION_LOG_TYPE,
            "correlation_rule_id": self.rule_id,
            "join_key": json.dumps(key, sort_keys=True, default=str),
            "window_start": start,
            "window_end": end,
            "member_rule_ids": sorted({entry["rule_id"] for entry in members.values()}),
            "matched_alert_ids": sorted(alert_ids),
            "matched_row_ids": sorted(row_ids),
        }
        return event, json.dumps(context, sort_keys=True, default=str)

    def _match(self, index: int, found: CorrelationMatch, context: str) -> RuleMatch:
        key = self._key_values(found.join_key)
        name = str(self.spec.get("DisplayName") or self.rule_id)
        title = f"{name}: {', '.join(str(v) for v in key.values())}" if key else name
        dedup = ", ".join(f"{k}={v}" for k, v in key.items()) or default_dedup(self.rule_id)
        return RuleMatch(rule_id=self.rule_id, event_index=index, title=title, dedup=dedup,
                         severity=str(self.spec.get("Severity") or "INFO").upper(), alert_context=context,
                         destinations=None, unique=None, description=str(self.spec.get("Description") or ""),
                         reference=str(self.spec.get("Reference") or ""), runbook=str(self.spec.get("Runbook") or ""))


def fire_all(rule: CorrelationRule, occurrences: list[Occurrence]) -> list[CorrelationMatch]:
    """Every join key the rule fires for. The engine reports the first one; after each, the key's values
    are taken off the join paths and the rule is evaluated again. Exact for one criterion (every Sequence
    and most Group rules); with several criteria, keys sharing a component with an earlier firing are missed."""
    found: list[CorrelationMatch] = []
    remaining = occurrences
    while (match := rule.evaluate(remaining)) is not None:
        found.append(match)
        drop = {value for value in match.join_key or () if value is not None}
        if not drop:
            break
        remaining, changed = _without(rule, remaining, drop)
        if not changed:
            break
    return found


def _without(rule: CorrelationRule, occurrences: list[Occurrence], drop: set[Any]) -> tuple[list[Occurrence], bool]:
    changed = False
    kept = []
    for occurrence in occurrences:
        values = dict(occurrence.values)
        for path in rule.field_paths(occurrence.group):
            value = values.get(path)
            if isinstance(value, list):
                left = [item for item in value if not _in(item, drop)]
                if len(left) != len(value):
                    values[path], changed = left, True
            elif _in(value, drop):
                values[path], changed = None, True
        kept.append(Occurrence(occurrence.group, values, occurrence.time))
    return kept, changed


def _in(value: Any, values: set[Any]) -> bool:
    try:
        return value in values
    except TypeError:
        return False
