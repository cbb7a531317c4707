"""An alert's matching events, read from the lake: the rule_matches_<table> rows (rule_errors_<table> for a
RULE_ERROR alert) whose p_alert_id is the alert's.

Only the hour partitions between the alert's first and last event time are opened (its log types name the
tables), so the cost follows the alert's own span, not the size of the lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import duckdb

from onca.alerts.lake import errors_table, matches_table
from onca.lake.compaction import live_files
from onca.lake.layout import partitions
from onca.lake.query import plain  # the lake's value-to-JSON conversion, as `onca query` prints it
from onca.store.models import Alert

MAX_EVENTS_PAGE = 100
# The lake writer falls back to its own clock for an event without a time, which runs a moment after the
# manager's: look this far past the alert's last event time so such an event's partition is not missed.
_CLOCK_SLACK = timedelta(minutes=5)


@dataclass
class EventsPage:
    events: list[dict[str, Any]]  # one dict per matching row: its non-empty columns, JSON-ready values
    offset: int
    limit: int
    has_more: bool
    files: int  # data files read


def alert_files(lake_dir: Path, alert: Alert) -> list[Path]:
    """The data files that can hold the alert's rows: its tables' partitions within its event-time span."""
    table_of = errors_table if alert.kind == "RULE_ERROR" else matches_table
    first = alert.first_event_time.astimezone(UTC)
    last = alert.last_event_time.astimezone(UTC) + _CLOCK_SLACK
    files = []
    for log_type in sorted(set(alert.log_types or [])):
        for partition in partitions(lake_dir / table_of(log_type), since=first):
            if partition.hour > last:
                break
            files += live_files(partition.path)
    return files


def alert_events(lake_dir: Path, alert: Alert, *, offset: int = 0, limit: int = 20) -> EventsPage:
    """A page of the alert's rows in event-time order (then row id); empty columns are left out."""
    limit = max(1, min(limit, MAX_EVENTS_PAGE))
    offset = max(0, offset)
    files = alert_files(lake_dir, alert)
    if not files:
        return EventsPage([], offset, limit, False, 0)
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    try:
        # hive_partitioning off: dt/hour are the layout, not columns of the event.
        cursor = con.execute(
            "SELECT * FROM read_parquet(?, union_by_name=true, hive_partitioning=false) WHERE p_alert_id = ? "
            "ORDER BY p_event_time NULLS LAST, p_row_id LIMIT ? OFFSET ?",
            [[str(f) for f in files], alert.id, limit + 1, offset])
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    finally:
        con.close()
    events = [{name: plain(value) for name, value in zip(columns, row, strict=True)
               if value is not None and value != []} for row in rows[:limit]]
    return EventsPage(events, offset, limit, len(rows) > limit, len(files))
