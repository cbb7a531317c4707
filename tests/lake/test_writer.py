from __future__ import annotations

import os
from datetime import timedelta

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest

from onca.lake import writer as writer_module
from onca.lake.catalog import Catalog
from onca.lake.layout import index_path, table_name
from onca.lake.search import search
from onca.lake.writer import LakeWriter
from onca.logs.model import QuarantinedRecord, RawRecord, Source

from .conftest import SCHEMA, T0, make_row


def test_table_names():
    assert table_name("AWS.CloudTrail") == "aws_cloudtrail"
    assert table_name("Zeek.DNS") == "zeek_dns"


def test_rows_land_in_hive_partitions_by_event_hour(lake):
    rows = [make_row(1, T0), make_row(2, T0 + timedelta(minutes=40)), make_row(3, T0 - timedelta(hours=11))]
    files = LakeWriter(lake).write("Test.Events", rows, SCHEMA)
    relative = sorted(str(f.relative_to(lake).parent) for f in files)
    assert relative == ["test_events/dt=2025-02-28/hour=23", "test_events/dt=2025-03-01/hour=10"]
    assert all(f.name.endswith(".parquet") and f.stat().st_size > 0 for f in files)
    metadata = pq.read_metadata(files[0])
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    # Plain Hive-partitioned Parquet: readable with no knowledge of Onca.
    con = duckdb.connect()
    got = con.execute(f"SELECT dt, hour, p_row_id FROM read_parquet('{lake}/test_events/**/*.parquet', "
                      "hive_partitioning=true) ORDER BY p_row_id").fetchall()
    assert [(str(dt), int(h), r) for dt, h, r in got] == [
        ("2025-03-01", 10, "Test.Events-000001"), ("2025-03-01", 10, "Test.Events-000002"),
        ("2025-02-28", 23, "Test.Events-000003")]


def test_values_round_trip_typed(lake):
    LakeWriter(lake).write("Test.Events", [make_row(7)], SCHEMA)
    row = Catalog(lake).connect().sql("SELECT * FROM test_events").to_arrow_table().to_pylist()[0]
    assert row["userIdentity"] == {"type": "IAMUser", "userName": "alice"}
    assert row["bytes"] == 7 and row["tags"] == ["a", "b"]
    assert row["p_event_time"] == T0
    assert row["p_any_emails"] is None  # standard fields the schema lacked are added, null


def test_same_batch_twice_does_not_duplicate(lake):
    writer = LakeWriter(lake)
    rows = [make_row(i) for i in range(5)]
    first = writer.write("Test.Events", rows, SCHEMA)
    second = writer.write("Test.Events", rows, SCHEMA)
    assert first == second
    assert Catalog(lake).tables()[0].rows == 5


def test_publish_is_atomic_and_temp_files_are_invisible(lake, monkeypatch):
    writer = LakeWriter(lake)
    writer.write("Test.Events", [make_row(1)], SCHEMA)
    partition = next((lake / "test_events").glob("dt=*/hour=*"))
    seen = {}
    real_write = pq.write_table

    def write_then_look(table, where, **kwargs):
        real_write(table, where, **kwargs)
        # The bytes are on disk under a temporary name; a reader listing data right now must not see them.
        seen["tmp"] = os.path.basename(where)
        seen["count"] = Catalog(lake).connect().execute("SELECT count(*) FROM test_events").fetchone()[0]
        seen["data"] = sorted(p.name for p in partition.glob("*.parquet"))
        raise OSError("disk full")

    monkeypatch.setattr(writer_module.pq, "write_table", write_then_look)
    with pytest.raises(OSError):
        writer.write("Test.Events", [make_row(2)], SCHEMA)
    assert seen["tmp"].startswith(".") and not seen["tmp"].endswith(".parquet")
    assert seen["count"] == 1 and len(seen["data"]) == 1
    assert sorted(p.name for p in partition.iterdir() if p.name.startswith(".")) == []  # temp cleaned up
    # A stale temp file left by a killed writer is ignored by the catalog.
    (partition / ".b-dead.parquet.1234.tmp").write_bytes(b"PAR1 half a file")
    assert Catalog(lake).connect().execute("SELECT count(*) FROM test_events").fetchone()[0] == 1


def test_struct_column_receiving_a_list_lands_with_nonconforming(lake):
    rows = [make_row(1), make_row(2, userIdentity=[{"type": "Root"}]), make_row(3, bytes="lots"),
            make_row(4, p_nonconforming=orjson.dumps({"x": {"value": 1, "reason": "earlier"}}).decode())]
    LakeWriter(lake).write("Test.Events", rows, SCHEMA)
    got = {r["p_row_id"]: r for r in Catalog(lake).connect().sql(
        "SELECT p_row_id, userIdentity, bytes, p_nonconforming FROM test_events").to_arrow_table().to_pylist()}
    assert len(got) == 4
    assert got["Test.Events-000001"]["p_nonconforming"] is None
    drift = got["Test.Events-000002"]
    assert drift["userIdentity"] is None
    assert orjson.loads(drift["p_nonconforming"]) == {
        "userIdentity": {"value": [{"type": "Root"}], "reason": "expected object, got array"}}
    assert got["Test.Events-000003"]["bytes"] is None
    assert orjson.loads(got["Test.Events-000003"]["p_nonconforming"])["bytes"]["value"] == "lots"
    assert orjson.loads(got["Test.Events-000004"]["p_nonconforming"]) == {"x": {"value": 1, "reason": "earlier"}}


def test_nested_drift_keeps_the_rest_of_the_object(lake):
    rows = [make_row(1, userIdentity={"type": "IAMUser", "userName": {"first": "al"}}), make_row(2)]
    LakeWriter(lake).write("Test.Events", rows, SCHEMA)
    got = Catalog(lake).connect().execute(
        "SELECT userIdentity, p_nonconforming FROM test_events WHERE p_row_id = 'Test.Events-000001'").fetchone()
    assert got[0] == {"type": "IAMUser", "userName": None}
    assert orjson.loads(got[1]) == {"userIdentity.userName": {"value": {"first": "al"},
                                                              "reason": "expected string, got object"}}


def test_missing_event_time_falls_back_to_parse_time(lake):
    files = LakeWriter(lake).write("Test.Events", [make_row(1, p_event_time=None)], SCHEMA)
    assert "dt=2025-03-02/hour=10" in str(files[0])


def test_quarantine_round_trip_keeps_raw_bytes(lake):
    source = Source(id="src-9", label="uploads", log_types=["AWS.CloudTrail", "Okta.SystemLog"])
    raws = [b"\xff\xfe not utf-8 \x00", b'{"truncated": ', b"", bytes(range(256))]
    records = [QuarantinedRecord(source, RawRecord(data, "/logs/a.gz", i),
                                 {"AWS.CloudTrail": "not JSON", "Okta.SystemLog": "missing published"})
               for i, data in enumerate(raws)]
    files = LakeWriter(lake).write_quarantine(records, parse_time=T0)
    assert "quarantine/dt=2025-03-01/hour=10" in str(files[0])
    got = Catalog(lake).connect().sql(
        "SELECT raw, reasons, candidate_log_types, origin, position, p_source_id, p_source_label, p_parse_time "
        "FROM quarantine ORDER BY position").fetchall()
    assert [bytes(r[0]) for r in got] == raws
    assert orjson.loads(got[0][1]) == {"AWS.CloudTrail": "not JSON", "Okta.SystemLog": "missing published"}
    assert got[0][2] == ["AWS.CloudTrail", "Okta.SystemLog"]
    assert got[3][3:] == ("/logs/a.gz", 3, "src-9", "uploads", T0)


def test_small_files_have_no_index_nor_dictionaries_and_are_still_searched(lake, monkeypatch):
    monkeypatch.setattr(writer_module, "SMALL_FILE_ROWS", 3)
    small = LakeWriter(lake).write("Test.Events", [make_row(1, T0), make_row(2, T0)], SCHEMA)
    indexed = LakeWriter(lake).write("Test.Events", [make_row(n, T0, ip="10.9.9.9") for n in range(3, 6)], SCHEMA)
    assert not index_path(small[0]).exists() and index_path(indexed[0]).exists()
    assert not pq.read_metadata(small[0]).row_group(0).column(0).has_dictionary_page
    assert pq.read_metadata(indexed[0]).row_group(0).column(0).has_dictionary_page
    assert sorted(h.p_row_id for h in search(lake, "ip", "10.0.0.1")) == ["Test.Events-000001", "Test.Events-000002"]
    assert len(search(lake, "ip", "10.9.9.9")) == 3
