"""Compaction: merge the small files of a partition into one, without a crash ever duplicating or losing rows.

The protocol (two phases, the manifest is the commit point for readers):

1. Read the inputs, merge them (schemas unified by name; sorted by p_event_time), write the merged file
   to a hidden temporary name and fsync it.
2. Publish a manifest `_compaction-<id>.json` naming the output and the inputs (atomic write + rename).
3. Rename the merged file into place. From this instant the manifest says "the inputs are superseded":
   `live_files` (used by the catalog and by search) leaves them out, so our readers never count a row twice.
4. Delete the inputs (and their index sidecars), then the manifest.

`recover` finishes or undoes an interrupted compaction: a manifest whose output is published rolls
forward (the remaining inputs are deleted); one whose output is missing rolls back (temporary files
deleted, the inputs stay). Between 3 and 4 an engine that only globs `*.parquet` could see both the
merged file and inputs not yet deleted; that window is a few unlinks long, and the next compaction,
retention or `recover_lake` closes it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from onca.lake.layout import (
    DATA_SUFFIX,
    INDEX_PREFIX,
    INDEX_SUFFIX,
    MANIFEST_PREFIX,
    TMP_SUFFIX,
    data_files,
    fsync_dir,
    index_path,
    partitions,
    table_dirs,
)
from onca.lake.writer import batch_name, write_parquet_atomic

SMALL_FILE_BYTES = 64 * 1024 * 1024  # files above this are left alone
MIN_FILES = 2


class CompactionCrash(RuntimeError):
    """Raised by the test hook to stop a compaction between two of its steps."""


def manifests(partition_dir: Path) -> list[Path]:
    return sorted(p for p in partition_dir.glob(f"{MANIFEST_PREFIX}*.json") if p.is_file())


def _read_manifest(path: Path) -> dict[str, object] | None:
    try:
        plan = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None  # a manifest that was never published whole: its output was never renamed either
    return plan if isinstance(plan, dict) else None


def superseded(partition_dir: Path) -> set[str]:
    """Names of data files that a published compaction output replaces (to be ignored by readers)."""
    names: set[str] = set()
    for manifest in manifests(partition_dir):
        plan = _read_manifest(manifest)
        if plan and (partition_dir / str(plan["output"])).exists():
            names.update(str(name) for name in plan["inputs"])  # type: ignore[union-attr]
    return names


def live_files(partition_dir: Path) -> list[Path]:
    """The partition's data files a reader should read: published, and not superseded by a compaction."""
    files = data_files(partition_dir)
    if not any(partition_dir.glob(f"{MANIFEST_PREFIX}*.json")):
        return files
    gone = superseded(partition_dir)
    return [f for f in files if f.name not in gone]


def recover(partition_dir: Path) -> None:
    """Finish (output published) or undo (output missing) every interrupted compaction of the partition."""
    for manifest in manifests(partition_dir):
        plan = _read_manifest(manifest)
        if plan is not None and (partition_dir / str(plan["output"])).exists():
            for name in plan["inputs"]:  # type: ignore[union-attr]
                _delete_data_file(partition_dir / str(name))
        manifest.unlink(missing_ok=True)
    for stale in partition_dir.glob(f".*{TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)  # temporary files of writers that died; never visible as data
    for sidecar in partition_dir.glob(f"{INDEX_PREFIX}*{INDEX_SUFFIX}"):
        data = sidecar.with_name(sidecar.name[len(INDEX_PREFIX):-len(INDEX_SUFFIX)] + DATA_SUFFIX)
        if not data.exists():
            sidecar.unlink(missing_ok=True)  # the index of a staged merge or of a file never published
    fsync_dir(partition_dir)


def _delete_data_file(path: Path) -> None:
    index_path(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def compact_partition(partition_dir: Path, *, small_file_bytes: int = SMALL_FILE_BYTES,
                      crash_after: str | None = None) -> Path | None:
    """Merge the partition's small files into one; returns the merged file, or None when nothing was merged.

    `crash_after` ("write", "manifest", "publish", "delete-one") raises CompactionCrash after that step,
    for tests of the recovery.
    """
    recover(partition_dir)
    inputs = [f for f in data_files(partition_dir) if f.stat().st_size < small_file_bytes]
    if len(inputs) < MIN_FILES:
        return None
    tables = [pq.read_table(f, partitioning=None) for f in inputs]
    merged = pa.concat_tables(tables, promote_options="permissive")
    if "p_event_time" in merged.column_names:
        merged = merged.sort_by([("p_event_time", "ascending")])
    row_ids = merged.column("p_row_id").to_pylist() if "p_row_id" in merged.column_names else []
    output = partition_dir / batch_name(sorted(row_ids) if row_ids else [], prefix="c")
    if output in inputs:
        return None  # already the result of compacting exactly these rows

    staged = partition_dir / f".{output.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
    write_parquet_atomic(merged, staged)  # fully written and fsynced, hidden; its index is beside it
    staged_index = index_path(staged)
    _crash(crash_after, "write")

    manifest = partition_dir / f"{MANIFEST_PREFIX}{uuid.uuid4().hex[:12]}.json"
    plan = {"output": output.name, "inputs": [f.name for f in inputs]}
    pending = manifest.with_name(f".{manifest.name}{TMP_SUFFIX}")
    pending.write_bytes(orjson.dumps(plan))
    _fsync_file(pending)
    os.replace(pending, manifest)
    fsync_dir(partition_dir)
    _crash(crash_after, "manifest")

    if staged_index.exists():
        os.replace(staged_index, index_path(output))
    os.replace(staged, output)  # the commit: from here the inputs are superseded
    fsync_dir(partition_dir)
    _crash(crash_after, "publish")

    for i, name in enumerate(plan["inputs"]):
        _delete_data_file(partition_dir / name)
        if i == 0:
            _crash(crash_after, "delete-one")
    manifest.unlink()
    fsync_dir(partition_dir)
    return output


def compact_lake(root: Path, *, tables: list[str] | None = None, small_file_bytes: int = SMALL_FILE_BYTES) -> int:
    """Compact every partition of the lake (or of `tables`); returns how many partitions were merged."""
    merged = 0
    for table_dir in table_dirs(Path(root)):
        if tables is not None and table_dir.name not in tables:
            continue
        for partition in partitions(table_dir):
            if compact_partition(partition.path, small_file_bytes=small_file_bytes) is not None:
                merged += 1
    return merged


def recover_lake(root: Path) -> None:
    for table_dir in table_dirs(Path(root)):
        for partition in partitions(table_dir):
            recover(partition.path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crash(crash_after: str | None, step: str) -> None:
    if crash_after == step:
        raise CompactionCrash(step)
