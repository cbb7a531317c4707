from __future__ import annotations

from datetime import timedelta

from onca.lake.catalog import Catalog
from onca.lake.layout import TRASH_DIR
from onca.lake.retention import apply_retention
from onca.lake.writer import LakeWriter
from onca.logs.model import QuarantinedRecord, RawRecord, Source

from .conftest import SCHEMA, T0, make_row


def test_retention_deletes_whole_expired_partitions_per_table(lake):
    writer = LakeWriter(lake)
    for days_ago in (40, 10, 0):
        at = T0 - timedelta(days=days_ago)
        writer.write("Test.Events", [make_row(days_ago, at)], SCHEMA)
        writer.write("Other.Events", [make_row(days_ago, at, log_type="Other.Events")], SCHEMA)
        source = Source("s", "s", ["Test.Events"])
        writer.write_quarantine([QuarantinedRecord(source, RawRecord(b"x", "f", days_ago), {"Test.Events": "no"})],
                                parse_time=at)
    now = T0 + timedelta(minutes=30)
    plan = apply_retention(lake, {"test_events": 30, "quarantine": 5}, now=now, dry_run=True)
    assert sorted((d.table, d.partition) for d in plan) == [
        ("quarantine", "dt=2025-01-20/hour=10"), ("quarantine", "dt=2025-02-19/hour=10"),
        ("test_events", "dt=2025-01-20/hour=10")]
    assert Catalog(lake).connect().execute("SELECT count(*) FROM test_events").fetchone()[0] == 3
    deleted = apply_retention(lake, {"test_events": 30, "quarantine": 5}, now=now)
    assert len(deleted) == 3
    counts = {t.name: t.rows for t in Catalog(lake).tables()}
    assert counts == {"other_events": 3, "quarantine": 1, "test_events": 2}  # other_events: kept forever
    assert not (lake / "test_events" / "dt=2025-01-20").exists()
    assert list((lake / TRASH_DIR).iterdir()) == []


def test_partition_is_kept_until_its_whole_hour_is_past_the_cutoff(lake):
    LakeWriter(lake).write("Test.Events", [make_row(1, T0)], SCHEMA)  # hour 10:00-11:00
    cutoff_inside_hour = T0.replace(minute=59) + timedelta(days=1)
    assert apply_retention(lake, {"test_events": 1}, now=cutoff_inside_hour) == []
    assert len(apply_retention(lake, {"test_events": 1}, now=T0.replace(minute=0) + timedelta(days=1, hours=1))) == 1
