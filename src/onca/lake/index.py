"""The indicator index: a small Parquet sidecar per data file listing the distinct indicator values it holds.

For a data file `<name>.parquet` the sidecar `_<name>.idx` holds one row per distinct (value, kind) of
the file's p_any_* lists (`kind` is the p_any_* column), sorted by value and cut into small row groups.
The min/max statistics of those row groups let a reader skip everything but the one group that can hold
a value, so asking "which files mention X" costs a footer read per file and no data file at all; search
then scans only the files that do. A value that occurs nowhere touches no data file.

The sidecar is derived data: compaction rebuilds it, it is deleted with its data file, and a data file
without one is simply scanned (search.py). The `_` prefix and the `.idx` suffix keep it out of
`**/*.parquet` globs and out of Hive engines.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from onca.lake.layout import INDICATOR_COLUMNS

INDEX_SCHEMA = pa.schema([pa.field("value", pa.string()), pa.field("kind", pa.string())])
INDEX_ROW_GROUP = 4096  # a lookup decodes one group of this many entries per file at most


def build(table: pa.Table) -> pa.Table | None:
    """The distinct indicator values of a data table, sorted (None when it has none)."""
    parts = []
    for column in INDICATOR_COLUMNS:
        if column not in table.column_names:
            continue
        lists = table.column(column)
        if lists.null_count == len(lists) or not pa.types.is_list(lists.type):
            continue
        values = pc.unique(pc.list_flatten(lists).combine_chunks()).drop_null().cast(pa.string())
        if len(values):
            parts.append(pa.Table.from_arrays([values, pa.repeat(pa.scalar(column), len(values))],
                                              schema=INDEX_SCHEMA))
    if not parts:
        return None
    entries = pa.concat_tables(parts)
    return entries.take(pc.sort_indices(entries, sort_keys=[("value", "ascending"), ("kind", "ascending")]))


def write(entries: pa.Table, path: Path) -> None:
    pq.write_table(entries, path, compression="zstd", row_group_size=INDEX_ROW_GROUP,
                   use_dictionary=["kind"], write_statistics=True)
