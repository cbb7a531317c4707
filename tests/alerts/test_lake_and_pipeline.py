"""Matched events and rule errors in the lake, a crash between the metadata commit and the lake write
(a real subprocess killed at that point), and the production runner feeding the manager."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from onca.alerts.lake import errors_table, matches_table
from onca.alerts.manager import AlertManager
from onca.alerts.model import rule_meta_from_specs
from onca.detections.kvstore import KVStore, set_default_store
from onca.detections.runner import Runner
from onca.lake.catalog import Catalog
from onca.lake.writer import LakeWriter
from onca.store import db
from onca.store.models import Alert

from .conftest import LOG_TYPE, T0, error, event, match

SCHEMA = pa.schema([pa.field("user", pa.string()), pa.field("n", pa.int64())])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    db.migrate(url)
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = db.make_engine(sqlite_url)
    yield engine
    engine.dispose()


def query(lake: Path, sql: str) -> list[tuple]:
    with Catalog(lake).connect() as con:
        return con.execute(sql).fetchall()


def lake_files(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet"))


def test_matches_signals_and_errors_land_in_their_tables(sqlite_engine: Engine, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    manager = AlertManager(sessionmaker(sqlite_engine), LakeWriter(lake))
    events = [event("a", timedelta(0), user="alice", n=1), event("b", timedelta(hours=1), user="bob", n=2)]
    meta = {"R": {"Tags": ["t1"], "Reports": {"MITRE ATT&CK": ["TA0001"]}}, "S": {"CreateAlert": False}}
    result = manager.process([match("R", 0, context='{"k": 1}'), match("S", 1, severity=None)], [error("E", 1)],
                             events=events, log_type=LOG_TYPE, rule_meta=meta, schema=SCHEMA)
    assert len(result.files) == 3  # two hour partitions of matches, one of errors
    with Session(sqlite_engine) as session:
        rule_alert = session.scalars(select(Alert).where(Alert.rule_id == "R")).one().id
        error_alert = session.scalars(select(Alert).where(Alert.rule_id == "E")).one().id
    rows = query(lake, f"SELECT user, n, p_rule_id, p_alert_id, p_alert_context, p_rule_dedup, p_rule_severity, "
                       f"p_rule_tags, p_rule_reports, p_row_id, p_event_time FROM {matches_table(LOG_TYPE)} ORDER BY n")
    assert [row[:9] for row in rows] == [
        ("alice", 1, "R", rule_alert, '{"k": 1}', "d", "HIGH", ["t1"], '{"MITRE ATT&CK": ["TA0001"]}'),
        ("bob", 2, "S", None, None, "d", "INFO", [], None)]
    assert (rows[0][9], rows[0][10]) == ("a", T0)
    assert query(lake, f"SELECT user, p_rule_id, p_alert_id, p_rule_error, p_rule_error_type "
                       f"FROM {errors_table(LOG_TYPE)}") == [("bob", "E", error_alert, "'x'", "KeyError")]
    # A replay rewrites the same files: no duplicate rows.
    files = lake_files(lake)
    manager.process([match("R", 0, context='{"k": 1}'), match("S", 1, severity=None)], [error("E", 1)],
                    events=events, log_type=LOG_TYPE, rule_meta=meta, schema=SCHEMA)
    assert lake_files(lake) == files
    assert query(lake, f"SELECT count(*) FROM {matches_table(LOG_TYPE)}") == [(2,)]


def test_without_a_schema_the_columns_are_inferred(sqlite_engine: Engine, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    manager = AlertManager(sessionmaker(sqlite_engine), LakeWriter(lake))
    events = [event("a", timedelta(0), detail={"ip": "1.2.3.4"}, mixed=1),
              event("b", timedelta(0), detail={"ip": "5.6.7.8"}, mixed="text")]
    manager.process([match("R", 0), match("R", 1)], [], events=events, log_type=LOG_TYPE, rule_meta={})
    rows = query(lake, f"SELECT detail.ip, mixed, p_nonconforming IS NOT NULL FROM {matches_table(LOG_TYPE)} "
                       "ORDER BY p_row_id")
    assert [row[0] for row in rows] == ["1.2.3.4", "5.6.7.8"]
    assert len(rows) == 2  # a column of mixed kinds is kept as text or in p_nonconforming, never fails the batch


CHILD = """
import os, sys
from datetime import UTC, datetime
from sqlalchemy.orm import sessionmaker
from onca.alerts.manager import AlertManager
from onca.lake.writer import LakeWriter
from onca.store import db
from tests.alerts.conftest import event, match, T0

class Dying(LakeWriter):
    def write_table(self, *args, **kwargs):
        os._exit(17)  # the metadata transaction has committed; the lake write never happens

engine = db.make_engine(sys.argv[1])
events = [event("a", T0, user="alice"), event("b", T0, user="bob")]
AlertManager(sessionmaker(engine), Dying(sys.argv[2])).process(
    [match("R", 0), match("R", 1)], [], events=events, log_type="Custom.Test", rule_meta={})
"""


def test_a_crash_after_the_commit_is_completed_by_the_replay(sqlite_url: str, sqlite_engine: Engine,
                                                             tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD), encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, str(script), sqlite_url, str(lake)], cwd=root, capture_output=True,
                           text=True, timeout=120, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert child.returncode == 17, child.stderr
    assert lake_files(lake) == []
    with Session(sqlite_engine) as session:
        (alert,) = session.scalars(select(Alert)).all()
        assert alert.event_count == 2
    events = [event("a", T0, user="alice"), event("b", T0, user="bob")]
    result = AlertManager(sessionmaker(sqlite_engine), LakeWriter(lake)).process(
        [match("R", 0), match("R", 1)], [], events=events, log_type=LOG_TYPE, rule_meta={})
    assert result.replayed == 2
    with Session(sqlite_engine) as session:
        assert session.scalars(select(Alert)).one().event_count == 2
    assert query(lake, f"SELECT user, p_alert_id FROM {matches_table(LOG_TYPE)} ORDER BY user") == [
        ("alice", alert.id), ("bob", alert.id)]


@pytest.fixture
def kv_store() -> Iterator[None]:
    set_default_store(KVStore(None))
    yield
    set_default_store(None)


def test_the_production_runner_feeds_the_manager(sqlite_engine: Engine, tmp_path: Path, kv_store: None) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "brute.py").write_text(textwrap.dedent("""
        def rule(event):
            if event.get("action") == "explode":
                raise ValueError("boom")
            return event.get("action") == "login_failed"

        def title(event):
            return f"Failed logins for {event.get('user')}"

        def dedup(event):
            return event.get("user")

        def unique(event):
            return event.get("ip")
        """), encoding="utf-8")
    spec = {"AnalysisType": "rule", "RuleID": "Brute.Force", "Filename": "brute.py", "Enabled": True,
            "LogTypes": [LOG_TYPE], "Severity": "High", "Threshold": 2, "DedupPeriodMinutes": 15,
            "Tags": ["Credential Access"]}
    (content / "brute.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    runner = Runner.from_path(content)
    try:
        events = [event("1", timedelta(minutes=0), action="login_failed", user="eve", ip="10.0.0.1"),
                  event("2", timedelta(minutes=1), action="login_failed", user="eve", ip="10.0.0.1"),
                  event("3", timedelta(minutes=2), action="login_ok", user="eve", ip="10.0.0.2"),
                  event("4", timedelta(minutes=3), action="login_failed", user="eve", ip="10.0.0.3"),
                  event("5", timedelta(minutes=4), action="login_failed", user="mallory", ip="10.0.0.9"),
                  event("6", timedelta(minutes=5), action="explode", user="x", ip="-")]
        batch = runner.evaluate(LOG_TYPE, events)
    finally:
        runner.close()
    manager = AlertManager(sessionmaker(sqlite_engine), LakeWriter(tmp_path / "lake"))
    result = manager.process(batch.matches, batch.errors, events=events, log_type=LOG_TYPE,
                             rule_meta=rule_meta_from_specs([spec]))
    with Session(sqlite_engine) as session:
        got = {(a.kind, a.dedup): (a.title, a.severity, a.event_count, a.unique_count, a.raised, a.tags,
                                   a.window_end - a.window_start)
               for a in session.scalars(select(Alert))}
    window = timedelta(minutes=15)
    assert got == {
        ("RULE", "eve"): ("Failed logins for eve", "HIGH", 3, 2, True, ["Credential Access"], window),
        ("RULE", "mallory"): ("Failed logins for mallory", "HIGH", 1, 1, False, ["Credential Access"], window),
        ("RULE_ERROR", "ValueError"): ("Rule Brute.Force failed: ValueError: boom", "HIGH", 1, 0, True,
                                       ["Credential Access"], window),
    }
    assert len(result.raised) == 2
