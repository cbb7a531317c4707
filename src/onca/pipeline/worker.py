"""The worker: spool entries -> classify and normalise -> lake -> rules -> alerts, then the checkpoint.

Exactly once without distributed transactions: everything a batch produces is keyed deterministically
(lake files by their rows' p_row_id, which derive from the spool position; alerts through the
processed-matches table), and the spool checkpoint is committed last. Entries are processed in batches of
about BATCH_RECORDS records (one lake file per log type, one alert transaction); which entries make up a
batch is recorded (state/worker/<partition>.batch) before its first write, so a worker killed mid-batch
replays exactly that batch after a restart and produces the same files and alerts, not new ones. A worker
handles the entries of its partitions (see partitions.py) and skips the others.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from onca.alerts.manager import AlertManager
from onca.alerts.model import rule_meta_from_specs
from onca.deploy.components.detections import python_dir
from onca.destinations.routing import route
from onca.detections.enablement import content_version, enabled_content
from onca.detections.runner import Runner
from onca.detections.runtime import build_runtime
from onca.lake.writer import LakeWriter
from onca.logs.classifier import Classifier
from onca.logs.fastpath import gc_paused
from onca.logs.model import RawRecord, Source
from onca.logs.pipeline import SchemaParser
from onca.logs.registry import SchemaRegistry
from onca.logs.schema import LogSchema
from onca.pipeline.partitions import Assignment
from onca.pipeline.rule_events import compile_plan, rule_event
from onca.pipeline.spool import Entry, Spool, SpoolReader, atomic_write
from onca.store import models

log = logging.getLogger(__name__)
# A batch with nothing of this worker's partitions only moves its checkpoint this often (or once caught up).
SKIP_COMMIT_SECONDS = 1.0
# Records per batch: one lake file per log type, one alert transaction, one plan write each.
BATCH_RECORDS = 5_000


@dataclass
class WorkerCounters:
    received: int = 0
    parsed: int = 0
    quarantined: int = 0
    rule_evaluations: int = 0
    matches: int = 0
    rule_errors: int = 0
    alerts: int = 0
    batches: int = 0
    by_source: dict[str, int] = field(default_factory=dict)

    def published(self) -> dict[str, int]:
        """What /metrics reports."""
        return {"received": self.received, "parsed": self.parsed, "quarantined": self.quarantined,
                "rule_evaluations": self.rule_evaluations, "matches": self.matches,
                "rule_errors": self.rule_errors, "alerts": self.alerts}


class Worker:
    """One worker over a deployment home; `run_once` processes what the spool holds now."""

    def __init__(self, home: Path, spool: Spool, lake: Path, session_factory: sessionmaker[Session],
                 registry: SchemaRegistry, *, assignment: Assignment | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.home = home
        self.spool = spool
        self.lake = lake
        self.writer = LakeWriter(lake)
        self.session_factory = session_factory
        self.registry = registry
        self.counters = WorkerCounters()
        self.assignment = assignment or Assignment(spool, 1, [0])
        self.reader = self._reader()
        self._plan_path = home / "state" / "worker" / f"{self.assignment.name}.batch"
        self._plan_path.parent.mkdir(parents=True, exist_ok=True)
        self._skipped_to = 0  # read past (only other partitions' entries) but not yet committed
        self._committed_at = time.monotonic()
        self.alerts = AlertManager(session_factory, self.writer, route=self._route,
                                   **({"clock": clock} if clock else {}))
        self._content_version: tuple[Any, ...] | None = None
        # A rule call running longer than this (seconds) is cut off and becomes a RULE_ERROR alert.
        self.rule_time_limit = float(os.environ.get("ONCA_RULE_TIME_LIMIT", "10"))
        self.runner: Runner | None = None
        self.rule_specs: dict[str, Mapping[str, Any]] = {}
        self._rule_views = {schema.name: compile_plan(schema) for schema in registry}

    # ---- content ------------------------------------------------------------------------------------

    def refresh_rules(self) -> None:
        """Rebuild the runner when content or the enabled set changed: no restart needed."""
        with self.session_factory() as session:
            key = content_version(self.home, session)
            if key == self._content_version and self.runner is not None:
                return
            content = enabled_content(self.home, session)
        if self.runner is not None:
            self.runner.close()
        runtime = build_runtime(content, severity_from_spec=True, extra_paths=[python_dir(self.home)])
        self.runner = Runner(runtime, content, time_limit=self.rule_time_limit)
        self.rule_specs = {item.id: item.spec for item in content.of_type("rule")}
        self._content_version = key
        log.info("rules loaded: %d log types", len(self.runner.log_types))

    def _route(self, alert: models.Alert) -> list[str]:
        with self.session_factory() as session:
            destinations = list(session.scalars(select(models.Destination)))
        spec = self.rule_specs.get(alert.rule_id, {})
        chosen = route(alert, destinations, spec.get("OutputIds"), alert.destinations)
        return [d.name for d in chosen]

    def _sources(self) -> dict[str, models.Source]:
        with self.session_factory() as session:
            return {s.name: s for s in session.scalars(select(models.Source))}

    # ---- the loop -----------------------------------------------------------------------------------

    def _reader(self) -> SpoolReader:
        # The assignment commits each partition's checkpoint; the reader only reads from the lowest of them.
        return SpoolReader(self.spool, self.assignment.name, self.assignment.start())

    def run_once(self, *, max_entries: int = 200, timeout: float = 0.5) -> int:
        """Process the next entries of this worker's partitions, in batches of about BATCH_RECORDS records;
        returns how many entries were read."""
        entries = self.reader.read(max_entries, timeout)
        if not entries:
            if self._skipped_to:
                self._commit(self._skipped_to)
            return 0
        mine = [entry for entry in entries if self.assignment.takes(entry)]
        if not mine:
            if time.monotonic() - self._committed_at >= SKIP_COMMIT_SECONDS:
                self._commit(entries[-1].position)
            else:
                self._skipped_to = entries[-1].position
            return len(entries)
        self.refresh_rules()
        sources = self._sources()
        planned = self._planned()
        if planned is not None and planned[0] == mine[0].position:
            # A batch that was under way when the worker stopped: the same entries again, and only them, so
            # its lake files (named by their rows) and alerts come out the same.
            first, last = planned
            while mine[-1].position < last:
                more = self.reader.read(max_entries, 1.0)
                if not more:
                    raise RuntimeError(f"spool entries {first}-{last} of an unfinished batch cannot be read again")
                entries += more
                mine += [entry for entry in more if self.assignment.takes(entry)]
            self._run_batch([e for e in mine if e.position <= last], sources, plan=False)
            self._commit(last)
            mine = [e for e in mine if e.position > last]
        batch: list[Entry] = []
        size = 0
        for entry in mine:
            batch.append(entry)
            size += len(entry.records)
            if size >= BATCH_RECORDS:
                self._run_batch(batch, sources)
                self._commit(entry.position)
                batch, size = [], 0
        if batch:
            self._run_batch(batch, sources)
        self._commit(entries[-1].position)
        return len(entries)

    def _planned(self) -> tuple[int, int] | None:
        try:
            plan = orjson.loads(self._plan_path.read_bytes())
            return int(plan["first"]), int(plan["last"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _run_batch(self, batch: list[Entry], sources: dict[str, models.Source], *, plan: bool = True) -> None:
        if plan:  # recorded before anything is written, so a restart can redo exactly this batch
            atomic_write(self._plan_path, orjson.dumps({"first": batch[0].position, "last": batch[-1].position}))
        counted = replace(self.counters, by_source=dict(self.counters.by_source))
        try:
            with gc_paused():
                self._process(batch, sources)
        except BaseException:
            self.counters = counted  # the batch is retried from the checkpoint: its records count then, once
            raise
        self.counters.batches += 1

    def _commit(self, position: int) -> None:
        self.assignment.commit(position)
        self._skipped_to, self._committed_at = 0, time.monotonic()

    def rewind(self) -> None:
        """After a failed batch: read again from the checkpoint, so the batch is retried, not skipped."""
        self.reader.close()
        self._skipped_to = 0
        self.reader = self._reader()

    def _schemas_for(self, source: models.Source | None) -> list[LogSchema]:
        names = list(source.log_types or []) if source is not None else []
        return [self.registry.get(name) for name in names if name in self.registry] or list(self.registry)

    def _process(self, batch: list[Entry], sources: dict[str, models.Source]) -> None:
        """Classify the batch's records source by source, then write and detect log type by log type: one
        lake file and one alert transaction per log type and batch, whatever the number of entries."""
        parse_time = datetime.now(UTC)
        by_source: dict[str, list[Entry]] = {}
        for entry in batch:
            by_source.setdefault(entry.source_id, []).append(entry)
        by_type: dict[str, list[dict[str, Any]]] = {}
        arrivals: dict[str, list[int]] = {}  # per log type, the batch ordinal of each row's entry
        quarantined: list[Any] = []
        for source_id, entries in by_source.items():
            source_row = sources.get(source_id)
            name = source_row.name if source_row is not None else source_id
            source = Source(id=f"source:{name}", label=name, log_types=list(source_row.log_types or [])
                            if source_row is not None else [])
            schemas = self._schemas_for(source_row)
            classifier = Classifier({s.name: SchemaParser(s, source, parse_time) for s in schemas}, source)
            records = 0
            for entry in entries:
                origin = f"spool:{entry.position}"  # with the index, the record's p_row_id: the same on a replay
                for index, data in enumerate(entry.records):
                    result = classifier.classify(RawRecord(data, origin, index))
                    if result is not None:
                        by_type.setdefault(result[0], []).append(result[1])
                        arrivals.setdefault(result[0], []).append(entry.position)
                records += len(entry.records)
            self.counters.received += records
            self.counters.by_source[name] = self.counters.by_source.get(name, 0) + records
            quarantined += classifier.take_quarantined()
        if quarantined:
            self.writer.write_quarantine(quarantined, parse_time)
            self.counters.quarantined += len(quarantined)
        for log_type, rows in by_type.items():
            schema = self.registry.get(log_type)
            self.writer.write(log_type, rows, schema.arrow_schema())
            self.counters.parsed += len(rows)
            self._detect(log_type, rows, arrivals[log_type])

    def _detect(self, log_type: str, rows: list[dict[str, Any]], arrivals: list[int]) -> None:
        assert self.runner is not None
        rule_ids = self.runner.rule_ids(log_type)
        if not rule_ids:
            return
        view = self._rule_views.get(log_type, {})
        events = [rule_event(row, view) for row in rows]
        started = time.perf_counter()
        result = self.runner.evaluate(log_type, events)
        self.counters.rule_evaluations += len(rows) * len(rule_ids)
        self.counters.matches += len(result.matches)
        self.counters.rule_errors += len(result.errors)
        if result.matches or result.errors:
            meta = rule_meta_from_specs({rid: self.rule_specs[rid] for rid in rule_ids if rid in self.rule_specs})
            outcome = self.alerts.process(result.matches, result.errors, events=rows, log_type=log_type,
                                          rule_meta=meta, arrivals=arrivals)
            self.counters.alerts += len(outcome.raised)
        log.debug("%s: %d events through %d rules in %.3fs", log_type, len(rows), len(rule_ids),
                  time.perf_counter() - started)

    def close(self) -> None:
        if self._skipped_to:  # only other partitions' entries since the last commit: safe to pass
            self._commit(self._skipped_to)
        self.reader.close()
        if self.runner is not None:
            self.runner.close()
