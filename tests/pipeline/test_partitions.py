"""Worker partitions over a real spool: every entry is taken exactly once across workers, across a change of
the number of workers, and the checkpoints of an earlier layout stop holding back segment deletion."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from onca.pipeline.partitions import Assignment, consumer_name, layouts, partition_of, queue_lag
from onca.pipeline.spool import Entry, Spool, SpoolReader

SOURCES = [f"source-{i}" for i in range(8)]


def fill(spool: Spool, count: int) -> None:
    for i in range(count):
        spool.append(SOURCES[i % len(SOURCES)], [json.dumps({"i": i}).encode() * 20])


def work(spool: Spool, assignment: Assignment, upto: int | None = None) -> list[Entry]:
    """What a worker of `assignment` processes up to position `upto` (all available when None), committed."""
    reader = SpoolReader(spool, assignment.name, assignment.start())
    taken, last = [], None
    for entry in reader:
        if upto is not None and entry.position > upto:
            break
        last = entry.position
        if assignment.takes(entry):
            taken.append(entry)
    reader.close()
    if last is not None:
        assignment.commit(last)
    return taken


def test_partition_of_is_stable_and_spreads_sources() -> None:
    assert [partition_of(s, 2) for s in ("ct", "okta", "web")] == [1, 0, 0]  # the same in every process
    assert {partition_of(s, 4) for s in SOURCES} == {0, 1, 2, 3}
    # Names that differ in one character spread too (with crc32 every ctN fell in the same partition of two).
    assert {partition_of(f"ct{i}", 2) for i in range(4)} == {0, 1}


def test_each_source_is_taken_by_one_worker_in_spool_order(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 40)
        workers = [Assignment(spool, 3, [i]) for i in range(3)]
        taken = {i: work(spool, a) for i, a in enumerate(workers)}
        positions = Counter(e.position for entries in taken.values() for e in entries)
        assert sorted(positions) == list(range(1, 41)) and set(positions.values()) == {1}
        for i, entries in taken.items():
            assert all(partition_of(e.source_id, 3) == i for e in entries)
            assert [e.position for e in entries] == sorted(e.position for e in entries)
        assert queue_lag(spool) == 0  # the skipped entries moved every checkpoint too


def test_changing_the_number_of_workers_takes_everything_exactly_once(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", segment_bytes=4096) as spool:
        fill(spool, 120)
        # Two workers stopped at different places, then one worker, then three.
        first, second = Assignment(spool, 2, [0]), Assignment(spool, 2, [1])
        taken = work(spool, first, upto=90) + work(spool, second, upto=30)
        single = Assignment(spool, 1, [0])
        assert single.start() == 30  # everything below the slower partition was done by layout 2
        taken += work(spool, single, upto=60)
        fill(spool, 30)
        trio = [Assignment(spool, 3, [i]) for i in range(3)]
        for assignment in trio:
            taken += work(spool, assignment)
        positions = Counter(e.position for e in taken)
        assert sorted(positions) == list(range(1, 151)) and set(positions.values()) == {1}
        # Layouts 2 and 1 are behind every partition of layout 3: dropped, so segments can go.
        assert set(layouts(spool)) == {3}
        assert spool.segments()[0] > 100
        assert queue_lag(spool) == 0


def test_an_unfinished_layout_change_keeps_both_layouts_exact(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 60)
        taken = work(spool, Assignment(spool, 2, [0]), upto=50)  # partition 1 of 2 never ran
        one = Assignment(spool, 1, [0])
        assert one.start() == 0
        taken += work(spool, one, upto=20)
        taken += work(spool, Assignment(spool, 2, [1]))  # back to two workers: partition 1 starts from zero
        taken += work(spool, Assignment(spool, 2, [0]))
        positions = Counter(e.position for e in taken)
        assert sorted(positions) == list(range(1, 61)) and set(positions.values()) == {1}
        assert set(layouts(spool)) == {2}


def test_one_process_can_run_several_partitions(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 30)
        taken = work(spool, Assignment(spool, 2, [1]), upto=20)
        both = Assignment(spool, 2, [0, 1])
        assert both.name == "worker-0.1of2" and both.start() == 0
        taken += work(spool, both)
        positions = Counter(e.position for e in taken)
        assert sorted(positions) == list(range(1, 31)) and set(positions.values()) == {1}
        assert layouts(spool) == {2: {0: 30, 1: 30}}


def test_the_single_worker_checkpoint_of_earlier_releases_is_taken_over(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 20)
        spool.register("worker")
        spool.commit("worker", 12)
        assert queue_lag(spool) == 8
        taken = work(spool, Assignment(spool, 1, [0]))
        assert [e.position for e in taken] == list(range(13, 21))
        assert spool.consumers() == {consumer_name(0, 1): 20}


def test_the_lag_is_not_zero_while_a_worker_of_the_layout_has_not_started(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 10)
        work(spool, Assignment(spool, 2, [0]))  # skips the other partition's sources to the end
        assert layouts(spool) == {2: {0: 10}}
        assert queue_lag(spool) == 10  # partition 1 has done nothing yet
        work(spool, Assignment(spool, 2, [1]))
        assert queue_lag(spool) == 0
