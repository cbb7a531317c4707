"""`onca ingest`: read -> classify -> normalise -> Parquet, with the quarantine, file by file, in batches.

Conservation is the invariant: every record read is a row in its log type's table, a row in the
quarantine table, or a header/comment line (counted). A file already ingested (same content hash) is
skipped unless forced, so retries never duplicate rows; p_row_id is deterministic for the same reason.
Batches and rows are carried across files; a file is recorded as ingested once none of its records is held.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from onca.lake.partition_buffer import PartitionBuffer
from onca.lake.writer import LakeWriter, to_arrow
from onca.logs.classifier import Classifier
from onca.logs.fastpath import BATCH_RECORDS, FastPath, gc_paused
from onca.logs.ingest_state import IngestState
from onca.logs.model import LineBlock, RawRecord, Source
from onca.logs.readers import ReadReport, content_hash, expand_paths, read_records
from onca.logs.registry import SchemaRegistry
from onca.logs.schema import LogSchema

BATCH_ROWS = 20_000


class IngestError(ValueError):
    """The ingest cannot start (an unknown log type, no candidate log types); nothing was written."""


@dataclass
class TypeCounts:
    events: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class IngestSummary:
    records: int = 0
    quarantined: int = 0
    headers: int = 0
    bytes: int = 0
    seconds: float = 0.0
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)
    by_type: dict[str, TypeCounts] = field(default_factory=dict)
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(c.events for c in self.by_type.values())

    @property
    def conserved(self) -> bool:
        return self.records == self.events + self.quarantined + self.headers


class SchemaParser:
    """Parse and normalise as one step: a record whose normalisation fails (a missing required field)
    is refused like an unparseable one, so it is quarantined with the reason."""

    def __init__(self, schema: LogSchema, source: Source, parse_time: datetime) -> None:
        self.schema = schema
        self.parser = schema.new_parser()
        self.source = source
        self.parse_time = parse_time

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        return self.schema.normalize_record(self.parser, record, source=self.source, parse_time=self.parse_time)


def candidate_schemas(registry: SchemaRegistry, log_types: Sequence[str]) -> list[LogSchema]:
    if not log_types:
        return list(registry)
    try:
        return [registry.get(name) for name in log_types]
    except KeyError as err:
        raise IngestError(f"{err.args[0]} (see `onca schemas list`)") from err


def ingest(
    paths: Iterable[str],
    *,
    lake: Path,
    registry: SchemaRegistry,
    log_types: Sequence[str] = (),
    source: Source | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Ingest every file under `paths` ("-" for stdin) into the lake; see the module docstring."""
    schemas = candidate_schemas(registry, log_types)
    source = source or Source(id="cli", label="onca ingest", log_types=[s.name for s in schemas])
    writer = LakeWriter(lake)
    state = IngestState(lake)
    summary = IngestSummary()
    report = ReadReport()
    started = time.perf_counter()
    # Batches and rows are carried across files (_Run). A file counts as ingested only once none of its records
    # is held any more; until then it waits in `unmarked`, and a retry after a crash re-reads it.
    run = _Run(schemas, source, writer, summary, report, progress)
    unmarked: dict[str, tuple[str, dict[str, int]]] = {}  # sha256 -> (origin, counts)
    try:
        for path in expand_paths(list(paths), report):
            origin = str(path) if str(path) == "-" else os.path.abspath(path)
            digest = None if origin == "-" else _hash(path, summary)
            if digest is not None and not force:
                seen = state.seen(digest) or ({"origin": unmarked[digest][0]} if digest in unmarked else None)
                if seen is not None:
                    summary.skipped_files.append(f"{origin}: already ingested (same content as {seen['origin']}); "
                                                 "use --force to ingest it again")
                    continue
            counts = run.read_file(path, origin)
            if digest is not None:
                unmarked[digest] = (origin, counts)
            if unmarked and not run.holding:
                _mark(state, unmarked)
        run.finish()
        _mark(state, unmarked)
    finally:
        state.close()
    summary.seconds = time.perf_counter() - started
    summary.messages += [str(message) for message in report.messages]
    return summary


def _mark(state: IngestState, unmarked: dict[str, tuple[str, dict[str, int]]]) -> None:
    if unmarked:
        state.mark([(digest, origin, counts) for digest, (origin, counts) in unmarked.items()])
        unmarked.clear()


def _hash(path: Path, summary: IngestSummary) -> str | None:
    try:
        return content_hash(path)
    except OSError as err:
        summary.messages.append(f"{path}: cannot read: {err.strerror or err}")
        return None


class _Run:
    """The state one `onca ingest` run shares across its files.

    Records of one JSON log type go in batches through the columnar fast path; what it cannot do exactly comes
    back record by record and takes the classifier, so rows and conservation stay the same. Batches and rows
    are carried from file to file: S3 delivers CloudTrail in files of a few hundred events, often a handful,
    and a batch and a Parquet file for each would cost more than its events. A batch is converted with the file
    that fills it (or at the end), and takes that file's parse time.
    """

    def __init__(self, schemas: list[LogSchema], source: Source, writer: LakeWriter, summary: IngestSummary,
                 report: ReadReport, progress: Callable[[int], None] | None) -> None:
        self.schemas = schemas
        self.source = source
        self.writer = writer
        self.summary = summary
        self.report = report
        self.progress = progress
        self.by_name = {schema.name: schema for schema in schemas}
        self.buffers: dict[str, PartitionBuffer] = {}  # rows by hour partition (full files from spread input)
        self.batches: dict[str, list[dict[str, Any]]] = {}  # rows made by the classifier, by log type
        self.pending: list[RawRecord | LineBlock] = []  # records for the fast path's next batch
        self.pending_records = 0
        self.parse_time = datetime.now(UTC)
        self.fast = FastPath.compile(schemas[0], source, self.parse_time) if len(schemas) == 1 else None
        self.classifier = self._classifier()

    @property
    def holding(self) -> bool:
        """Whether some record read so far is not yet a written row (or a quarantined one)."""
        return bool(self.pending) or any(buffer.rows for buffer in self.buffers.values())

    def read_file(self, path: Path, origin: str) -> dict[str, int]:
        """Read, classify and normalise one file; returns its record and quarantine counts."""
        self.parse_time = datetime.now(UTC)
        self.classifier = self._classifier()
        if self.fast is not None:
            self.fast.parse_time = self.parse_time
        summary, progress, fast = self.summary, self.progress, self.fast
        summary.files += 1
        records = 0
        before = summary.records  # progress counts the run's records, not the file's: many files may be small
        for record in read_records(path, origin=origin, report=self.report, blocks=fast is not None):
            if record.__class__ is LineBlock:  # only for the fast path: `blocks` asks for them
                records += record.count  # type: ignore[union-attr]
                summary.bytes += _record_bytes(record)
                self._pend(record, record.count)  # type: ignore[union-attr]
                if progress is not None:
                    progress(before + records)
                continue
            records += 1
            size = len(record.data)
            summary.bytes += size
            if fast is not None:
                self._pend(record, 1)  # type: ignore[arg-type]
            else:
                self._take(record, size)  # type: ignore[arg-type]
            if progress is not None and records % 2048 == 0:
                progress(before + records)
        self._store_batches()
        quarantined = self._write_quarantine()
        summary.records += records
        if progress is not None:
            progress(before + records)
        return {"records": records, "quarantined": quarantined}

    def finish(self) -> None:
        """Convert and write everything still held."""
        if self.pending:
            self._flush_fast()
        self._store_batches()
        self._write_quarantine()
        for log_type, buffer in self.buffers.items():
            started = time.perf_counter()
            buffer.flush()
            self.summary.by_type[log_type].seconds += time.perf_counter() - started

    def _classifier(self) -> Classifier:
        parsers = {schema.name: SchemaParser(schema, self.source, self.parse_time) for schema in self.schemas}
        return Classifier(parsers, self.source)

    def _pend(self, record: RawRecord | LineBlock, count: int) -> None:
        self.pending.append(record)
        self.pending_records += count
        if self.pending_records >= BATCH_RECORDS:
            self._flush_fast()

    def _take(self, record: RawRecord, size: int) -> None:
        result = self.classifier.classify(record)
        if result is not None:
            log_type, row = result
            batch = self.batches.setdefault(log_type, [])
            batch.append(row)
            counts = self.summary.by_type.setdefault(log_type, TypeCounts())
            counts.events += 1
            counts.bytes += size
            if len(batch) >= BATCH_ROWS:
                self._store(log_type, to_arrow(batch, self.by_name[log_type].arrow_schema()))
                batch.clear()
        elif self.classifier.last_quarantined is None:
            self.summary.headers += 1

    def _store(self, log_type: str, table: pa.Table) -> None:
        started = time.perf_counter()
        buffer = self.buffers.get(log_type)
        if buffer is None:
            buffer = self.buffers[log_type] = PartitionBuffer(self.writer, self.by_name[log_type].table_name)
        buffer.add(table)
        self.summary.by_type[log_type].seconds += time.perf_counter() - started

    def _store_batches(self) -> None:
        for log_type, batch in self.batches.items():
            if batch:
                self._store(log_type, to_arrow(batch, self.by_name[log_type].arrow_schema()))
                batch.clear()

    def _flush_fast(self) -> None:
        schema, pending = self.schemas[0], self.pending
        with gc_paused():
            table, slow = self.fast.convert(pending)  # type: ignore[union-attr]
            slow_bytes = 0
            for record in slow:
                slow_bytes += len(record.data)
                self._take(record, len(record.data))
            if table is not None:
                counts = self.summary.by_type.setdefault(schema.name, TypeCounts())
                counts.events += table.num_rows
                counts.bytes += sum(_record_bytes(item) for item in pending) - slow_bytes
                leftover = self.batches.pop(schema.name, None)
                if leftover:  # the Python path's rows of this batch land in the same files
                    table = pa.concat_tables([table, to_arrow(leftover, schema.arrow_schema())])
                self._store(schema.name, table)
        pending.clear()
        self.pending_records = 0

    def _write_quarantine(self) -> int:
        quarantined = self.classifier.take_quarantined()
        if quarantined:
            self.writer.write_quarantine(quarantined, self.parse_time)
            for item in quarantined:
                reason = "; ".join(f"{k}: {v}" for k, v in sorted(item.reasons.items()))
                self.summary.quarantine_reasons[reason] += 1
        self.summary.quarantined += len(quarantined)
        return len(quarantined)


def _record_bytes(item: RawRecord | LineBlock) -> int:
    """The bytes of a record, or of a block's records (its text less the newlines between them)."""
    if item.__class__ is LineBlock:
        return len(item.data) - item.count + 1  # type: ignore[union-attr]
    return len(item.data)


def render_summary(summary: IngestSummary) -> str:
    lines = [f"{'log type':<24} {'events':>10} {'MB':>9} {'write s':>8}"]
    for name, counts in sorted(summary.by_type.items()):
        lines.append(f"{name:<24} {counts.events:>10,} {counts.bytes / 1e6:>9.2f} {counts.seconds:>8.2f}")
    lines.append(f"{'quarantine':<24} {summary.quarantined:>10,}")
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    lines.append(f"\n{summary.records:,} records read from {summary.files} file(s) in {summary.seconds:.2f} s "
                 f"({rate:,.0f}/s): {summary.events:,} events + {summary.quarantined:,} quarantined + "
                 f"{summary.headers:,} header lines" + ("" if summary.conserved else "  (COUNTS DO NOT ADD UP)"))
    for reason, count in summary.quarantine_reasons.most_common(5):
        lines.append(f"  quarantined {count:,}x: {reason[:200]}")
    for skipped in summary.skipped_files:
        lines.append(f"  skipped {skipped}")
    for message in summary.messages:
        lines.append(f"  note: {message}")
    return "\n".join(lines)
