"""The scheduler: periodic work over the lake — correlation rules, scheduled queries with their scheduled
rules, compaction and retention.

Every job has a cadence of tick times (cadence.py). `run_pending(now)` runs, for each job, the ticks that
are due: those after the last tick it completed, up to `now - grace` (the grace lets events of a window
that are still in the pipeline reach the lake first). A job over windows of data (correlation, queries)
runs every missed tick in order, at most `max_ticks` per call, so a scheduler that was down catches up
instead of skipping; maintenance jobs run only their latest tick. A job seen for the first time starts at
its latest due tick: a new deployment does not backfill history.

State. The last completed tick of every job is written to <home>/state/scheduler.json (atomically) after
each tick, so a restart neither skips nor repeats a window. Between a tick's work and that write a crash
makes the tick run again; it then creates nothing twice, because everything it produces is keyed by ids
derived from the tick and the data (lake files by row ids, alert counts by (rule, p_row_id)).

Failures. A job whose own input is broken (SQL error, timeout) ends its tick as `failed`: logged, recorded
with the error in the state file, and the window is done. Anything else that raises (database, disk) ends
it as `error`: logged, the tick is not marked done and is retried after `retry_after`; other jobs go on.

One scheduler per deployment is the intended shape (`onca serve` runs one; `--role scheduler` on one host).
Two would do the work twice but, thanks to the deterministic ids, not alert twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from onca.alerts.manager import AlertManager
from onca.deploy.components.detections import python_dir
from onca.deploy.resources import DeployContext
from onca.detections.enablement import content_version, enabled_content
from onca.detections.runner import Runner
from onca.detections.runtime import Runtime, build_runtime
from onca.lake.writer import LakeWriter
from onca.pipeline.jobs import ERROR, FAILED, Job, JobRun, spec_router
from onca.pipeline.jobs_correlation import CorrelationJob
from onca.pipeline.jobs_maintenance import CompactionJob, RetentionJob
from onca.pipeline.jobs_scheduled import ScheduledQueryJob, scheduled_runner
from onca.pipeline.spool import atomic_write
from onca.store.models import utcnow

log = logging.getLogger(__name__)

STATE_FILE = "scheduler.json"


def state_path(home: Path) -> Path:
    return home / "state" / STATE_FILE


class Scheduler:
    """Runs the deployment's periodic jobs; see the module docstring."""

    def __init__(self, ctx: DeployContext, session_factory: sessionmaker[Session],
                 clock: Callable[[], datetime] = utcnow, *, grace: timedelta = timedelta(minutes=1),
                 compaction_minutes: int = 60, retention_minutes: int = 24 * 60, max_ticks: int = 100,
                 retry_after: timedelta = timedelta(minutes=1), interval: float = 10.0) -> None:
        self.home = ctx.home
        self.lake = ctx.lake_dir
        self.sessions = session_factory
        self.clock = clock
        self.grace = grace
        self.max_ticks = max_ticks
        self.retry_after = retry_after
        self.interval = interval  # seconds between two looks at the clock in run_forever
        # A rule call running longer than this (seconds) is cut off and becomes a RULE_ERROR alert.
        self.rule_time_limit = float(os.environ.get("ONCA_RULE_TIME_LIMIT", "10"))
        self.alerts = AlertManager(session_factory, LakeWriter(self.lake), clock=clock,
                                   route=spec_router(session_factory, lambda: self._specs))
        self.maintenance: list[Job] = [CompactionJob(self.lake, compaction_minutes),
                                       RetentionJob(self.lake, session_factory, retention_minutes)]
        self.counters = {"runs": 0, FAILED: 0, ERROR: 0}
        self._path = state_path(self.home)
        self._state: dict[str, dict[str, Any]] = self._load()
        self._version: tuple[Any, ...] | None = None
        self._runtime: Runtime | None = None
        self._runner: Runner | None = None
        self._specs: dict[str, Mapping[str, Any]] = {}
        self._content_jobs: list[Job] = []
        self._retry_at: dict[str, datetime] = {}

    # ---- state ----------------------------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return {}
        jobs = data.get("jobs") if isinstance(data, dict) else None
        return jobs if isinstance(jobs, dict) else {}

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path, orjson.dumps({"jobs": self._state}, option=orjson.OPT_INDENT_2))

    def job_states(self) -> dict[str, dict[str, Any]]:
        """Per job: the last completed tick, when it ran, its outcome, counts and error."""
        return {name: dict(entry) for name, entry in self._state.items()}

    def _last_tick(self, name: str) -> datetime | None:
        text = self._state.get(name, {}).get("tick")
        return datetime.fromisoformat(text) if text else None

    def _record(self, run: JobRun, done: bool, now: datetime) -> None:
        entry = self._state.setdefault(run.job, {})
        if done:
            entry["tick"] = run.tick.isoformat()
        entry.update(ran_at=now.isoformat(), outcome=run.outcome, counts=run.counts, error=run.error)
        self._save()

    # ---- content --------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rebuild the content jobs when installed content or the disabled set changed: no restart needed."""
        with self.sessions() as session:
            version = content_version(self.home, session)
            if version == self._version:
                return
            content = enabled_content(self.home, session)
        content.items = [item for item in content.items if item.enabled]
        wanted = {item.id for item in content.of_type("scheduled_rule", "correlation_rule")}
        runtime = build_runtime(content, wanted=wanted, severity_from_spec=True, extra_paths=[python_dir(self.home)])
        for problem in runtime.problems:
            log.error("scheduler content: %s: %s", problem.path, problem.message)
        if self._runtime is not None:
            self._runtime.close()
        self._runtime = runtime
        self._runner = scheduled_runner(runtime, content, self.rule_time_limit)
        self._specs = {item.id: item.spec for item in content.of_type("scheduled_rule", "correlation_rule")}
        jobs: list[Job] = []
        for item in content.of_type("correlation_rule", "scheduled_query"):
            try:
                if item.analysis_type == "scheduled_query":
                    jobs.append(ScheduledQueryJob(item, self.lake, self._current_runner, lambda: self._specs,
                                                  self.alerts))
                elif item.id in runtime.correlations:
                    jobs.append(CorrelationJob(item, runtime.correlations[item.id], self.lake, self.alerts))
            except ValueError as err:
                log.error("scheduler content: %s: %s", item.path, err)
        self._content_jobs = jobs
        self._version = version
        names = {job.name for job in [*jobs, *self.maintenance]}
        gone = set(self._state) - names
        if gone:  # a disabled or removed job starts afresh if it comes back, rather than backfilling the gap
            for name in gone:
                del self._state[name]
            self._save()
        log.info("scheduler: %d correlation rule(s), %d scheduled quer(ies)",
                 sum(isinstance(job, CorrelationJob) for job in jobs),
                 sum(isinstance(job, ScheduledQueryJob) for job in jobs))

    def _current_runner(self) -> Runner:
        assert self._runner is not None
        return self._runner

    @property
    def jobs(self) -> list[Job]:
        return [*self._content_jobs, *self.maintenance]

    # ---- running --------------------------------------------------------------------------------------------

    def due_ticks(self, job: Job, now: datetime) -> list[datetime]:
        horizon = now - self.grace
        latest = job.cadence.latest(horizon)
        last = self._last_tick(job.name)
        if last is None or not job.catch_up:
            return [latest] if last is None or latest > last else []
        ticks: list[datetime] = []
        tick = job.cadence.following(last)
        while tick <= horizon and len(ticks) < self.max_ticks:
            ticks.append(tick)
            tick = job.cadence.following(tick)
        return ticks

    def run_pending(self, now: datetime | None = None) -> list[JobRun]:
        """Run every due tick of every job; returns what ran, in order."""
        now = now or self.clock()
        self.refresh()
        runs: list[JobRun] = []
        for job in self.jobs:
            retry_at = self._retry_at.get(job.name)
            if retry_at is not None and retry_at > now:
                continue
            self._retry_at.pop(job.name, None)
            runs += self._run(job, now)
        return runs

    def _run(self, job: Job, now: datetime) -> list[JobRun]:
        runs = []
        try:
            ticks = self.due_ticks(job, now)
        except ValueError as err:  # a cron expression that never fires
            log.error("%s: %s", job.name, err)
            return []
        for tick in ticks:
            try:
                run = job.run(tick)
            except Exception as err:
                log.exception("%s: the tick %s failed; it will be retried", job.name, tick.isoformat())
                run = JobRun(job.name, tick, ERROR, error=f"{type(err).__name__}: {err}")
                self._retry_at[job.name] = now + self.retry_after
            self.counters["runs"] += 1
            if run.outcome in self.counters:
                self.counters[run.outcome] += 1
            self._record(run, done=run.outcome != ERROR, now=now)
            runs.append(run)
            if run.outcome == ERROR:
                break
        return runs

    def run_forever(self, stop: threading.Event) -> None:
        """Run due work every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                self.run_pending()
            except Exception:  # content that cannot be read, a database that is away: try again next round
                log.exception("scheduler round failed; it will be retried")
            stop.wait(self.interval)

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
