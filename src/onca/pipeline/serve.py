"""`onca serve`: the roles of a deployment's pipeline, and the process tree that runs them.

* api: the HTTP intake, syslog listeners and pollers (the only process that appends to the spool),
  /healthz and /metrics.
* worker: spool -> lake -> rules -> alerts for some partitions of the sources (see partitions.py).
* scheduler: periodic jobs, first of all the delivery outbox (one process; it holds a lock).

Without `--role`, the process runs the api itself and supervises N worker processes and one scheduler
process (supervisor.py). Each role is a plain loop over shared durable state (the spool, the metadata
database, the lake), so `--role` runs any one of them alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from onca.api.server import WebServer
from onca.deploy.components.detections import content_dir
from onca.deploy.resources import DeployContext
from onca.destinations.outbox import RetryPolicy, deliver_due
from onca.destinations.secrets import keyring
from onca.detections.kvstore import KVStore, set_default_store
from onca.logs.registry import SchemaRegistry
from onca.pipeline.counters import PublishedCounters, totals
from onca.pipeline.demo import replay
from onca.pipeline.intake_http import HttpIntake, HttpIntakeConfig
from onca.pipeline.intake_syslog import SyslogConfig, SyslogIntake
from onca.pipeline.locks import Locks
from onca.pipeline.partitions import Assignment, consumer_name, queue_lag
from onca.pipeline.periodic import PeriodicJob, run_jobs
from onca.pipeline.poller_dir import DirectoryPoller
from onca.pipeline.poller_s3 import S3Poller
from onca.pipeline.scheduler import Scheduler
from onca.pipeline.spool import Spool
from onca.pipeline.supervisor import Supervisor, die_with_parent
from onca.pipeline.tokens import TokenIndex
from onca.pipeline.worker import Worker
from onca.store.db import make_engine
from onca.store.models import Source

log = logging.getLogger(__name__)
ROLES = ("api", "worker", "scheduler")
Listener = SyslogIntake | DirectoryPoller | S3Poller
DELIVERY_INTERVAL = 0.5  # seconds between rounds of the delivery outbox
STOP_DEADLINE = 30.0  # seconds children get to finish their batch on shutdown before they are killed
stop_event = threading.Event()
"""Set by the command's SIGTERM/SIGINT handlers: every role stops when it is set."""


def _metrics_dir(home: Path) -> Path:
    return home / "state" / "metrics"


def _sessions(ctx: DeployContext) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(ctx.database_url, ctx.schema)
    return engine, sessionmaker(engine, expire_on_commit=False)


def _registry(home: Path) -> SchemaRegistry:
    custom = home / "schemas"
    return SchemaRegistry.load([custom] if custom.is_dir() else [])


# ---- api ------------------------------------------------------------------------------------------------


class Api:
    """The intake side: HTTP, syslog and pollers into the spool, /healthz and /metrics."""

    def __init__(self, ctx: DeployContext, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ctx = ctx
        self.engine, self.sessions = _sessions(ctx)
        self.spool = Spool(ctx.home / "spool")
        self.registry = _registry(ctx.home)
        self.intake = HttpIntake(self.spool, TokenIndex(self.engine, ttl=1.0), HttpIntakeConfig(host=host, port=port))
        self.listeners: list[Listener] = []

    @property
    def address(self) -> tuple[str, int]:
        return self.intake.address

    def start(self) -> None:
        self.intake.metrics = self.metrics
        self.intake.start()
        self._start_listeners()

    def _start_listeners(self) -> None:
        """Syslog listeners, directory and S3 pollers of the configured sources (HTTP sources need none)."""
        with self.sessions() as session:
            sources = list(session.scalars(select(Source).where(Source.enabled.is_(True))))
        for source in sources:
            config = source.config or {}
            if source.kind == "syslog":
                udp, tcp = _address(config.get("udp")), _address(config.get("tcp"))
                host = (udp or tcp or ("127.0.0.1", 0))[0]
                listener: Listener = SyslogIntake(self.spool, source.name, SyslogConfig(
                    host=host, udp_port=udp[1] if udp else None, tcp_port=tcp[1] if tcp else None))
            elif source.kind == "directory":
                listener = DirectoryPoller(self.spool, source.name, config["path"],
                                           self.ctx.home / "state" / "pollers")
            elif source.kind == "s3":
                try:
                    listener = S3Poller(self.spool, source.name, config, self.ctx.home / "state" / "pollers")
                except ValueError as err:  # a stored config that no longer validates: the other sources still start
                    log.error("source %s: invalid s3 config (%s); not started", source.name, err)
                    continue
            else:
                continue
            listener.start()
            self.listeners.append(listener)
            log.info("source %s: %s listening", source.name, source.kind)

    def stop_intake(self) -> None:
        """Stop taking data (what was acknowledged is in the spool)."""
        self.intake.stop()
        for listener in self.listeners:
            listener.stop()

    def close(self) -> None:
        self.spool.close()
        self.engine.dispose()

    def metrics(self) -> str:
        """Prometheus text format: the workers' and the scheduler's published counters, summed."""
        c = totals(_metrics_dir(self.ctx.home))
        values = {
            "onca_received_total": c.get("received", 0), "onca_parsed_total": c.get("parsed", 0),
            "onca_quarantined_total": c.get("quarantined", 0),
            "onca_rule_evaluations_total": c.get("rule_evaluations", 0),
            "onca_rule_matches_total": c.get("matches", 0), "onca_rule_errors_total": c.get("rule_errors", 0),
            "onca_alerts_total": c.get("alerts", 0), "onca_delivery_attempts_total": c.get("delivery_attempts", 0),
            "onca_queue_lag_entries": queue_lag(self.spool),
            "onca_intake_accepted_records_total": self.intake.stats().get("accepted_records", 0),
        }
        return "".join(f"# TYPE {k} {'gauge' if k.endswith('entries') else 'counter'}\n{k} {v}\n"
                       for k, v in values.items())


def _address(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


# ---- worker and scheduler -------------------------------------------------------------------------------


@dataclass
class ChildRole:
    """What a worker or scheduler process runs under: its deployment, its stop signal, its parent."""

    ctx: DeployContext
    stop: threading.Event
    parent: int | None  # the supervisor's pid when started by one

    def running(self) -> bool:
        if self.parent is not None and os.getppid() != self.parent:
            log.warning("the supervisor (pid %d) is gone; stopping", self.parent)
            return False
        return not self.stop.is_set()


def run_worker(role: ChildRole, partitions: int, mine: list[int], ready: Callable[[], None]) -> None:
    """Process the entries of partitions `mine` of `partitions` until stopped."""
    home = role.ctx.home
    (home / "spool" / "consumers").mkdir(parents=True, exist_ok=True, mode=0o700)
    locks = Locks(home / "state" / "locks", [f"{consumer_name(i, partitions)}.lock" for i in mine],
                  partitions=partitions)
    if not locks.acquire(role.stop):
        return
    spool = Spool(home / "spool", readonly=True)
    engine, sessions = _sessions(role.ctx)
    # Detection state (panther_detection_helpers.caching) is shared by every worker through this file.
    set_default_store(KVStore(home / "kv.sqlite"))
    worker = Worker(home, spool, role.ctx.lake_dir, sessions, _registry(home),
                    assignment=Assignment(spool, partitions, mine))
    published = PublishedCounters(_metrics_dir(home), worker.assignment.name)
    try:
        worker.refresh_rules()
        log.info("%s working (pid %d)", worker.assignment.name, os.getpid())
        ready()
        while role.running():
            try:
                worker.run_once(timeout=0.2)
            except Exception:
                log.exception("worker batch failed; it will be retried")
                worker.rewind()
                role.stop.wait(1.0)
            published.publish(worker.counters.published())
    finally:
        published.publish(worker.counters.published(), force=True)
        worker.close()
        spool.close()
        engine.dispose()
        locks.release()


def scheduler_jobs(ctx: DeployContext, sessions: sessionmaker[Session], counters: dict[str, int]) -> list[PeriodicJob]:
    """The scheduler role's periodic jobs: add one here to run it on the scheduler."""
    fernet = keyring(ctx.home)
    retry = RetryPolicy(base_delay=float(os.environ.get("ONCA_DELIVERY_RETRY_BASE", "30")))

    def deliver(now: datetime) -> None:
        with sessions() as session:
            attempts = deliver_due(session, now, fernet=fernet, policy=retry)
        counters["delivery_attempts"] = counters.get("delivery_attempts", 0) + len(attempts)

    return [PeriodicJob("delivery outbox", DELIVERY_INTERVAL, deliver)]


def run_scheduler(role: ChildRole, ready: Callable[[], None]) -> None:
    """Run the periodic jobs until stopped; only one scheduler runs per deployment at a time."""
    home = role.ctx.home
    locks = Locks(home / "state" / "locks", ["scheduler.lock"])
    if not locks.acquire(role.stop):
        return
    engine, sessions = _sessions(role.ctx)
    set_default_store(KVStore(home / "kv.sqlite"))
    published = PublishedCounters(_metrics_dir(home), "scheduler")
    counters: dict[str, int] = {}
    jobs = scheduler_jobs(role.ctx, sessions, counters)
    # Correlation rules, scheduled queries and lake maintenance get their own thread: a slow query or a
    # catch-up after downtime must not hold up alert deliveries.
    lake_jobs = Scheduler(role.ctx, sessions)
    lake_thread = threading.Thread(target=lake_jobs.run_forever, args=(role.stop,), name="onca-scheduler",
                                   daemon=True)
    lake_thread.start()
    log.info("scheduler running %s and the lake jobs (pid %d)", ", ".join(job.name for job in jobs), os.getpid())
    ready()

    def tick() -> bool:
        published.publish({**counters, **{f"scheduler_{k}": v for k, v in lake_jobs.counters.items()}})
        return role.running()

    try:
        run_jobs(jobs, role.stop, tick)
    finally:
        role.stop.set()
        lake_thread.join(timeout=STOP_DEADLINE)
        lake_jobs.close()
        published.publish(counters, force=True)
        engine.dispose()
        locks.release()


# ---- the process tree -----------------------------------------------------------------------------------


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 0
    ready: Path | None = None  # written once serving: HOST:PORT for the api, the role's name otherwise
    role: str | None = None  # None: the api plus supervised workers and scheduler
    workers: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))  # the CPUs this process may use
    partitions: list[int] | None = None  # a worker role's partitions (None: all of them)
    demo: bool = False


def _mark_ready(path: Path | None, text: str) -> None:
    if path is not None:
        path.write_text(f"{text}\n")


def _child_argv(home: Path, role: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "onca", "serve", "--home", str(home), "--role", role, *extra]


def serve_home(ctx: DeployContext, options: ServeOptions, *, announce: Callable[[str], None] = print) -> None:
    """Run the requested role (or the whole tree) until `stop_event` is set."""
    if options.role in ("worker", "scheduler"):
        role = ChildRole(ctx, stop_event, die_with_parent())
        ready = partial(_mark_ready, options.ready, options.role)
        if options.role == "worker":
            run_worker(role, options.workers, options.partitions or list(range(options.workers)), ready)
        else:
            run_scheduler(role, ready)
        return
    # The console first: if its address is taken, stop before any data has been accepted.
    web = WebServer(ctx).start()
    announce(f"console and API on {web.url} (API reference at {web.url}/api/docs)")
    api = Api(ctx, host=options.host, port=options.port)
    api.start()
    supervisor = None
    if options.role is None:
        n = options.workers
        children = {consumer_name(i, n): _child_argv(ctx.home, "worker", "--partition", str(i), "--workers", str(n))
                    for i in range(n)}
        children["scheduler"] = _child_argv(ctx.home, "scheduler")
        supervisor = Supervisor(children, ctx.home / "state" / "pids")
        supervisor.start()
    if options.demo:
        with api.sessions() as session:
            count = replay(session, api.spool, content_dir(ctx.home) / "onca", api.registry)
        announce(f"demo: replaying {count} sample events of Onca's own detections; "
                 "see them with `onca alerts list` in a few seconds")
    _mark_ready(options.ready, "{}:{}".format(*api.address))
    try:
        while not stop_event.wait(0.2):
            if supervisor is not None:
                supervisor.poll()
    finally:
        api.stop_intake()
        if supervisor is not None:
            supervisor.stop(STOP_DEADLINE)
        web.stop()
        api.close()
