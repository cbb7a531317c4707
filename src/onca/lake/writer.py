"""The lake writer: typed rows to Parquet files, published atomically into Hive partitions.

One call of `LakeWriter.write` turns a batch of rows (the row contract of onca.logs) into one Arrow table,
groups it by the hour of p_event_time (arrival order kept within the hour) and publishes one file per hour
partition:
written to a hidden temporary file in the partition directory, fsynced, renamed into place, and the
directory fsynced. A reader lists either the whole file or nothing.

Type drift never fails a batch: when Arrow refuses the batch, the columns are converted one by one and
every value that does not fit its declared type is nulled in the column and kept, as JSON with the
reason, in p_nonconforming; the row still lands.

File names come from a digest of the rows' p_row_id values, so writing the same batch again (a retry
after a crash) replaces the file with the same rows instead of adding a duplicate.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from onca.lake import index as lake_index
from onca.lake.layout import (
    DATA_SUFFIX,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    TIMESTAMP,
    TMP_SUFFIX,
    ensure_dir,
    fsync_dir,
    index_path,
    partition_of,
    table_name,
    with_standard_fields,
)
from onca.logs.model import QuarantinedRecord

_HOUR_US = 3_600_000_000
ROW_GROUP_ROWS = 128 * 1024  # small enough for row-group pruning on p_event_time, big enough to compress well
# A file with fewer rows is written without dictionary pages (each page costs a compression call, ~0.8 ms a
# file in all, for little gain at this size) and, when batches publish it, without an indicator sidecar: search
# reads such a file whole, which costs about what reading its sidecar would. Compaction rewrites small files
# into one with both. Input spread over many hours makes many small files.
SMALL_FILE_ROWS = 1_000
_CONVERSION_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError)


def write_parquet_atomic(table: pa.Table, target: Path, *, index: bool = True) -> Path:
    """Write `table` to `target` atomically: temp file, fsync, (indicator index), rename, fsync of the directory.

    The index sidecar is published before the data file, so a visible data file normally has its index;
    a data file without one (a crash in between, a file from another engine) is simply scanned by search.
    """
    directory = target.parent
    ensure_dir(directory)
    if index:
        sidecar = lake_index.build(table)
        if sidecar is not None:
            _publish(directory, index_path(target), lambda path: lake_index.write(sidecar, path))
    _publish(directory, target, lambda path: pq.write_table(
        table, path, compression="zstd", compression_level=1, row_group_size=ROW_GROUP_ROWS,
        use_dictionary=table.num_rows >= SMALL_FILE_ROWS, write_statistics=statistics_columns(table.schema)))
    fsync_dir(directory)
    return target


@functools.lru_cache(maxsize=256)
def statistics_columns(schema: pa.Schema) -> list[str]:
    """The leaf columns worth min/max statistics: times, numbers and booleans, which let engines skip row groups
    on range filters. Text and list columns get none: their bounds in unsorted data prune nothing (indicator
    search has its own index), and computing them costs ~15% of the write."""
    out: list[str] = []

    def walk(field: pa.Field, prefix: str) -> None:
        kind = field.type
        if pa.types.is_struct(kind):
            for child in kind:
                walk(child, f"{prefix}{field.name}.")
        elif pa.types.is_timestamp(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind) \
                or pa.types.is_boolean(kind) or pa.types.is_date(kind):
            out.append(prefix + field.name)

    for field in schema:
        walk(field, "")
    return out


def _publish(directory: Path, target: Path, write: Any) -> None:
    tmp = directory / f".{target.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def batch_name(row_ids: Sequence[str | None], prefix: str = "b") -> str:
    """A file name derived from the rows' ids: the same rows always give the same name."""
    if not row_ids or any(r is None for r in row_ids):
        return f"{prefix}-{uuid.uuid4().hex[:24]}{DATA_SUFFIX}"
    digest = hashlib.blake2b("\n".join(row_ids).encode(), digest_size=12).hexdigest()  # type: ignore[arg-type]
    return f"{prefix}-{digest}{DATA_SUFFIX}"


class LakeWriter:
    """Writes batches of rows into the lake at `root`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def write(self, log_type: str, rows: list[dict[str, Any]], schema: pa.Schema) -> list[Path]:
        """Store rows of one log type; returns the published files (one per hour partition touched)."""
        if not rows:
            return []
        schema = with_standard_fields(schema)
        micros = _event_micros(rows)
        if micros is not None:
            hours = micros // _HOUR_US
            if len(hours) > 1 and bool(np.any(hours[1:] < hours[:-1])):
                # Group by hour with a stable sort of the Python list, before conversion: Table.take on nested
                # columns costs ~2 us a row, and a full sort by time scatters the dicts in memory, which
                # doubles from_pylist's time; a stable sort by hour keeps arrival order within the hour.
                order = np.argsort(hours, kind="stable")
                rows = [rows[i] for i in order.tolist()]
                micros = micros[order]
        table = to_arrow(rows, schema)
        if micros is None:  # p_event_time itself drifted: the slow, general path
            return self.write_table(table_name(log_type), table)
        name = table_name(log_type)
        return [self.publish_hour(name, hour, part) for hour, part in _hour_slices(table, micros, "p_event_time")]

    def write_table(self, table: str, data: pa.Table, *, time_column: str = "p_event_time") -> list[Path]:
        """Group by the hour of `time_column`, publish one file per partition (fast path, compaction, quarantine)."""
        return [self.publish_hour(table, hour, part) for hour, part in group_by_hour(data, time_column)]

    def publish_hour(self, table: str, hour: int, data: pa.Table) -> Path:
        """Publish rows of one hour partition (`hour`: hours since the epoch) as one file, named by their ids."""
        row_ids = data.column("p_row_id").to_pylist() if "p_row_id" in data.column_names else []
        target = self.root / table / partition_of(datetime.fromtimestamp(hour * 3600, tz=UTC)) / batch_name(row_ids)
        return write_parquet_atomic(data, target, index=data.num_rows >= SMALL_FILE_ROWS)

    def write_quarantine(self, records: Iterable[QuarantinedRecord], parse_time: datetime) -> list[Path]:
        """Store records no parser accepted, raw bytes unchanged, partitioned by parse time."""
        columns: dict[str, list[Any]] = {name: [] for name in QUARANTINE_SCHEMA.names}
        for quarantined in records:
            source, record = quarantined.source, quarantined.record
            columns["p_parse_time"].append(parse_time)
            columns["p_source_id"].append(source.id)
            columns["p_source_label"].append(source.label)
            columns["origin"].append(record.origin)
            columns["position"].append(record.position)
            columns["raw"].append(bytes(record.data))
            columns["reasons"].append(orjson.dumps(quarantined.reasons).decode())
            columns["candidate_log_types"].append(list(source.log_types) or list(quarantined.reasons))
            key = f"{source.id}\0{record.origin}\0{record.position}".encode()
            columns["p_row_id"].append(hashlib.blake2b(key, digest_size=16).hexdigest())
        if not columns["raw"]:
            return []
        table = pa.Table.from_pydict(columns, schema=QUARANTINE_SCHEMA)
        return self.write_table(QUARANTINE_TABLE, table, time_column="p_parse_time")


def _event_micros(rows: list[dict[str, Any]]) -> np.ndarray | None:
    """p_event_time of each row as UTC microseconds (nulls from p_parse_time, then now); None if one is not a time."""
    try:
        times = pa.array([row.get("p_event_time") for row in rows], type=TIMESTAMP)
        if times.null_count:
            parsed = pa.array([row.get("p_parse_time") for row in rows], type=TIMESTAMP)
            times = times.fill_null(parsed).fill_null(pa.scalar(datetime.now(UTC), type=TIMESTAMP))
    except _CONVERSION_ERRORS:
        return None
    return times.cast(pa.int64()).to_numpy()


def group_by_hour(data: pa.Table, time_column: str = "p_event_time") -> list[tuple[int, pa.Table]]:
    """`data` cut by the hour of `time_column` (hours since the epoch, ascending), nulls in it filled (see
    _fill_times). Rows keep their order within an hour: a stable sort by hour, and no reordering at all when the
    hours already ascend (Table.take on nested columns costs ~0.7 µs a row; a file is one row group, so sorting
    inside the hour would not make its statistics any tighter)."""
    if not data.num_rows:
        return []
    micros = _fill_times(data, time_column).cast(pa.int64()).to_numpy()
    hours = micros // _HOUR_US
    if len(hours) > 1 and bool(np.any(hours[1:] < hours[:-1])):
        order = np.argsort(hours, kind="stable")
        data = data.take(order)
        micros = micros[order]
    return _hour_slices(data, micros, time_column)


def _hour_slices(data: pa.Table, micros: np.ndarray, time_column: str) -> list[tuple[int, pa.Table]]:
    """`data` (grouped by hour of `micros`, its time column with nulls filled) as one slice per hour."""
    position = data.schema.get_field_index(time_column)
    if data.column(position).null_count:
        data = data.set_column(position, data.schema.field(position), pa.array(micros, type=TIMESTAMP))
    hours = micros // _HOUR_US
    cuts = (np.flatnonzero(hours[1:] != hours[:-1]) + 1).tolist()
    return [(int(hours[start]), data.slice(start, end - start))
            for start, end in zip([0, *cuts], [*cuts, len(micros)], strict=True)]


def _fill_times(data: pa.Table, time_column: str) -> pa.ChunkedArray:
    """The partitioning timestamps; a missing p_event_time falls back to p_parse_time, then to now."""
    times = data.column(time_column)
    if times.null_count:
        fallback = data.column("p_parse_time") if "p_parse_time" in data.column_names else times
        times = pa.chunked_array([times.combine_chunks().fill_null(fallback.combine_chunks())])
        if times.null_count:
            times = times.fill_null(pa.scalar(datetime.now(UTC), type=TIMESTAMP))
    return times.cast(TIMESTAMP)


# --- Arrow conversion, with the type-drift fallback ---------------------------------------------------------


def to_arrow(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows to an Arrow table of `schema`; values that do not fit go to p_nonconforming (never raises on drift)."""
    try:
        # Measured against column-wise pa.array over itemgetter transposes: from_pylist is as fast or faster.
        return pa.Table.from_pylist(rows, schema=schema)
    except _CONVERSION_ERRORS:
        return _to_arrow_conforming(rows, schema)


def _to_arrow_conforming(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Column by column; in a column Arrow refuses, cell by cell, replacing what does not fit with null."""
    bad: dict[int, dict[str, Any]] = {}
    arrays: list[pa.Array] = []
    for field in schema:
        if field.name == "p_nonconforming":
            arrays.append(pa.nulls(len(rows), pa.string()))  # filled below, once every column is known
            continue
        values = [row.get(field.name) for row in rows]
        try:
            arrays.append(pa.array(values, type=field.type))
            continue
        except _CONVERSION_ERRORS:
            pass
        fixed = []
        for i, value in enumerate(values):
            try:
                pa.array([value], type=field.type)
                fixed.append(value)
            except _CONVERSION_ERRORS:
                problems = bad.setdefault(i, {})
                fixed.append(_fit(value, field.type, field.name, problems))
        arrays.append(pa.array(fixed, type=field.type))
    if "p_nonconforming" in schema.names:
        position = schema.get_field_index("p_nonconforming")
        arrays[position] = pa.array([_merge_nonconforming(row.get("p_nonconforming"), bad.get(i))
                                     for i, row in enumerate(rows)], type=pa.string())
    return pa.Table.from_arrays(arrays, schema=schema)


def _fit(value: Any, type_: pa.DataType, path: str, problems: dict[str, Any]) -> Any:
    """The largest part of `value` that fits `type_`; each part that does not is recorded under its path."""
    if value is None:
        return None
    if pa.types.is_struct(type_):
        if not isinstance(value, dict):
            return _reject(value, type_, path, problems)
        return {child.name: _fit(value.get(child.name), child.type, f"{path}.{child.name}", problems)
                for child in type_}
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        if not isinstance(value, list | tuple):
            return _reject(value, type_, path, problems)
        return [_fit(item, type_.value_type, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    try:
        pa.scalar(value, type=type_)
    except _CONVERSION_ERRORS:
        return _reject(value, type_, path, problems)
    return value


def _reject(value: Any, type_: pa.DataType, path: str, problems: dict[str, Any]) -> None:
    problems[path] = {"value": value, "reason": f"expected {_type_label(type_)}, got {_json_kind(value)}"}
    return None


def _type_label(type_: pa.DataType) -> str:
    if pa.types.is_struct(type_):
        return "object"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return "array"
    return str(type_)


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", tuple: "array", str: "string", bool: "boolean", int: "number",
             float: "number"}
    return kinds.get(type(value), type(value).__name__)


def _merge_nonconforming(existing: Any, found: dict[str, Any] | None) -> str | None:
    if not found:
        return existing if existing is None or isinstance(existing, str) else _dumps(existing)
    merged: dict[str, Any] = {}
    if isinstance(existing, str):
        try:
            loaded = orjson.loads(existing)
            merged = loaded if isinstance(loaded, dict) else {"": {"value": loaded, "reason": "unparsed"}}
        except orjson.JSONDecodeError:
            merged = {"": {"value": existing, "reason": "p_nonconforming was not JSON"}}
    elif isinstance(existing, dict):
        merged = dict(existing)
    merged.update(found)
    return _dumps(merged)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
