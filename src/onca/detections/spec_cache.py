"""A cache of parsed content YAML, so repeated `onca test` runs skip most of the parsing.

Parsing a large library's YAML is the biggest fixed cost of a run. Like Python's bytecode cache, an
entry is reused only while the file's size and modification time are unchanged, and the cache is a
disposable file: if it is missing, unreadable or unwritable, content is simply parsed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_ENV = "ONCA_CACHE_DIR"
_FORMAT = 1


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "onca"


class SpecCache:
    """Parsed specs of one content root, keyed by absolute path and validated by (mtime, size)."""

    def __init__(self, root: Path) -> None:
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:24]
        self.file = cache_dir() / f"specs-{digest}.pickle"
        self.entries: dict[str, tuple[int, int, Any]] = {}
        self.dirty = False
        with contextlib.suppress(Exception):  # a corrupt or foreign cache is just ignored
            with self.file.open("rb") as handle:
                data = pickle.load(handle)
            if data.get("format") == _FORMAT:
                self.entries = data["entries"]

    def get(self, path: Path, parse: Callable[[bytes], Any]) -> Any:
        """The parsed content of `path`; `parse` errors propagate and are not cached."""
        stat = path.stat()
        key = str(path)
        entry = self.entries.get(key)
        if entry is not None and entry[0] == stat.st_mtime_ns and entry[1] == stat.st_size:
            return entry[2]
        value = parse(path.read_bytes())
        self.entries[key] = (stat.st_mtime_ns, stat.st_size, value)
        self.dirty = True
        return value

    def save(self) -> None:
        if not self.dirty:
            return
        with contextlib.suppress(OSError, pickle.PicklingError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".specs-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    pickle.dump({"format": _FORMAT, "entries": self.entries}, handle, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.file)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
