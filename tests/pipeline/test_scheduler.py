"""The scheduler over a real deployment: correlation rules, scheduled queries and rules, lake maintenance.

Member rule matches are written to the lake by a real AlertManager (as the worker does), log rows by a real
LakeWriter; the clock is controlled, so every window is exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from onca.alerts.manager import AlertManager
from onca.deploy.resources import DeployContext
from onca.deploy.stacks import Deployment, home_context
from onca.detections.detection import RuleMatch
from onca.detections.enablement import set_disabled
from onca.lake.catalog import Catalog
from onca.lake.query import run_query
from onca.lake.writer import LakeWriter
from onca.pipeline.cadence import Cron, Rate, from_schedule
from onca.pipeline.jobs import ERROR, FAILED, OK
from onca.pipeline.jobs_maintenance import RETENTION_SETTING
from onca.pipeline.jobs_scheduled import ScheduledQueryJob, expand_macros
from onca.pipeline.scheduler import Scheduler, state_path
from onca.store.db import make_engine
from onca.store.models import Alert, Setting
from tests.alerts.conftest import Clock
from tests.deploy.test_lifecycle import base_params

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
GROUP = "Onca.Okta.MFAResetAndAdminGrant"  # Onca's own: MFAFactorReset + AdminRoleAssigned, 120 min, hourly
SEQUENCE = "Onca.AWS.NewUserGrantedAdmin"  # Onca's own: IAMUserCreated then IAMAdminPolicyAttached within 60 min

PACK = {
    "queries/root_logins.yml": """\
AnalysisType: scheduled_query
QueryName: test_root_logins
Enabled: true
Query: SELECT * FROM test_logins WHERE action = 'login' AND p_occurs_since('1 hour')
Schedule:
  RateMinutes: 15
  TimeoutMinutes: 1
""",
    "queries/root_login_rule.yml": """\
AnalysisType: scheduled_rule
RuleID: Test.Scheduled.RootLogin
Enabled: true
Filename: root_login_rule.py
ScheduledQueries:
  - test_root_logins
Severity: High
DedupPeriodMinutes: 60
""",
    "queries/root_login_rule.py": """\
def rule(event):
    return event.get("user") == "root"


def title(event):
    return f"root logged in from {event.get('ip')}"
""",
    "queries/broken.yml": """\
AnalysisType: scheduled_query
QueryName: test_broken
Enabled: true
Query: SELECT * FROM no_such_table
Schedule:
  RateMinutes: 15
  TimeoutMinutes: 1
""",
    "queries/broken_rule.yml": """\
AnalysisType: scheduled_rule
RuleID: Test.Scheduled.Broken
Enabled: true
Filename: broken_rule.py
ScheduledQueries:
  - test_broken
Severity: Medium
""",
    "queries/broken_rule.py": "def rule(event):\n    return True\n",
}


@dataclass
class Deployed:
    ctx: DeployContext
    sessions: sessionmaker[Session]
    clock: Clock
    members: AlertManager  # stands in for the worker: writes member rule matches to the lake

    def scheduler(self, **options: Any) -> Scheduler:
        options.setdefault("grace", timedelta(0))
        return Scheduler(self.ctx, self.sessions, self.clock, **options)

    def alerts(self, rule_id: str) -> list[Alert]:
        with self.sessions() as session:
            return list(session.scalars(select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.first_event_time)))


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    pack = tmp_path / "pack"
    for name, text in PACK.items():
        (pack / name).parent.mkdir(parents=True, exist_ok=True)
        (pack / name).write_text(text, encoding="utf-8")
    home = tmp_path / "home"
    deployment = Deployment(home)
    outcome = deployment.deploy("onca-main", base_params(InitialAnalysisPackUrls=str(pack)))
    deployment.close()
    assert outcome.status == "CREATE_COMPLETE", outcome.error
    ctx = home_context(home)
    assert ctx is not None
    engine = make_engine(ctx.database_url, ctx.schema)
    sessions = sessionmaker(engine, expire_on_commit=False)
    clock = Clock(T0)
    yield Deployed(ctx, sessions, clock, AlertManager(sessions, LakeWriter(ctx.lake_dir), clock=clock))
    engine.dispose()


def member_match(deployed: Deployed, rule_id: str, log_type: str, user: str, minutes: float, row: str) -> None:
    """A match of `rule_id` on an event at T0 + minutes whose alert context names `user` (as Onca's rules do)."""
    event = {"p_row_id": row, "p_event_time": T0 + timedelta(minutes=minutes), "p_log_type": log_type, "actor": "x"}
    found = RuleMatch(rule_id=rule_id, event_index=0, title=f"{rule_id} {user}", dedup=user, severity="HIGH",
                      alert_context=json.dumps({"target_user": user}), destinations=None, unique=None,
                      description="", reference="", runbook="")
    deployed.members.process([found], [], events=[event], log_type=log_type, rule_meta={rule_id: {}})


def okta(deployed: Deployed, rule: str, user: str, minutes: float, row: str) -> None:
    member_match(deployed, f"Onca.Okta.{rule}", "Okta.SystemLog", user, minutes, row)


def aws(deployed: Deployed, rule: str, user: str, minutes: float, row: str) -> None:
    member_match(deployed, f"Onca.AWS.{rule}", "AWS.CloudTrail", user, minutes, row)


def runs_of(runs: list[Any], job: str) -> list[Any]:
    return [run for run in runs if run.job == job]


# ---- correlation rules ----------------------------------------------------------------------------------------


def test_group_rule_fires_when_its_members_matched_within_the_window(deployed: Deployed) -> None:
    okta(deployed, "MFAFactorReset", "jdoe@example.com", 10, "r1")
    okta(deployed, "AdminRoleAssigned", "jdoe@example.com", 40, "r2")
    okta(deployed, "MFAFactorReset", "asmith@example.com", -180, "r3")  # before the window: does not count
    okta(deployed, "AdminRoleAssigned", "asmith@example.com", 20, "r4")
    okta(deployed, "MFAFactorReset", "bob@example.com", 15, "r5")  # one member only

    runs = deployed.scheduler().run_pending(T0 + timedelta(minutes=60, seconds=30))

    [run] = runs_of(runs, f"correlation:{GROUP}")
    assert (run.tick, run.outcome) == (T0 + timedelta(hours=1), OK)
    assert run.counts["member_matches"] == 4 and run.counts["fired"] == 1 and run.counts["alerts_raised"] == 1
    [alert] = deployed.alerts(GROUP)
    assert alert.raised and alert.severity == "CRITICAL" and alert.event_count == 1
    assert "jdoe@example.com" in alert.title
    assert alert.first_event_time.replace(tzinfo=UTC) == T0 + timedelta(minutes=40)  # when the correlation completed
    context = alert.alert_context
    assert context["target_user"] == "jdoe@example.com"
    members = context["correlation"]["members"]
    assert {m["rule_id"] for m in members.values()} == {"Onca.Okta.MFAFactorReset", "Onca.Okta.AdminRoleAssigned"}
    _columns, rows = run_query(deployed.ctx.lake_dir, "SELECT p_rule_id, p_alert_id, member_rule_ids, "
                                                      "matched_row_ids FROM rule_matches_onca_correlation")
    assert rows == [(GROUP, alert.id, ["Onca.Okta.AdminRoleAssigned", "Onca.Okta.MFAFactorReset"], ["r1", "r2"])]


def test_group_rule_does_not_fire_when_members_are_outside_the_window(deployed: Deployed) -> None:
    okta(deployed, "MFAFactorReset", "jdoe@example.com", -70, "r1")  # window of the 11:00 tick starts at 9:00
    okta(deployed, "AdminRoleAssigned", "jdoe@example.com", 65, "r2")  # after the tick: the next window's

    runs = deployed.scheduler().run_pending(T0 + timedelta(minutes=61))

    [run] = runs_of(runs, f"correlation:{GROUP}")
    assert run.counts["member_matches"] == 0 and run.counts["fired"] == 0
    assert deployed.alerts(GROUP) == []


def test_sequence_rule_respects_the_order_of_its_steps(deployed: Deployed) -> None:
    aws(deployed, "IAMUserCreated", "svc-a", 10, "a1")
    aws(deployed, "IAMAdminPolicyAttached", "svc-a", 20, "a2")
    aws(deployed, "IAMAdminPolicyAttached", "svc-b", 10, "b1")  # admin first, user created later: not the sequence
    aws(deployed, "IAMUserCreated", "svc-b", 20, "b2")

    runs = deployed.scheduler().run_pending(T0 + timedelta(minutes=60))

    [run] = runs_of(runs, f"correlation:{SEQUENCE}")
    assert run.counts["fired"] == 1
    [alert] = deployed.alerts(SEQUENCE)
    assert alert.alert_context["target_user"] == "svc-a"


def test_rerunning_a_window_creates_no_duplicate_alert(deployed: Deployed) -> None:
    okta(deployed, "MFAFactorReset", "jdoe@example.com", 10, "r1")
    okta(deployed, "AdminRoleAssigned", "jdoe@example.com", 40, "r2")
    now = T0 + timedelta(minutes=60)
    deployed.scheduler().run_pending(now)

    # A new scheduler with the same state: the window is done.
    assert runs_of(deployed.scheduler().run_pending(now), f"correlation:{GROUP}") == []
    # A crash after the alert but before the state was written: the window runs again, and counts nothing.
    state_path(deployed.ctx.home).unlink()
    [again] = runs_of(deployed.scheduler().run_pending(now), f"correlation:{GROUP}")
    assert again.counts["fired"] == 1 and again.counts["replayed"] == 1 and again.counts["alerts_raised"] == 0
    # The next, overlapping window (lookback 120 > rate 60) sees the same members: the same correlation.
    [later] = runs_of(deployed.scheduler().run_pending(now + timedelta(hours=1)), f"correlation:{GROUP}")
    assert later.counts["replayed"] == 1
    [alert] = deployed.alerts(GROUP)
    assert alert.event_count == 1
    _columns, rows = run_query(deployed.ctx.lake_dir, "SELECT count(*) FROM rule_matches_onca_correlation")
    assert rows == [(1,)]


def test_disabling_a_correlation_rule_removes_its_job_without_a_restart(deployed: Deployed) -> None:
    scheduler = deployed.scheduler()
    scheduler.refresh()
    assert f"correlation:{GROUP}" in {job.name for job in scheduler.jobs}
    with deployed.sessions() as session:
        set_disabled(session, remove=set(), add={GROUP})
        session.commit()
    scheduler.refresh()
    assert f"correlation:{GROUP}" not in {job.name for job in scheduler.jobs}
    assert f"correlation:{SEQUENCE}" in {job.name for job in scheduler.jobs}


# ---- scheduled queries and rules ---------------------------------------------------------------------------------


def write_logins(deployed: Deployed, rows: list[tuple[str, str, str, float]]) -> None:
    """Rows of a `test_logins` lake table: (row id, user, action, minutes after T0)."""
    schema = pa.schema([("p_row_id", pa.string()), ("p_event_time", pa.timestamp("us", tz="UTC")),
                        ("user", pa.string()), ("action", pa.string()), ("ip", pa.string())])
    data = pa.Table.from_pylist([{"p_row_id": r, "p_event_time": T0 + timedelta(minutes=m), "user": u, "action": a,
                                  "ip": "198.51.100.7"} for r, u, a, m in rows], schema=schema)
    LakeWriter(deployed.ctx.lake_dir).write_table("test_logins", data)


def test_a_scheduled_query_feeds_its_scheduled_rule_and_raises_an_alert(deployed: Deployed) -> None:
    write_logins(deployed, [("l1", "root", "login", 50), ("l2", "ann", "login", 52), ("l3", "root", "logout", 55),
                            ("l4", "root", "login", -120)])  # before p_occurs_since('1 hour')

    runs = deployed.scheduler().run_pending(T0 + timedelta(minutes=60, seconds=10))

    [run] = runs_of(runs, "query:test_root_logins")
    assert (run.tick, run.outcome) == (T0 + timedelta(hours=1), OK)
    assert run.counts == {"rules": 1, "rows": 2, "matches": 1, "rule_errors": 0, "alerts_raised": 1}
    [alert] = deployed.alerts("Test.Scheduled.RootLogin")
    assert alert.raised and alert.severity == "HIGH" and alert.title == "root logged in from 198.51.100.7"
    assert alert.log_types == ["test_root_logins"]
    _columns, rows = run_query(deployed.ctx.lake_dir, "SELECT user, p_rule_id FROM rule_matches_test_root_logins")
    assert rows == [("root", "Test.Scheduled.RootLogin")]

    # The same tick again (a crash before the state was written): the rows get the same ids, nothing is counted.
    state_path(deployed.ctx.home).unlink()
    [again] = runs_of(deployed.scheduler().run_pending(T0 + timedelta(minutes=60, seconds=10)),
                      "query:test_root_logins")
    assert again.counts["alerts_raised"] == 0
    [alert] = deployed.alerts("Test.Scheduled.RootLogin")
    assert alert.event_count == 1


def test_a_failing_query_is_recorded_and_alerted_and_the_other_jobs_still_run(deployed: Deployed) -> None:
    write_logins(deployed, [("l1", "root", "login", 50)])
    scheduler = deployed.scheduler()

    runs = scheduler.run_pending(T0 + timedelta(minutes=60))

    [broken] = runs_of(runs, "query:test_broken")
    assert broken.outcome == FAILED and "no_such_table" in broken.error
    [error_alert] = deployed.alerts("Test.Scheduled.Broken")
    assert error_alert.kind == "RULE_ERROR" and error_alert.raised
    assert error_alert.alert_context["error_type"] == "QueryError"
    state = json.loads(state_path(deployed.ctx.home).read_text())["jobs"]
    assert state["query:test_broken"]["outcome"] == FAILED
    assert state["query:test_broken"]["tick"] == (T0 + timedelta(hours=1)).isoformat()  # the window is done
    others = [run for run in runs if run.job != "query:test_broken"]
    assert {run.job for run in others} >= {"query:test_root_logins", f"correlation:{GROUP}", "lake:compaction",
                                            "lake:retention"}
    assert all(run.outcome == OK for run in others)
    assert deployed.alerts("Test.Scheduled.RootLogin")


def test_a_query_over_its_time_limit_becomes_a_timeout_error(deployed: Deployed) -> None:
    scheduler = deployed.scheduler()
    scheduler.refresh()
    [job] = [job for job in scheduler.jobs if job.name == "query:test_broken"]
    assert isinstance(job, ScheduledQueryJob)
    job.sql, job.timeout_s = "SELECT count(*) FROM range(100000000000) a", 0.2

    [run] = runs_of(scheduler.run_pending(T0 + timedelta(minutes=15)), "query:test_broken")

    assert run.outcome == FAILED and "timed out" in run.error
    [error_alert] = deployed.alerts("Test.Scheduled.Broken")
    assert error_alert.alert_context["error_type"] == "QueryTimeout"


def test_an_unexpected_failure_is_retried_and_does_not_stop_the_other_jobs(deployed: Deployed,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = deployed.scheduler(retry_after=timedelta(minutes=5))
    scheduler.refresh()
    [job] = [job for job in scheduler.jobs if job.name == f"correlation:{GROUP}"]

    def crash(tick: datetime) -> Any:
        raise OSError("disk on fire")

    monkeypatch.setattr(job, "run", crash)
    now = T0 + timedelta(minutes=60)
    runs = scheduler.run_pending(now)
    [failed] = runs_of(runs, f"correlation:{GROUP}")
    assert failed.outcome == ERROR and "disk on fire" in failed.error
    assert runs_of(runs, f"correlation:{SEQUENCE}")[0].outcome == OK
    assert runs_of(scheduler.run_pending(now + timedelta(minutes=1)), f"correlation:{GROUP}") == []  # backing off
    monkeypatch.undo()
    [retried] = runs_of(scheduler.run_pending(now + timedelta(minutes=6)), f"correlation:{GROUP}")
    assert (retried.tick, retried.outcome) == (T0 + timedelta(hours=1), OK)  # the same window, not skipped


# ---- state, maintenance -------------------------------------------------------------------------------------------


def test_state_survives_a_restart_and_missed_windows_are_caught_up_in_order(deployed: Deployed) -> None:
    write_logins(deployed, [("l1", "ann", "login", 5)])
    first = deployed.scheduler().run_pending(T0 + timedelta(minutes=60))
    assert [run.tick for run in runs_of(first, f"correlation:{GROUP}")] == [T0 + timedelta(hours=1)]

    restarted = deployed.scheduler()
    meanwhile = restarted.run_pending(T0 + timedelta(minutes=119))
    assert runs_of(meanwhile, f"correlation:{GROUP}") == []
    assert [run.tick for run in runs_of(meanwhile, "query:test_root_logins")] == [
        T0 + timedelta(minutes=m) for m in (75, 90, 105)]
    after_downtime = restarted.run_pending(T0 + timedelta(hours=4, minutes=5))
    assert [run.tick for run in runs_of(after_downtime, f"correlation:{GROUP}")] == [
        T0 + timedelta(hours=2), T0 + timedelta(hours=3), T0 + timedelta(hours=4)]
    assert [run.tick for run in runs_of(after_downtime, "query:test_root_logins")] == [
        T0 + timedelta(minutes=m) for m in range(120, 241, 15)]
    assert all(run.outcome == OK for run in after_downtime if run.job != "query:test_broken")
    # Maintenance is not owed: only its latest tick runs.
    assert len(runs_of(after_downtime, "lake:compaction")) == 1


def test_compaction_job_merges_small_files(deployed: Deployed) -> None:
    for index in range(3):
        write_logins(deployed, [(f"c{index}", "ann", "login", 5 + index)])
    catalog = Catalog(deployed.ctx.lake_dir)
    assert len(catalog.table_files("test_logins")) == 3

    runs = deployed.scheduler(compaction_minutes=5).run_pending(T0 + timedelta(minutes=30))

    [run] = runs_of(runs, "lake:compaction")
    assert run.counts["partitions"] >= 1
    assert len(catalog.table_files("test_logins")) == 1
    _columns, rows = run_query(deployed.ctx.lake_dir, "SELECT count(*) FROM test_logins")
    assert rows == [(3,)]


def test_retention_job_applies_the_configured_periods(deployed: Deployed) -> None:
    write_logins(deployed, [("old", "ann", "login", -3 * 24 * 60), ("new", "ann", "login", 5)])
    with deployed.sessions() as session:
        session.add(Setting(key=RETENTION_SETTING, value={"test_logins": 2}))
        session.commit()

    runs = deployed.scheduler().run_pending(T0 + timedelta(hours=1))

    [run] = runs_of(runs, "lake:retention")
    assert run.counts["partitions"] == 1
    _columns, rows = run_query(deployed.ctx.lake_dir, "SELECT p_row_id FROM test_logins")
    assert rows == [("new",)]


# ---- cadences and macros -------------------------------------------------------------------------------------------


def test_rate_ticks_are_aligned_to_the_epoch() -> None:
    rate = Rate(15)
    assert rate.latest(T0 + timedelta(minutes=44)) == T0 + timedelta(minutes=30)
    assert rate.latest(T0 + timedelta(minutes=45)) == T0 + timedelta(minutes=45)
    assert rate.following(T0 + timedelta(minutes=45)) == T0 + timedelta(hours=1)


@pytest.mark.parametrize(("expression", "moment", "latest", "following"), [
    ("0 */4 * * *", "2026-03-01T10:30", "2026-03-01T08:00", "2026-03-01T12:00"),
    ("0 0 * * *", "2026-03-01T00:00", "2026-03-01T00:00", "2026-03-02T00:00"),
    ("30 9 * * MON-FRI", "2026-03-01T12:00", "2026-02-27T09:30", "2026-03-02T09:30"),  # 1 March 2026 is a Sunday
    ("0 12 1 * 0", "2026-03-03T00:00", "2026-03-01T12:00", "2026-03-08T12:00"),  # day of month OR Sunday
    ("15,45 * * FEB ?", "2026-03-01T10:30", "2026-02-28T23:45", "2027-02-01T00:15"),
])
def test_cron_subset(expression: str, moment: str, latest: str, following: str) -> None:
    cron = Cron(expression)
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert cron.latest(at) == datetime.fromisoformat(latest).replace(tzinfo=UTC)
    assert cron.following(at) == datetime.fromisoformat(following).replace(tzinfo=UTC)


@pytest.mark.parametrize("schedule", [{"CronExpression": "61 * * * *"}, {"CronExpression": "* * *"},
                                      {"RateMinutes": 0}, {"RateMinutes": 5, "CronExpression": "* * * * *"}, {}])
def test_bad_schedules_are_refused(schedule: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        from_schedule(schedule)


def test_p_occurs_since_is_relative_to_the_tick() -> None:
    sql = "SELECT * FROM t a WHERE p_occurs_since('2 hours', a) OR p_occurs_since(60)"
    assert expand_macros(sql, T0) == ("SELECT * FROM t a WHERE "
                                      "a.p_event_time >= '2026-03-01T08:00:00+00:00'::TIMESTAMPTZ "
                                      "OR p_event_time >= '2026-03-01T09:59:00+00:00'::TIMESTAMPTZ")
