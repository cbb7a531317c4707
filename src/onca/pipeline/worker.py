"""The worker: spool entries -> classify and normalise -> lake -> rules -> alerts, then the checkpoint.

Exactly once without distributed transactions: everything a batch produces is keyed deterministically
(lake files by their rows' p_row_id, which derive from the spool position; alerts through the
processed-matches table), and the spool checkpoint is committed last. A worker killed mid-batch
replays the batch after a restart and produces the same files and alerts, not new ones. A worker handles
the entries of its partitions (see partitions.py) and skips the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from onca.alerts.manager import AlertManager
from onca.alerts.model import rule_meta_from_specs
from onca.deploy.components.detections import content_dir, deployed_content, python_dir
from onca.destinations.routing import route
from onca.detections.enablement import disabled_ids
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
from onca.pipeline.spool import Entry, Spool, SpoolReader
from onca.store import models

log = logging.getLogger(__name__)
# A batch with nothing of this worker's partitions only moves its checkpoint this often (or once caught up).
SKIP_COMMIT_SECONDS = 1.0


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


def rule_event(row: Mapping[str, Any], json_fields: frozenset[str]) -> dict[str, Any]:
    """What detection code sees: json fields decoded, timestamps as Panther prints them."""
    event: dict[str, Any] = {}
    for key, value in row.items():
        if value is None:
            continue
        if key in json_fields and isinstance(value, str):
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        event[key] = value
    return event


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
        self._skipped_to = 0  # read past (only other partitions' entries) but not yet committed
        self._committed_at = time.monotonic()
        self.alerts = AlertManager(session_factory, self.writer, route=self._route,
                                   **({"clock": clock} if clock else {}))
        self._content_version: tuple[Any, ...] | None = None
        # A rule call running longer than this (seconds) is cut off and becomes a RULE_ERROR alert.
        self.rule_time_limit = float(os.environ.get("ONCA_RULE_TIME_LIMIT", "10"))
        self.runner: Runner | None = None
        self.rule_specs: dict[str, Mapping[str, Any]] = {}
        self._json_fields = {schema.name: frozenset(f["name"] for f in schema.fields if f.get("type") == "json")
                             for schema in registry}

    # ---- content ------------------------------------------------------------------------------------

    def _content_key(self, session: Session) -> tuple[Any, ...]:
        manifest = content_dir(self.home) / "packs.json"
        onca = content_dir(self.home) / "onca"
        return (manifest.stat().st_mtime_ns if manifest.exists() else 0,
                onca.stat().st_mtime_ns if onca.exists() else 0, tuple(sorted(disabled_ids(session))))

    def refresh_rules(self) -> None:
        """Rebuild the runner when content or the enabled set changed: no restart needed."""
        with self.session_factory() as session:
            key = self._content_key(session)
            off = set(key[2])
        if key == self._content_version and self.runner is not None:
            return
        content = deployed_content(self.home)
        content.items = [item for item in content.items if item.id not in off]
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
        """Process the next batch of this worker's entries; returns how many entries were read."""
        entries = self.reader.read(max_entries, timeout)
        if not entries:
            if self._skipped_to:
                self._commit(self._skipped_to)
            return 0
        mine = [entry for entry in entries if self.assignment.takes(entry)]
        if mine:
            self.refresh_rules()
            sources = self._sources()
            with gc_paused():
                for entry in mine:
                    self._process(entry, sources.get(entry.source_id))
            self.counters.batches += 1
        if mine or time.monotonic() - self._committed_at >= SKIP_COMMIT_SECONDS:
            self._commit(entries[-1].position)
        else:
            self._skipped_to = entries[-1].position
        return len(entries)

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

    def _process(self, entry: Entry, source_row: models.Source | None) -> None:
        name = source_row.name if source_row is not None else entry.source_id
        source = Source(id=f"source:{name}", label=name, log_types=list(source_row.log_types or [])
                        if source_row is not None else [])
        parse_time = datetime.now(UTC)
        schemas = self._schemas_for(source_row)
        classifier = Classifier({s.name: SchemaParser(s, source, parse_time) for s in schemas}, source)
        by_type: dict[str, list[dict[str, Any]]] = {}
        origin = f"spool:{entry.position}"
        for index, data in enumerate(entry.records):
            result = classifier.classify(RawRecord(data, origin, index))
            if result is not None:
                by_type.setdefault(result[0], []).append(result[1])
        self.counters.received += len(entry.records)
        self.counters.by_source[name] = self.counters.by_source.get(name, 0) + len(entry.records)
        quarantined = classifier.take_quarantined()
        if quarantined:
            self.writer.write_quarantine(quarantined, parse_time)
            self.counters.quarantined += len(quarantined)
        for log_type, rows in by_type.items():
            schema = self.registry.get(log_type)
            self.writer.write(log_type, rows, schema.arrow_schema())
            self.counters.parsed += len(rows)
            self._detect(log_type, rows)

    def _detect(self, log_type: str, rows: list[dict[str, Any]]) -> None:
        assert self.runner is not None
        rule_ids = self.runner.rule_ids(log_type)
        if not rule_ids:
            return
        fields = self._json_fields.get(log_type, frozenset())
        events = [rule_event(row, fields) for row in rows]
        started = time.perf_counter()
        result = self.runner.evaluate(log_type, events)
        self.counters.rule_evaluations += len(rows) * len(rule_ids)
        self.counters.matches += len(result.matches)
        self.counters.rule_errors += len(result.errors)
        if result.matches or result.errors:
            meta = rule_meta_from_specs({rid: self.rule_specs[rid] for rid in rule_ids if rid in self.rule_specs})
            outcome = self.alerts.process(result.matches, result.errors, events=rows, log_type=log_type,
                                          rule_meta=meta)
            self.counters.alerts += len(outcome.raised)
        log.debug("%s: %d events through %d rules in %.3fs", log_type, len(rows), len(rule_ids),
                  time.perf_counter() - started)

    def close(self) -> None:
        if self._skipped_to:  # only other partitions' entries since the last commit: safe to pass
            self._commit(self._skipped_to)
        self.reader.close()
        if self.runner is not None:
            self.runner.close()
