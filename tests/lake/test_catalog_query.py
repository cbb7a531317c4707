from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from onca.lake.catalog import Catalog
from onca.lake.query import QueryError, execute_query, format_csv, format_json, format_table, run_query
from onca.lake.writer import LakeWriter

from .conftest import SCHEMA, T0, make_row


@pytest.fixture
def filled(lake):
    writer = LakeWriter(lake)
    writer.write("Test.Events", [make_row(i) for i in range(5)], SCHEMA)
    wider = SCHEMA.append(pa.field("region", pa.string()))
    writer.write("Test.Events", [make_row(i, region="eu-west-1") for i in range(5, 8)], wider)
    writer.write("Other.Events", [make_row(100, log_type="Other.Events")], SCHEMA)
    return lake


def test_views_union_by_name_with_a_column_added_later(filled):
    con = Catalog(filled).connect()
    got = con.execute("SELECT count(*), count(region), min(dt), min(hour) FROM test_events").fetchone()
    assert got[:2] == (8, 3) and str(got[2]) == "2025-03-01" and got[3] == 10
    assert {t.name: (t.rows, t.files) for t in Catalog(filled).tables()} == {"other_events": (1, 1),
                                                                            "test_events": (8, 2)}


def test_query_limit_and_formats(filled):
    columns, rows = run_query(filled, "SELECT p_row_id, bytes FROM test_events ORDER BY bytes", limit=3)
    assert columns == ["p_row_id", "bytes"] and [r[1] for r in rows] == [0, 1, 2]
    assert execute_query(filled, "SELECT * FROM test_events", limit=3).truncated
    assert not execute_query(filled, "SELECT * FROM test_events", limit=8).truncated
    assert format_table(columns, rows).splitlines()[0].split() == ["p_row_id", "bytes"]
    assert format_csv(columns, rows).splitlines()[1] == "Test.Events-000000,0"
    assert '"bytes": 0' in format_json(columns, rows)
    _, rows = run_query(filled, "WITH x AS (SELECT p_event_time FROM other_events) SELECT * FROM x")
    assert rows == [(T0,)]
    assert ("test_events",) in run_query(filled, "SHOW TABLES")[1]
    assert run_query(filled, "DESCRIBE test_events")[1]
    assert run_query(filled, "EXPLAIN SELECT 1")[1]


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO 'out.csv'", "CREATE TABLE t AS SELECT 1", "INSERT INTO x VALUES (1)", "DROP VIEW test_events",
    "ATTACH 'x.db'", "SET enable_external_access=true", "EXPLAIN ANALYZE COPY (SELECT 1) TO 'out.csv'",
    "SELECT 1; COPY (SELECT 1) TO 'out.csv'", "PRAGMA version", "CALL pragma_version()",
])
def test_anything_but_reading_is_refused(filled, sql, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(QueryError):
        run_query(filled, sql)
    assert not (tmp_path / "out.csv").exists()


def test_files_outside_the_lake_cannot_be_read(filled, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    with pytest.raises(QueryError, match="disabled by configuration"):
        run_query(filled, f"SELECT * FROM read_text('{secret}')")


def test_timeout_interrupts_a_long_query(filled):
    finished = threading.Event()
    with pytest.raises(QueryError, match="timed out"):
        run_query(filled, "SELECT count(*) FROM range(100000000000) a, range(10) b", timeout_s=0.3)
        finished.set()
    assert not finished.is_set()
