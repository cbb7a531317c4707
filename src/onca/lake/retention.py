"""Retention: delete whole hour partitions older than each table's retention period.

`apply_retention(root, {"aws_cloudtrail": 90, "quarantine": 30}, now=...)`: a table absent from the
mapping (or mapped to None) is kept forever. A partition goes when its whole hour ends at or before the
cutoff (now - days). Deletion is atomic for readers: the partition directory is first renamed into
<lake>/.trash/ (one rename: readers see the whole partition or none of it), then removed; a crash leaves
only trash, which the next run empties.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from onca.lake.layout import TRASH_DIR, ensure_dir, fsync_dir, partitions, table_dirs


@dataclass(frozen=True, slots=True)
class Deleted:
    table: str
    partition: str  # dt=YYYY-MM-DD/hour=HH
    files: int


def apply_retention(root: Path | str, days: Mapping[str, int | None], *, now: datetime | None = None,
                    dry_run: bool = False) -> list[Deleted]:
    """Delete the expired partitions; returns what was (or, with dry_run, would be) deleted."""
    root = Path(root)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    trash = root / TRASH_DIR
    empty_trash(root)
    deleted: list[Deleted] = []
    for table_dir in table_dirs(root):
        keep = days.get(table_dir.name)
        if keep is None:
            continue
        cutoff = now - timedelta(days=keep)
        for partition in list(partitions(table_dir)):
            if partition.end > cutoff:
                break  # partitions come oldest first
            relative = f"{partition.path.parent.name}/{partition.path.name}"
            files = sum(1 for f in partition.path.iterdir() if f.name.endswith(".parquet"))
            deleted.append(Deleted(table_dir.name, relative, files))
            if dry_run:
                continue
            ensure_dir(trash)
            os.replace(partition.path, trash / f"{table_dir.name}-{uuid.uuid4().hex[:12]}")
            fsync_dir(partition.path.parent)
            _remove_if_empty(partition.path.parent)
    if not dry_run:
        empty_trash(root)
    return deleted


def empty_trash(root: Path) -> None:
    trash = Path(root) / TRASH_DIR
    if trash.is_dir():
        for entry in trash.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()  # the dt= directory, once its last hour is gone
    except OSError:
        return
    fsync_dir(directory.parent)
