"""Indicator search: every row of every table whose p_any_* columns hold a value.

How it stays fast on a large lake:

1. Partition pruning: with `since`, only hour directories that can hold later events are listed.
2. File pruning by the per-file indicator index (index.py): one DuckDB query over the sidecars of those
   files names the files that hold the value; the sidecars are sorted by value in small row groups,
   so each costs a footer read and at most one small row group. A value that is nowhere stops here.
3. One DuckDB query per table over only those files: list_has_any on the indicator column, newest
   first, LIMIT pushed into a top-N (a value in half the rows does not materialise half the lake).

Data files without a sidecar (written by another tool, or a crash between index and data publish) are
scanned with list_contains instead, so the answer never depends on the index being there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from onca.lake.compaction import live_files
from onca.lake.layout import QUARANTINE_TABLE, index_path, partitions, table_dirs

KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "ip": ("p_any_ip_addresses",),
    "domain": ("p_any_domain_names",),
    "user": ("p_any_usernames",),
    "email": ("p_any_emails",),
    "hash": ("p_any_md5_hashes", "p_any_sha1_hashes", "p_any_sha256_hashes"),
}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FOLDED = {"domain", "email", "hash"}  # case-insensitive by nature: also look for the lower-cased form
SUMMARY_COLUMNS = 6


@dataclass(frozen=True, slots=True)
class Hit:
    table: str
    p_event_time: datetime | None
    p_log_type: str | None
    p_row_id: str | None
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "p_event_time": self.p_event_time, "p_log_type": self.p_log_type,
                "p_row_id": self.p_row_id, "summary": self.summary}



def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`24h`, `30m`, `7d`, `2w`, or an ISO 8601 time (UTC when it has no offset); ValueError otherwise."""
    match = _DURATION.match(text)
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{text!r}: use a duration like 24h, 30m, 7d, or an ISO time") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

def search(root: Path | str, kind: str, value: str, since: datetime | None = None, *,
           limit: int | None = 1000) -> list[Hit]:
    """Rows mentioning `value` as an indicator of `kind`, newest first, at most `limit` (None: all)."""
    if kind not in KIND_COLUMNS:
        raise ValueError(f"unknown indicator kind {kind!r}; use one of {', '.join(KIND_COLUMNS)}")
    values = sorted({value.strip(), value.strip().lower()} if kind in _FOLDED else {value.strip()})
    columns = KIND_COLUMNS[kind]
    since = since.astimezone(UTC) if since is not None else None

    indexed: dict[str, list[Path]] = defaultdict(list)
    scanned: dict[str, list[Path]] = defaultdict(list)
    for table_dir in table_dirs(Path(root)):
        if table_dir.name == QUARANTINE_TABLE:
            continue
        for partition in partitions(table_dir, since):
            for data in live_files(partition.path):
                (indexed if index_path(data).exists() else scanned)[table_dir.name].append(data)

    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    try:
        holding = _files_holding(con, [f for files in indexed.values() for f in files], values, columns)
        hits: list[Hit] = []
        for table in sorted(set(indexed) | set(scanned)):
            matched = {f: holding[f] for f in indexed.get(table, []) if f in holding}
            if matched or scanned.get(table):
                hits.extend(_scan(con, table, matched, scanned.get(table, []), values, columns, since, limit))
    finally:
        con.close()
    hits.sort(key=lambda h: (h.p_event_time or datetime.min.replace(tzinfo=UTC), h.p_row_id or ""), reverse=True)
    return hits if limit is None else hits[:limit]


def _files_holding(con: duckdb.DuckDBPyConnection, data: list[Path], values: list[str],
                   columns: tuple[str, ...]) -> dict[Path, set[str]]:
    """The data files (among `data`, all indexed) whose sidecar lists one of the values, with the columns."""
    if not data:
        return {}
    by_index = {str(index_path(f)): f for f in data}
    rows = con.execute(
        f"SELECT DISTINCT filename, kind FROM read_parquet({_array(by_index)}, filename=true) "
        f"WHERE value IN ({_in(values)}) AND kind IN ({_in(columns)})").fetchall()
    holding: dict[Path, set[str]] = defaultdict(set)
    for name, kind in rows:
        holding[by_index[name]].add(kind)
    return holding


def _summary_columns(schema: pa.Schema) -> list[str]:
    """The top-level scalar fields of a table (not p_ fields), in schema order; the first few make the summary."""
    return [field.name for field in schema
            if not field.name.startswith("p_")
            and (pa.types.is_string(field.type) or pa.types.is_integer(field.type)
                 or pa.types.is_floating(field.type) or pa.types.is_boolean(field.type))]


def _scan(con: duckdb.DuckDBPyConnection, table: str, matched: dict[Path, set[str]], unindexed: list[Path],
          values: list[str], columns: tuple[str, ...], since: datetime | None, limit: int | None) -> list[Hit]:
    """list_has_any over the given files of one table, newest first.

    `matched` files come with the indicator columns their index found the value in; only the schemas of
    `unindexed` files are read, to leave out columns no file has (DuckDB would refuse them).
    """
    files = [*matched, *unindexed]
    schema = pq.read_schema(files[0])
    names = set(schema.names).union(*matched.values())
    for data in unindexed:
        names.update(pq.read_schema(data).names)
    summary = _summary_columns(schema)[:SUMMARY_COLUMNS]  # each column read costs: keep few
    present = [c for c in columns if c in names]
    if not present:
        return []
    fixed = [c if c in names else f"NULL AS {c}" for c in ("p_event_time", "p_log_type", "p_row_id")]
    condition = " OR ".join(f"list_contains({_ident(c)}, {_literal(values[0])})" if len(values) == 1
                            else f"list_has_any({_ident(c)}, {_array(values)})" for c in present)
    if since is not None and "p_event_time" in names:
        condition = f"({condition}) AND p_event_time >= {_literal(since.isoformat())}::TIMESTAMPTZ"
    sql = (f"SELECT {', '.join(fixed)}{''.join(', ' + _ident(c) for c in summary)} "
           f"FROM read_parquet({_array(files)}, union_by_name=true) WHERE {condition} "
           "ORDER BY 1 DESC NULLS LAST, 3 DESC")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    result = con.execute(sql).fetchall()
    hits = []
    for event_time, log_type, row_id, *rest in result:
        shown = [f"{name}={value}" for name, value in zip(summary, rest, strict=True) if value is not None]
        hits.append(Hit(table, event_time, log_type, row_id, " ".join(shown)))
    return hits


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(items: Any) -> str:
    """Items as the inside of an SQL IN (...) list of string literals."""
    return ", ".join(_literal(str(i)) for i in items)


def _array(items: Any) -> str:
    """Items as an SQL list literal ['a', 'b'] (for read_parquet's file list)."""
    return f"[{_in(items)}]"
