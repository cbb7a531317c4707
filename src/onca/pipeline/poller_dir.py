"""Directory poller: spools every complete file dropped into a watched directory, then moves it to `done/`.

A file is complete when its size and mtime have not changed for `stable_seconds` (a file moved in whole
is complete one interval after it appears; a file still being written keeps changing). Hidden files
(`.name`) and subdirectories are ignored. Files are read with onca.logs.readers.read_records, so gzip,
bzip2, xz, zip, NDJSON, JSON arrays and envelopes and text lines all work; records are spooled in chunks
of `chunk_records` (or `chunk_bytes`).

**Guarantee: every record of a file is spooled exactly once, across crashes at any point**, provided the
file is not modified once complete and the spool segment holding an interrupted chunk still exists at
restart. The state file (`<state_dir>/dirpoller-<source>.json`, written atomically) holds, per file being
spooled, its identity (device, inode, size, mtime) and its progress; onca.pipeline.chunk_spooler records an
intent before each chunk and resolves it after a crash. A file whose records are all spooled is moved to
`done/` (a name already there gets a numeric suffix) and then forgotten by the state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onca.lake.layout import fsync_dir
from onca.logs.readers import ReadReport, read_records
from onca.pipeline.chunk_spooler import ChunkedCounts, ChunkSpooler, new_progress
from onca.pipeline.spool import Spool, atomic_write

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DirPollerConfig:
    stable_seconds: float = 2.0
    poll_interval: float = 1.0
    chunk_records: int = 1000
    chunk_bytes: int = 4 << 20
    done_dir: str = "done"


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


class DirectoryPoller(ChunkedCounts):
    """Watches `directory` for `source_id`. Call `poll_once()` (tests, schedulers) or `start()`/`stop()`."""

    def __init__(self, spool: Spool, source_id: str, directory: str | os.PathLike[str],
                 state_dir: str | os.PathLike[str], config: DirPollerConfig | None = None) -> None:
        self.spool = spool
        self.source_id = source_id
        self.dir = Path(directory)
        self.config = config or DirPollerConfig()
        self.done = self.dir / self.config.done_dir
        state_path = Path(state_dir)
        state_path.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)
        self.state_file = state_path / f"dirpoller-{safe}.json"
        self._seen: dict[str, tuple[list[int], float]] = {}  # name -> (identity, monotonic time first seen so)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.files_done = 0
        self.messages: list[str] = []
        self._state: dict[str, Any] = self._load()
        self.chunks = ChunkSpooler(spool, source_id, self._save, chunk_records=self.config.chunk_records,
                                   chunk_bytes=self.config.chunk_bytes)

    # -- state ---------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            return {"files": {}}

    def _save(self) -> None:
        atomic_write(self.state_file, json.dumps(self._state, sort_keys=True).encode())

    # -- polling -------------------------------------------------------------------------------------

    def poll_once(self, now: float | None = None) -> int:
        """Spool every file that is complete now; returns how many files were finished."""
        now = time.monotonic() if now is None else now
        finished = 0
        try:
            entries = sorted(os.scandir(self.dir), key=lambda e: e.name)
        except FileNotFoundError:
            return 0
        present = set()
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            present.add(entry.name)
            try:
                ident = _identity(entry.stat(follow_symlinks=False))
            except FileNotFoundError:
                continue
            started = self._state["files"].get(entry.name)
            if started is not None and started["identity"] == ident:
                ready = True  # spooling had begun before a restart: the file was complete then
            else:
                seen = self._seen.get(entry.name)
                if seen is None or seen[0] != ident:
                    self._seen[entry.name] = (ident, now)
                    ready = self.config.stable_seconds <= 0
                else:
                    ready = now - seen[1] >= self.config.stable_seconds
            if ready:
                self._process(entry.name, ident)
                self._seen.pop(entry.name, None)
                finished += 1
        for name in list(self._seen):
            if name not in present:
                del self._seen[name]
        # Files recorded in the state that are gone (moved to done/ just before a crash) are forgotten.
        stale = [n for n in self._state["files"] if n not in present]
        if stale:
            for name in stale:
                del self._state["files"][name]
            self._save()
        return finished

    def _process(self, name: str, ident: list[int]) -> None:
        path = self.dir / name
        files = self._state["files"]
        state = files.get(name)
        if state is None or state["identity"] != ident:
            state = files[name] = {"identity": ident, **new_progress()}
        report = ReadReport()
        self.chunks.spool_records(state, (r.data for r in read_records(path, origin=name, report=report)))
        for message in report.messages:
            self.messages.append(str(message))
            log.warning("directory poller %s: %s", self.source_id, message)
        self._move_done(path)
        self.files_done += 1
        del files[name]
        self._save()

    def _move_done(self, path: Path) -> None:
        self.done.mkdir(exist_ok=True)
        target = self.done / path.name
        n = 0
        while target.exists():
            n += 1
            target = self.done / f"{path.name}.{n}"
        os.rename(path, target)
        fsync_dir(self.dir)

    # -- background ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("directory poller %s failed; retrying", self.source_id)
            self._stop.wait(self.config.poll_interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"dirpoller-{self.source_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(timeout=10)

