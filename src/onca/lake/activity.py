"""Ingest volume: how many events (and quarantined records) the lake holds per UTC day, for the overview chart.

Counted from the Parquet footers of the recent hour partitions only (no data page is read), over the data
tables: rule_matches_*/rule_errors_* repeat events already counted, and quarantine is reported apart. Days
are the partitioning's: event time for events, parse time for quarantined records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from onca.lake.compaction import live_files
from onca.lake.layout import QUARANTINE_TABLE, partitions, table_dirs

DERIVED_PREFIXES = ("rule_matches_", "rule_errors_")


@dataclass
class DailyVolume:
    events: list[tuple[str, int]]  # (YYYY-MM-DD, rows), oldest first, every day of the window
    quarantined: list[tuple[str, int]]


def daily_volume(lake_dir: Path, days: int = 7, now: datetime | None = None) -> DailyVolume:
    """Rows per day over the last `days` UTC days (today included)."""
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=days - 1)
    events = {f"{since + timedelta(days=i):%Y-%m-%d}": 0 for i in range(days)}
    quarantined = dict(events)
    day_of: dict[str, tuple[str, dict[str, int]]] = {}
    for table_dir in table_dirs(lake_dir):
        if table_dir.name.startswith(DERIVED_PREFIXES):
            continue
        bucket = quarantined if table_dir.name == QUARANTINE_TABLE else events
        for partition in partitions(table_dir, since=since):
            for data_file in live_files(partition.path):
                day_of[str(data_file)] = (f"{partition.hour:%Y-%m-%d}", bucket)
    if day_of:
        with duckdb.connect(":memory:") as con:
            rows = con.execute("SELECT file_name, num_rows FROM parquet_file_metadata(?)", [list(day_of)]).fetchall()
        for name, count in rows:
            day, bucket = day_of[name]
            if day in bucket:
                bucket[day] += int(count or 0)
    return DailyVolume(list(events.items()), list(quarantined.items()))
