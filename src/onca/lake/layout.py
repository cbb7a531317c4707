"""Where things live in the lake, and the standard columns every table carries.

    <lake>/<table>/dt=YYYY-MM-DD/hour=HH/<name>.parquet     data (zstd), Hive partitions from p_event_time (UTC)
    <lake>/<table>/dt=.../hour=.../_<name>.idx              indicator index of that data file (search.py)
    <lake>/<table>/dt=.../hour=.../_compaction-<id>.json    a compaction in progress (compaction.py)
    <lake>/<table>/dt=.../hour=.../.<name>.parquet.tmp      a file being written; never ends in .parquet
    <lake>/quarantine/dt=.../hour=.../                      records no parser accepted, by parse time
    <lake>/.trash/                                          partitions being deleted by retention

Only names ending in `.parquet` are data: DuckDB's `**/*.parquet` glob does not skip hidden files, so
temporary files must not end in `.parquet`, and the `_`/`.` prefixes keep Hive engines (Athena, Spark,
Trino) from reading sidecars. Directories whose name starts with `_` or `.` are not tables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

QUARANTINE_TABLE = "quarantine"
DATA_SUFFIX = ".parquet"
INDEX_PREFIX = "_"
INDEX_SUFFIX = ".idx"
TMP_SUFFIX = ".tmp"
MANIFEST_PREFIX = "_compaction-"
TRASH_DIR = ".trash"

TIMESTAMP = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.string())

INDICATOR_COLUMNS = (
    "p_any_ip_addresses",
    "p_any_domain_names",
    "p_any_usernames",
    "p_any_emails",
    "p_any_md5_hashes",
    "p_any_sha1_hashes",
    "p_any_sha256_hashes",
    "p_any_aws_account_ids",
    "p_any_aws_arns",
    "p_any_aws_instance_ids",
    "p_any_trace_ids",
)

STANDARD_FIELDS = (
    pa.field("p_log_type", pa.string()),
    pa.field("p_event_time", TIMESTAMP),
    pa.field("p_parse_time", TIMESTAMP),
    pa.field("p_row_id", pa.string()),
    pa.field("p_source_id", pa.string()),
    pa.field("p_source_label", pa.string()),
    *(pa.field(name, STRINGS) for name in INDICATOR_COLUMNS),
    pa.field("p_nonconforming", pa.string()),
)

QUARANTINE_SCHEMA = pa.schema([
    pa.field("p_parse_time", TIMESTAMP),
    pa.field("p_source_id", pa.string()),
    pa.field("p_source_label", pa.string()),
    pa.field("origin", pa.string()),
    pa.field("position", pa.int64()),
    pa.field("raw", pa.binary()),
    pa.field("reasons", pa.string()),
    pa.field("candidate_log_types", STRINGS),
    pa.field("p_row_id", pa.string()),
])

_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})$")
_TABLE_CHARS = re.compile(r"[^a-z0-9_]")


def table_name(log_type: str) -> str:
    """AWS.CloudTrail -> aws_cloudtrail (lower-cased, '.' -> '_'; anything else unusual also -> '_')."""
    return _TABLE_CHARS.sub("_", log_type.lower().replace(".", "_"))


def with_standard_fields(schema: pa.Schema) -> pa.Schema:
    """The schema plus whichever standard p_ fields it lacks (appended, in the standard order)."""
    names = set(schema.names)
    missing = [f for f in STANDARD_FIELDS if f.name not in names]
    return pa.schema([*schema, *missing], metadata=schema.metadata) if missing else schema


def partition_of(hour_start: datetime) -> str:
    """The relative partition directory of an hour (UTC): dt=YYYY-MM-DD/hour=HH."""
    return f"dt={hour_start:%Y-%m-%d}/hour={hour_start:%H}"


def is_table_dir(entry: os.DirEntry[str] | Path) -> bool:
    return not entry.name.startswith(("_", ".")) and entry.is_dir()


def table_dirs(root: Path) -> list[Path]:
    """Every table directory of the lake (data tables and quarantine), sorted by name."""
    if not root.is_dir():
        return []
    with os.scandir(root) as entries:
        return sorted(Path(e.path) for e in entries if is_table_dir(e))


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    path: Path
    hour: datetime  # the partition's first instant (UTC)

    @property
    def end(self) -> datetime:
        return self.hour + timedelta(hours=1)


def partitions(table_dir: Path, since: datetime | None = None) -> Iterator[Partition]:
    """The table's hour partitions, oldest first; with `since`, only those that can hold events at or after it.

    Partition pruning happens here, on directory names, before any file is opened.
    """
    if not table_dir.is_dir():
        return
    floor = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0) if since else None
    for dt_dir in sorted(table_dir.iterdir()):
        if not dt_dir.name.startswith("dt=") or not dt_dir.is_dir():
            continue
        if floor is not None and dt_dir.name[3:] < f"{floor:%Y-%m-%d}":
            continue
        for hour_dir in sorted(dt_dir.iterdir()):
            match = _PARTITION.search(f"{dt_dir.name}/{hour_dir.name}")
            if match is None or not hour_dir.is_dir():
                continue
            hour = datetime.strptime(f"{match[1]} {match[2]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
            if floor is None or hour >= floor:
                yield Partition(table_dir.name, hour_dir, hour)


def data_files(partition_dir: Path) -> list[Path]:
    """The published data files of a partition (sorted), superseded inputs of a compaction included."""
    with os.scandir(partition_dir) as entries:
        return sorted(Path(e.path) for e in entries if e.name.endswith(DATA_SUFFIX) and e.is_file())


def index_path(data_file: Path) -> Path:
    """The indicator index beside a data file: _<stem>.idx."""
    return data_file.with_name(f"{INDEX_PREFIX}{data_file.stem}{INDEX_SUFFIX}")


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """Create `path` and its parents, fsyncing each parent whose entries changed."""
    if path.is_dir():
        return
    missing = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        fsync_dir(directory.parent)
