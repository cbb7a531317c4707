"""The lake tables of matched events and rule errors, one pair per log type (as the reference's
panther_rule_matches.<table> / panther_rule_errors.<table>): rule_matches_<table> and rule_errors_<table>.

A table per log type keeps the event's typed columns: a single table over every log type would make the
same column name carry different types. Rows are the matched event's columns plus the p_rule_* columns;
file names come from the rows' p_row_id values (LakeWriter), so a replayed batch replaces its files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from onca.lake.layout import STRINGS, table_name, with_standard_fields
from onca.lake.writer import LakeWriter, to_arrow

MATCH_FIELDS = (
    pa.field("p_rule_id", pa.string()),
    pa.field("p_alert_id", pa.string()),
    pa.field("p_alert_context", pa.string()),
    pa.field("p_rule_dedup", pa.string()),
    pa.field("p_rule_severity", pa.string()),
    pa.field("p_rule_tags", STRINGS),
    pa.field("p_rule_reports", pa.string()),  # JSON {report: [ids]}: a map type buys nothing for search
)
ERROR_FIELDS = (
    pa.field("p_rule_id", pa.string()),
    pa.field("p_alert_id", pa.string()),
    pa.field("p_rule_error", pa.string()),
    pa.field("p_rule_error_type", pa.string()),
)


def matches_table(log_type: str) -> str:
    return f"rule_matches_{table_name(log_type)}"


def errors_table(log_type: str) -> str:
    return f"rule_errors_{table_name(log_type)}"


def match_row(event: Mapping[str, Any], *, rule_id: str, alert_id: str | None, alert_context: str | None,
              dedup: str, severity: str, tags: Sequence[str], reports: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    row = dict(event)
    row.update(p_rule_id=rule_id, p_alert_id=alert_id, p_alert_context=alert_context, p_rule_dedup=dedup,
               p_rule_severity=severity, p_rule_tags=list(tags),
               p_rule_reports=json.dumps(reports, sort_keys=True) if reports else None)
    return row


def error_row(event: Mapping[str, Any], *, rule_id: str, alert_id: str | None, error: str,
              error_type: str) -> dict[str, Any]:
    row = dict(event)
    row.update(p_rule_id=rule_id, p_alert_id=alert_id, p_rule_error=error, p_rule_error_type=error_type)
    return row


def table_schema(rows: Sequence[Mapping[str, Any]], schema: pa.Schema | None, extra: Sequence[pa.Field]) -> pa.Schema:
    """The log type's schema (or one inferred from the rows) plus the standard and the p_rule_* fields."""
    extra_names = {f.name for f in extra}
    base = with_standard_fields(schema if schema is not None else _infer(rows, extra_names))
    return pa.schema([*(f for f in base if f.name not in extra_names), *extra], metadata=base.metadata)


def _infer(rows: Sequence[Mapping[str, Any]], skip: set[str]) -> pa.Schema:
    """Column types from the values; a column Arrow cannot type (mixed kinds) becomes a string column, and
    the values that do not fit it end in p_nonconforming, as with any drift."""
    standard = {f.name for f in with_standard_fields(pa.schema([]))}
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(k for k in row if k not in skip and k not in standard))
    fields = []
    for name in names:
        try:
            type_ = pa.array([row.get(name) for row in rows]).type
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            type_ = pa.string()
        fields.append(pa.field(name, pa.string() if pa.types.is_null(type_) else type_))
    return pa.schema(fields)


def write_rows(writer: LakeWriter, table: str, rows: list[dict[str, Any]], schema: pa.Schema | None,
               extra: Sequence[pa.Field]) -> list[Path]:
    if not rows:
        return []
    return writer.write_table(table, to_arrow(rows, table_schema(rows, schema, extra)))
