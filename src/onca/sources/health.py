"""What the lake says about each source: when its last event arrived, how many, and what was quarantined.

Every row the pipeline writes carries the source's name in `p_source_label` and the time it was parsed in
`p_parse_time`; records no parser accepted are in the quarantine table with the same columns, the raw bytes
and each parser's reason. Counts and times are not log data; quarantined samples are (callers check
`logs:read` before asking for them). Nothing here writes to the lake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from onca.alerts.lake import errors_table, matches_table
from onca.lake.catalog import Catalog
from onca.lake.layout import QUARANTINE_TABLE

RECENT = timedelta(hours=24)
# Tables holding copies of events already counted in their log type's table (rule matches and errors).
DERIVED_PREFIXES = (matches_table(""), errors_table(""))
SAMPLE_BYTES = 2000  # a sample's raw bytes are cut here: enough to see why it failed, not a bulk export


@dataclass
class SourceHealth:
    """One source's numbers; `events_by_log_type` counts every stored event, `events_24h` those parsed lately."""

    name: str
    last_event: datetime | None = None
    events: int = 0
    events_24h: int = 0
    events_by_log_type: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    quarantined_24h: int = 0
    last_quarantined: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "last_event": _iso(self.last_event), "events": self.events,
                "events_24h": self.events_24h, "events_by_log_type": self.events_by_log_type,
                "quarantined": self.quarantined, "quarantined_24h": self.quarantined_24h,
                "last_quarantined": _iso(self.last_quarantined)}


@dataclass(frozen=True)
class QuarantinedSample:
    parse_time: datetime | None
    origin: str
    position: int | None
    raw: str  # decoded as UTF-8 with replacement characters, cut at SAMPLE_BYTES
    truncated: bool
    size: int  # of the whole raw record, in bytes
    reasons: dict[str, str]  # log type -> why its parser refused the record
    row_id: str

    def as_json(self) -> dict[str, Any]:
        return {"parse_time": _iso(self.parse_time), "origin": self.origin, "position": self.position,
                "raw": self.raw, "truncated": self.truncated, "size": self.size, "reasons": self.reasons,
                "row_id": self.row_id}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source_health(lake: Path, names: list[str], *, now: datetime | None = None) -> dict[str, SourceHealth]:
    """The numbers of each named source (zeros for one with nothing stored yet), in one pass over the lake."""
    result = {name: SourceHealth(name) for name in names}
    if not names:
        return result
    since = (now or datetime.now(UTC)) - RECENT
    con = Catalog(lake).connect()
    try:
        tables = [t for t in _views(con) if t != QUARANTINE_TABLE and not t.startswith(DERIVED_PREFIXES)]
        if tables:
            # One statement over every table, restricted to the named sources (a source's events may land in
            # any of its log types' tables).
            union = " UNION ALL ".join(
                f"SELECT p_source_label AS source, p_log_type AS log_type, p_parse_time FROM {_ident(t)} "
                f"WHERE p_source_label IN (SELECT unnest($names))" for t in tables)
            rows = con.execute(
                f"SELECT source, log_type, count(*), count(*) FILTER (WHERE p_parse_time >= $since), "
                f"max(p_parse_time) FROM ({union}) GROUP BY source, log_type",
                {"names": names, "since": since}).fetchall()
            for source, log_type, count, recent, last in rows:
                health = result[source]
                health.events += count
                health.events_24h += recent
                health.events_by_log_type[log_type or "(unknown)"] = count
                if last is not None and (health.last_event is None or last > health.last_event):
                    health.last_event = last
        if QUARANTINE_TABLE in _views(con):
            rows = con.execute(
                f"SELECT p_source_label, count(*), count(*) FILTER (WHERE p_parse_time >= $since), "
                f"max(p_parse_time) FROM {QUARANTINE_TABLE} WHERE p_source_label IN (SELECT unnest($names)) "
                f"GROUP BY 1", {"names": names, "since": since}).fetchall()
            for source, count, recent, last in rows:
                result[source].quarantined, result[source].quarantined_24h = count, recent
                result[source].last_quarantined = last
    finally:
        con.close()
    return result


def quarantine_samples(lake: Path, name: str, *, limit: int = 20) -> list[QuarantinedSample]:
    """The source's most recently quarantined records, newest first, each with its parsers' reasons."""
    con = Catalog(lake).connect()
    try:
        if QUARANTINE_TABLE not in _views(con):
            return []
        rows = con.execute(
            f"SELECT p_parse_time, origin, position, array_slice(raw, 1, {SAMPLE_BYTES}), octet_length(raw), reasons, "
            f"p_row_id FROM {QUARANTINE_TABLE} WHERE p_source_label = $name "
            f"ORDER BY p_parse_time DESC, origin, position LIMIT $limit", {"name": name, "limit": limit}).fetchall()
    finally:
        con.close()
    return [QuarantinedSample(parse_time, origin or "", position, bytes(raw or b"").decode("utf-8", "replace"),
                              size > SAMPLE_BYTES, int(size or 0), _reasons(reasons), row_id or "")
            for parse_time, origin, position, raw, size, reasons, row_id in rows]


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def _reasons(text: str | None) -> dict[str, str]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {"(unreadable)": str(text)}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {"(reasons)": str(data)}
