from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from onca.lake.catalog import Catalog
from onca.lake.compaction import CompactionCrash, compact_lake, compact_partition, live_files, recover
from onca.lake.layout import data_files, index_path
from onca.lake.writer import LakeWriter

from .conftest import SCHEMA, T0, make_row


def _small_files(lake, batches=4, per_batch=3):
    writer = LakeWriter(lake)
    for b in range(batches):
        writer.write("Test.Events", [make_row(b * 10 + i, T0 + timedelta(minutes=b + i)) for i in range(per_batch)],
                     SCHEMA)
    return next((lake / "test_events").glob("dt=*/hour=*"))


def _rows(lake):
    con = Catalog(lake).connect()
    return con.execute("SELECT count(*), count(DISTINCT p_row_id) FROM test_events").fetchone()


def test_compaction_merges_into_one_file_with_the_same_rows(lake):
    partition = _small_files(lake)
    assert len(data_files(partition)) == 4
    output = compact_partition(partition)
    assert output is not None and data_files(partition) == [output]
    assert index_path(output).exists()
    assert [p.name for p in partition.iterdir() if p.name.startswith(".")] == []
    assert _rows(lake) == (12, 12)
    times = Catalog(lake).connect().execute("SELECT p_event_time FROM test_events").fetchall()
    assert [t for (t,) in times] == sorted(t for (t,) in times)  # merged rows are sorted by event time
    assert compact_partition(partition) is None  # nothing left to merge


def test_compaction_unifies_evolving_schemas(lake):
    partition = _small_files(lake, batches=2)
    wider = SCHEMA.append(pa.field("newField", pa.string()))
    LakeWriter(lake).write("Test.Events", [make_row(99, T0, newField="x")], wider)
    compact_partition(partition)
    got = Catalog(lake).connect().execute("SELECT count(*), count(newField) FROM test_events").fetchone()
    assert got == (7, 1)


@pytest.mark.parametrize("step", ["write", "manifest", "publish", "delete-one"])
def test_a_crash_at_any_step_never_duplicates_or_loses_rows(lake, step):
    partition = _small_files(lake)
    with pytest.raises(CompactionCrash):
        compact_partition(partition, crash_after=step)
    # Readers (the catalog) see every row exactly once right after the crash...
    assert _rows(lake) == (12, 12)
    if step in ("publish", "delete-one"):
        assert len(live_files(partition)) == 1 < len(data_files(partition))
    # ...and recovery leaves a clean partition, rolled forward or back.
    recover(partition)
    assert _rows(lake) == (12, 12)
    assert not list(partition.glob("_compaction-*")) and not list(partition.glob(".*"))
    assert len(data_files(partition)) == (1 if step in ("publish", "delete-one") else 4)
    for data in data_files(partition):
        assert index_path(data).exists()
    assert sorted(p.name for p in partition.glob("_*.idx")) == sorted(index_path(d).name for d in data_files(partition))
    compact_lake(lake)
    assert _rows(lake) == (12, 12) and len(data_files(partition)) == 1
