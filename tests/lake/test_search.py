from __future__ import annotations

import json
from datetime import timedelta

import pytest
import typer
from typer.testing import CliRunner

from onca.cli.lake_commands import register
from onca.lake.compaction import compact_lake
from onca.lake.layout import data_files, index_path
from onca.lake.search import parse_since, search
from onca.lake.writer import LakeWriter

from .conftest import SCHEMA, T0, make_row

IP = "198.51.100.7"

# The commands as `onca` registers them (main.py calls lake_commands.register(app)).
app = typer.Typer()
register(app)


@pytest.fixture
def two_tables(lake):
    writer = LakeWriter(lake)
    writer.write("Test.Events", [
        make_row(1, T0 - timedelta(days=3), ip=IP),
        make_row(2, T0 - timedelta(hours=2), ip=IP),
        make_row(3, T0 - timedelta(hours=2), ip="10.9.9.9"),
    ], SCHEMA)
    writer.write("Other.Events", [
        make_row(4, T0 - timedelta(minutes=30), ip=IP, log_type="Other.Events", user="bob",
                 p_any_domain_names=["evil.example.com"]),
        make_row(5, T0 - timedelta(days=2), ip="10.0.0.5", log_type="Other.Events"),
    ], SCHEMA)
    return lake


def test_search_finds_the_value_in_every_table_newest_first(two_tables):
    hits = search(two_tables, "ip", IP)
    assert [(h.table, h.p_row_id) for h in hits] == [
        ("other_events", "Other.Events-000004"), ("test_events", "Test.Events-000002"),
        ("test_events", "Test.Events-000001")]
    assert hits[0].p_log_type == "Other.Events" and hits[0].p_event_time == T0 - timedelta(minutes=30)
    assert "eventName=Call4" in hits[0].summary
    assert search(two_tables, "ip", "203.0.113.1") == []


def test_since_prunes_older_events(two_tables):
    hits = search(two_tables, "ip", IP, since=T0 - timedelta(hours=24))
    assert [h.p_row_id for h in hits] == ["Other.Events-000004", "Test.Events-000002"]
    # A cutoff inside an hour partition: the partition is read, the older rows in it are not returned.
    assert [h.p_row_id for h in search(two_tables, "ip", IP, since=T0 - timedelta(minutes=31))] == \
        ["Other.Events-000004"]


def test_other_kinds_and_case_folding(two_tables):
    assert [h.p_row_id for h in search(two_tables, "user", "bob")] == ["Other.Events-000004"]
    assert [h.p_row_id for h in search(two_tables, "domain", "Evil.Example.COM")] == ["Other.Events-000004"]
    assert search(two_tables, "hash", "d41d8cd98f00b204e9800998ecf8427e") == []
    with pytest.raises(ValueError, match="unknown indicator kind"):
        search(two_tables, "mac", "x")


def test_files_without_an_index_are_scanned(two_tables):
    for data in data_files(next((two_tables / "test_events").glob("dt=*/hour=*"))):
        index_path(data).unlink()
    assert len(search(two_tables, "ip", IP)) == 3


def test_search_after_compaction(two_tables):
    LakeWriter(two_tables).write("Test.Events", [make_row(6, T0 - timedelta(hours=2, minutes=1), ip=IP)], SCHEMA)
    assert compact_lake(two_tables) == 1
    assert len(search(two_tables, "ip", IP)) == 4


def test_parse_since():
    assert parse_since("24h", now=T0) == T0 - timedelta(hours=24)
    assert parse_since("7d", now=T0) == T0 - timedelta(days=7)
    assert parse_since("2025-03-01T10:00:00") == T0.replace(minute=0)
    with pytest.raises(ValueError, match="use a duration like 24h"):
        parse_since("yesterday")


def test_cli_query_and_search(two_tables):
    runner = CliRunner()
    result = runner.invoke(app, ["search", "--ip", IP, "--since", "2025-02-28T12:00:00Z", "--format", "json",
                                 "--lake", str(two_tables)])
    assert result.exit_code == 0, result.output
    assert [h["p_row_id"] for h in json.loads(result.stdout)] == ["Other.Events-000004", "Test.Events-000002"]
    result = runner.invoke(app, ["query", "SELECT count(*) AS n FROM test_events", "--format", "csv",
                                 "--lake", str(two_tables)])
    assert result.exit_code == 0 and result.stdout.splitlines() == ["n", "3"]
    result = runner.invoke(app, ["query", "DROP VIEW test_events", "--lake", str(two_tables)])
    assert result.exit_code == 1 and "read-only" in result.stderr
    result = runner.invoke(app, ["lake", "tables", "--lake", str(two_tables)])
    assert result.exit_code == 0 and "test_events" in result.stdout
    result = runner.invoke(app, ["search", "--ip", IP, "--user", "x", "--lake", str(two_tables)])
    assert result.exit_code == 2


def test_default_lake_is_under_the_home(two_tables, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    two_tables.rename(home / "lake")
    monkeypatch.setenv("ONCA_HOME", str(home))
    result = CliRunner().invoke(app, ["query", "SELECT count(*) FROM other_events", "--format", "csv"])
    assert result.exit_code == 0 and result.stdout.splitlines()[1] == "2"
