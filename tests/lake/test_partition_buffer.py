"""PartitionBuffer: input spread over many hours becomes one full file per partition, nothing lost or doubled."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from onca.lake.partition_buffer import PartitionBuffer
from onca.lake.writer import LakeWriter, to_arrow

from .conftest import SCHEMA, T0, make_row


def _batch(numbers: list[int], hours: list[int]) -> pa.Table:
    return to_arrow([make_row(n, T0 + timedelta(hours=h)) for n, h in zip(numbers, hours, strict=True)], SCHEMA)


def _files(lake: Path) -> dict[str, list[str]]:
    """Each data file's partition and row ids, by file name."""
    return {f"{f.parent.parent.name}/{f.parent.name}/{f.name}": pq.read_table(f).column("p_row_id").to_pylist()
            for f in sorted(lake.rglob("*.parquet"))}


def test_spread_input_makes_one_file_per_partition(lake: Path) -> None:
    buffer = PartitionBuffer(LakeWriter(lake), "test_events")
    # Three batches, each touching the same five hours in shuffled order.
    for batch in range(3):
        numbers = [batch * 10 + i for i in range(10)]
        buffer.add(_batch(numbers, [(i * 3 + batch) % 5 for i in range(10)]))
    assert not list(lake.rglob("*.parquet")) and buffer.rows == 30
    written = buffer.flush()
    files = _files(lake)
    assert len(written) == len(files) == 5
    ids = [row_id for rows in files.values() for row_id in rows]
    assert sorted(ids) == [f"Test.Events-{n:06d}" for n in range(30)]
    # Within a partition, rows keep their arrival order.
    for rows in files.values():
        assert rows == sorted(rows)


def test_time_ordered_input_is_written_as_its_hours_end(lake: Path) -> None:
    buffer = PartitionBuffer(LakeWriter(lake), "test_events")
    buffer.add(_batch([0, 1, 2], [0, 0, 0]))
    buffer.add(_batch([3, 4, 5], [0, 1, 1]))  # hour 0 goes on: nothing written yet
    assert not _files(lake)
    buffer.add(_batch([6, 7], [2, 2]))  # hours 0 and 1 got nothing: they are over
    assert sorted(_files(lake).values()) == [[f"Test.Events-{n:06d}" for n in (0, 1, 2, 3)],
                                             ["Test.Events-000004", "Test.Events-000005"]]
    buffer.flush()
    assert len(_files(lake)) == 3


def test_full_partitions_and_a_full_buffer_are_written(lake: Path) -> None:
    buffer = PartitionBuffer(LakeWriter(lake), "test_events", partition_rows=4, max_rows=9)
    buffer.add(_batch(list(range(5)), [0, 0, 0, 0, 1]))  # hour 0 is full
    assert [len(rows) for rows in _files(lake).values()] == [4] and buffer.rows == 1
    buffer.add(_batch(list(range(5, 14)), [1, 2, 3, 1, 2, 3, 1, 2, 3]))  # 10 rows held: all written
    assert buffer.rows == 0 and sum(len(rows) for rows in _files(lake).values()) == 14


def test_the_same_input_writes_the_same_files(tmp_path: Path) -> None:
    names = []
    for run in range(2):
        lake = tmp_path / f"lake{run}"
        buffer = PartitionBuffer(LakeWriter(lake), "test_events", partition_rows=6)
        for batch in range(4):
            numbers = [batch * 8 + i for i in range(8)]
            buffer.add(_batch(numbers, [(i + batch) % 3 for i in range(8)]))
        buffer.flush()
        names.append(sorted(_files(lake)))
    assert names[0] == names[1] and len(names[0]) >= 3
