"""Scheduled queries and scheduled rules: SQL over the lake on a Schedule, its rows through the rules.

At each tick of an enabled `scheduled_query`'s Schedule (RateMinutes or CronExpression) its `Query` runs
read-only on the lake (DuckDB, TimeoutMinutes as the time limit), when at least one enabled scheduled rule
lists it in `ScheduledQueries`. Each result row becomes an event for those rules, with p_row_id a digest
of (query, tick, row index) and p_event_time the tick when the row has none, so re-running a tick after a
crash counts nothing twice. Matches and rule errors go through the AlertManager; the rows that matched
are kept in `rule_matches_<query name>`.

`p_occurs_since('1 day')` (or seconds, or `'2 hours', alias`) in a query becomes a condition on
p_event_time relative to the tick, not to the wall clock, so a late or repeated run sees the same rows.

A query that fails (SQL error, timeout) is a job failure (logged, recorded in the scheduler state with
the error) and a RULE_ERROR alert of type QueryError or QueryTimeout for every rule it feeds, grouped like
any rule error: the team learns that the detection is blind, once per dedup period. The window is
then done; the next tick runs the query again.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from onca.alerts.manager import AlertManager
from onca.detections.content import Content, ContentItem
from onca.detections.runner import RuleError, Runner
from onca.detections.runtime import Runtime
from onca.lake.query import QueryError, execute_query
from onca.pipeline.cadence import from_schedule, timeout_seconds
from onca.pipeline.jobs import FAILED, OK, JobRun, row_id
from onca.pipeline.rule_events import rule_event

log = logging.getLogger(__name__)

ROW_LIMIT = 100_000  # rows of one run handed to the rules; more are dropped with a warning
QUERY_KEYS = ("Query", "AthenaQuery", "SnowflakeQuery", "DatabricksQuery")
_PARTITION_COLUMNS = ("dt", "hour")  # DuckDB adds them from the lake's layout; they would clash on write
_UNITS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400,
          "w": 604800, "week": 604800}
_OCCURS_SINCE = re.compile(
    r"p_occurs_since\(\s*(?:'\s*(\d+)\s*([a-z]+?)s?\s*'|(\d+))\s*(?:,\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?\)",
    re.IGNORECASE)


def expand_macros(sql: str, tick: datetime) -> str:
    """`p_occurs_since(...)` -> `p_event_time >= '<tick - interval>'::TIMESTAMPTZ`; ValueError for unknown units."""
    def replace(found: re.Match[str]) -> str:
        amount, unit, seconds, alias = found.groups()
        if seconds is not None:
            span = int(seconds)
        elif unit.lower() in _UNITS:
            span = int(amount) * _UNITS[unit.lower()]
        else:
            raise ValueError(f"p_occurs_since: unknown unit {unit!r}")
        column = f"{alias}.p_event_time" if alias else "p_event_time"
        return f"{column} >= '{(tick - timedelta(seconds=span)).isoformat()}'::TIMESTAMPTZ"
    return _OCCURS_SINCE.sub(replace, sql)


def query_text(spec: Mapping[str, Any]) -> str:
    return next((str(spec[key]) for key in QUERY_KEYS if spec.get(key)), "")


def scheduled_runner(runtime: Runtime, content: Content, time_limit: float | None) -> Runner:
    """A Runner over the scheduled rules, with query names in the place of log types: the Runner indexes
    rules by LogTypes, and a scheduled rule's ScheduledQueries play that part."""
    rules = [ContentItem(item.path, {**item.spec, "AnalysisType": "rule",
                                     "LogTypes": list(item.spec.get("ScheduledQueries") or [])})
             for item in content.of_type("scheduled_rule")]
    return Runner(runtime, Content(root=content.root, items=[*content.of_type("global"), *rules]),
                  time_limit=time_limit)


def _plain(value: Any) -> Any:
    # DuckDB types Arrow and the rules have no use for as such; everything else passes unchanged.
    return str(value) if isinstance(value, uuid.UUID | time | timedelta) else value


class ScheduledQueryJob:
    """One scheduled query and the scheduled rules it feeds."""

    catch_up = True

    def __init__(self, item: ContentItem, lake: Path, runner: Callable[[], Runner],
                 rule_specs: Callable[[], Mapping[str, Mapping[str, Any]]], alerts: AlertManager) -> None:
        self.query_name = str(item.spec["QueryName"])
        self.name = f"query:{self.query_name}"
        self.sql = query_text(item.spec)
        self.cadence = from_schedule(item.spec.get("Schedule"))
        self.timeout_s = timeout_seconds(item.spec.get("Schedule"))
        self.lake = lake
        self.runner = runner
        self.rule_specs = rule_specs
        self.alerts = alerts

    def run(self, tick: datetime) -> JobRun:
        runner = self.runner()
        rule_ids = runner.rule_ids(self.query_name)
        if not rule_ids:
            return JobRun(self.name, tick, OK, {"rules": 0})  # nothing listens: no need to load the lake
        meta = {rule_id: self.rule_specs().get(rule_id, {}) for rule_id in rule_ids}
        try:
            result = execute_query(self.lake, expand_macros(self.sql, tick), limit=ROW_LIMIT,
                                   timeout_s=self.timeout_s)
        except (QueryError, ValueError) as err:
            return self._failed(tick, err, rule_ids, meta)
        if result.truncated:
            log.warning("%s: more than %d rows at %s; the rest were not evaluated", self.name, ROW_LIMIT, tick)
        rows = []
        for index, values in enumerate(result.rows):
            row = {column: _plain(value) for column, value in zip(result.columns, values, strict=True)
                   if column not in _PARTITION_COLUMNS}
            row["p_row_id"] = row_id("query", self.query_name, tick.isoformat(), str(index))
            if row.get("p_event_time") is None:
                row["p_event_time"] = tick
            rows.append(row)
        batch = runner.evaluate(self.query_name, [rule_event(row, {}) for row in rows])
        outcome = self.alerts.process(batch.matches, batch.errors, events=rows, log_type=self.query_name,
                                      rule_meta=meta)
        return JobRun(self.name, tick, OK, {"rules": len(rule_ids), "rows": len(rows), "matches": len(batch.matches),
                                            "rule_errors": len(batch.errors), "alerts_raised": len(outcome.raised)})

    def _failed(self, tick: datetime, err: Exception, rule_ids: list[str],
                meta: Mapping[str, Mapping[str, Any]]) -> JobRun:
        message = str(err)
        error_type = "QueryTimeout" if message.startswith("query timed out") else "QueryError"
        log.error("%s: the query of the window ending %s failed: %s", self.name, tick.isoformat(), message)
        event = {"p_row_id": row_id("query-error", self.query_name, tick.isoformat()), "p_event_time": tick,
                 "p_log_type": self.query_name, "query_name": self.query_name, "error": message}
        errors = [RuleError(rule_id, 0, error_type, f"scheduled query {self.query_name} failed: {message}")
                  for rule_id in rule_ids]
        outcome = self.alerts.process([], errors, events=[event], log_type=self.query_name, rule_meta=meta)
        return JobRun(self.name, tick, FAILED, {"rules": len(rule_ids), "alerts_raised": len(outcome.raised)},
                      error=message)
