"""The lake's tables with their columns and sizes: what a user writing SQL needs to see beside the editor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from onca.lake.catalog import Catalog
from onca.lake.query import connect_read_only


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    data_type: str


@dataclass(slots=True)
class TableDescription:
    name: str
    rows: int
    files: int
    columns: list[Column] = field(default_factory=list)


def describe_tables(root: Path) -> list[TableDescription]:
    """Every table of the catalog (tables without a data file yet have no columns), by name."""
    tables = {info.name: TableDescription(info.name, info.rows, info.files) for info in Catalog(root).tables()}
    con = connect_read_only(root)  # the views query.py runs SQL against: their columns are what users see
    try:
        found = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "ORDER BY table_name, ordinal_position").fetchall()
    finally:
        con.close()
    for table, column, data_type in found:
        if table in tables:
            tables[table].columns.append(Column(column, data_type))
    return sorted(tables.values(), key=lambda t: t.name)
