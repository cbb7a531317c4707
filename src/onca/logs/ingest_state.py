"""What `onca ingest` has already ingested, by content hash, so a file given twice is not stored twice."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any


class IngestState:
    """A small SQLite file in the lake's state directory."""

    def __init__(self, lake: Path) -> None:
        path = lake / "_state" / "ingest.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS ingested (sha256 TEXT PRIMARY KEY, origin TEXT NOT NULL,"
                         " at REAL NOT NULL, counts TEXT NOT NULL)")

    def seen(self, sha256: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT origin, at, counts FROM ingested WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            return None
        return {"origin": row[0], "at": row[1], "counts": json.loads(row[2])}

    def mark(self, files: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Record (sha256, origin, counts) of files whose rows are all written, in one transaction."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO ingested (sha256, origin, at, counts) VALUES (?, ?, ?, ?) ON CONFLICT (sha256)"
                " DO UPDATE SET origin = excluded.origin, at = excluded.at, counts = excluded.counts",
                [(sha256, origin, now, json.dumps(counts, sort_keys=True)) for sha256, origin, counts in files])

    def close(self) -> None:
        self._db.close()
