"""The DuckDB catalog: one view per lake table (and `quarantine`) over its Hive-partitioned Parquet files.

Views read `<lake>/<table>/**/*.parquet` with hive_partitioning (dt, hour become columns) and
union_by_name (files written before a schema gained a field read that field as NULL). When a table has an
interrupted compaction (compaction.py), its view lists the live files explicitly instead, so a row is
never counted twice. Nothing here writes to the lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from onca.lake.compaction import live_files, manifests
from onca.lake.layout import partitions, table_dirs

_OPTIONS = "hive_partitioning=true, hive_types={'dt': 'DATE', 'hour': 'INTEGER'}, union_by_name=true"


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    rows: int
    files: int


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Catalog:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def table_files(self, table: str) -> list[Path]:
        return [f for p in partitions(self.root / table) for f in live_files(p.path)]

    def source_sql(self, table: str) -> str | None:
        """The read_parquet(...) expression of a table, or None when it has no data file yet."""
        table_dir = self.root / table
        parts = list(partitions(table_dir))
        if not any(manifests(p.path) for p in parts):
            if not any(f for p in parts for f in p.path.glob("*.parquet")):
                return None
            glob = str(table_dir) + "/**/*.parquet"
            return f"read_parquet({_literal(glob)}, {_OPTIONS})"
        files = self.table_files(table)
        if not files:
            return None
        return f"read_parquet([{', '.join(_literal(str(f)) for f in files)}], {_OPTIONS})"

    def attach(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Create the views on `con`; returns the table names."""
        names = []
        for table_dir in table_dirs(self.root):
            source = self.source_sql(table_dir.name)
            if source is None:
                continue
            con.execute(f"CREATE OR REPLACE VIEW {_ident(table_dir.name)} AS SELECT * FROM {source}")
            names.append(table_dir.name)
        return names

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view per table."""
        con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                 "autoload_known_extensions": False})
        self.attach(con)
        return con

    def tables(self) -> list[TableInfo]:
        """Every table with its row count (from Parquet footers: no data page is read) and file count."""
        infos = []
        with duckdb.connect(":memory:") as con:
            for table_dir in table_dirs(self.root):
                files = self.table_files(table_dir.name)
                rows = 0
                if files:
                    listing = ", ".join(_literal(str(f)) for f in files)
                    rows = con.execute(
                        f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata([{listing}])").fetchone()[0]
                infos.append(TableInfo(table_dir.name, int(rows), len(files)))
        return infos
