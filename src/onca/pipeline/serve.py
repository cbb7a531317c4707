"""`onca serve`: the HTTP intake, a worker and the delivery outbox of one deployment, in one process.

This is the single-host shape (threads in one process); each part is a plain loop over shared durable
state (the spool, the metadata database, the lake), so running them as separate supervised processes
or roles is a matter of starting the loops elsewhere, not of changing them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from onca.deploy.components.detections import content_dir
from onca.deploy.resources import DeployContext
from onca.destinations.outbox import RetryPolicy, deliver_due
from onca.destinations.secrets import keyring
from onca.detections.kvstore import KVStore, set_default_store
from onca.logs.registry import SchemaRegistry
from onca.pipeline.demo import replay
from onca.pipeline.intake_http import HttpIntake, HttpIntakeConfig
from onca.pipeline.intake_syslog import SyslogConfig, SyslogIntake
from onca.pipeline.poller_dir import DirectoryPoller
from onca.pipeline.spool import Spool
from onca.pipeline.tokens import TokenIndex
from onca.pipeline.worker import Worker
from onca.store.db import make_engine
from onca.store.models import Source

log = logging.getLogger(__name__)


class Server:
    """Everything `onca serve` runs for the deployment described by `ctx`."""

    def __init__(self, ctx: DeployContext, *, host: str = "127.0.0.1", port: int = 0,
                 delivery_interval: float = 0.5, retry: RetryPolicy | None = None) -> None:
        self.ctx = ctx
        home = ctx.home
        self.engine = make_engine(ctx.database_url, ctx.schema)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.spool = Spool(home / "spool")
        custom = home / "schemas"
        self.registry = SchemaRegistry.load([custom] if custom.is_dir() else [])
        # Detection state (panther_detection_helpers.caching) is shared by every worker through this file.
        set_default_store(KVStore(home / "kv.sqlite"))
        self.intake = HttpIntake(self.spool, TokenIndex(self.engine, ttl=1.0), HttpIntakeConfig(host=host, port=port))
        self.worker = Worker(home, self.spool, ctx.lake_dir, self.sessions, self.registry)
        self.fernet = keyring(home)
        self.delivery_interval = delivery_interval
        self.retry = retry or RetryPolicy(base_delay=float(os.environ.get("ONCA_DELIVERY_RETRY_BASE", "30")))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listeners: list[SyslogIntake | DirectoryPoller] = []
        self.delivery_attempts = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.intake.address

    def start(self) -> None:
        self.worker.refresh_rules()
        self.intake.metrics = self.metrics
        self.intake.start()
        self._start_listeners()
        for target, name in ((self._work, "worker"), (self._deliver, "delivery")):
            thread = threading.Thread(target=target, name=f"onca-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _start_listeners(self) -> None:
        """Syslog listeners and directory pollers of the configured sources (HTTP sources need none)."""
        with self.sessions() as session:
            sources = list(session.scalars(select(Source).where(Source.enabled.is_(True))))
        for source in sources:
            config = source.config or {}
            if source.kind == "syslog":
                udp, tcp = _address(config.get("udp")), _address(config.get("tcp"))
                host = (udp or tcp or ("127.0.0.1", 0))[0]
                listener: SyslogIntake | DirectoryPoller = SyslogIntake(self.spool, source.name, SyslogConfig(
                    host=host, udp_port=udp[1] if udp else None, tcp_port=tcp[1] if tcp else None))
            elif source.kind == "directory":
                listener = DirectoryPoller(self.spool, source.name, config["path"],
                                           self.ctx.home / "state" / "pollers")
            else:
                continue
            listener.start()
            self.listeners.append(listener)
            log.info("source %s: %s listening", source.name, source.kind)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self.worker.run_once(timeout=0.2)
            except Exception:  # a failing batch is retried from the checkpoint; the server stays up
                log.exception("worker batch failed; it will be retried")
                self._stop.wait(1.0)

    def _deliver(self) -> None:
        while not self._stop.wait(self.delivery_interval):
            try:
                with self.sessions() as session:
                    attempts = deliver_due(session, datetime.now(UTC), fernet=self.fernet, policy=self.retry)
                    self.delivery_attempts += len(attempts)
            except Exception:
                log.exception("delivery round failed; it will be retried")

    def stop(self) -> None:
        """Stop taking requests, let the worker finish its batch, then stop delivering."""
        self.intake.stop()
        for listener in self.listeners:
            listener.stop()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.worker.close()
        self.spool.close()
        self.engine.dispose()

    def metrics(self) -> str:
        """Prometheus text format."""
        c = self.worker.counters
        intake = self.intake.stats()
        lag = max(0, self.spool.last_position() - self.spool.checkpoint("worker"))
        values = {
            "onca_received_total": c.received, "onca_parsed_total": c.parsed,
            "onca_quarantined_total": c.quarantined, "onca_rule_evaluations_total": c.rule_evaluations,
            "onca_rule_matches_total": c.matches, "onca_rule_errors_total": c.rule_errors,
            "onca_alerts_total": c.alerts, "onca_delivery_attempts_total": self.delivery_attempts,
            "onca_queue_lag_entries": lag, "onca_intake_accepted_records_total": intake.get("accepted_records", 0),
        }
        return "".join(f"# TYPE {k} {'gauge' if k.endswith('entries') else 'counter'}\n{k} {v}\n"
                       for k, v in values.items())


def _address(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def serve_home(ctx: DeployContext, host: str, port: int, ready: Path | None = None, *, demo: bool = False,
               announce: Callable[[str], None] = print) -> None:
    """Run until SIGTERM/SIGINT (the caller installs the handlers by setting `stop_event`)."""
    server = Server(ctx, host=host, port=port)
    server.start()
    if demo:
        with server.sessions() as session:
            count = replay(session, server.spool, content_dir(ctx.home) / "onca", server.registry)
        announce(f"demo: replaying {count} sample events of Onca's own detections; "
                 "see them with `onca alerts list` in a few seconds")
    if ready is not None:
        ready.write_text("{}:{}\n".format(*server.address))
    stop_event.wait()
    server.stop()


stop_event = threading.Event()
