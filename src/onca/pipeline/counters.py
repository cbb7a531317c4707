"""Counters a worker or scheduler process publishes for the api process's /metrics.

Each process writes its totals to `<home>/state/metrics/<name>.json` (write, then rename: a reader never
sees half a file) and the api process sums every file. A restarted process starts from what its predecessor
last published, so a counter never goes backwards; what a killed process counted after its last publish is
lost (a crash replays that work, which counts it again).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path


def _read(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return {key: int(value) for key, value in data.items() if isinstance(value, int)}


class PublishedCounters:
    """The published counters of one named process (one writer per name at a time)."""

    def __init__(self, directory: Path, name: str, *, every: float = 0.25) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.json"
        self.base = _read(self.path)
        self.every = every
        self._published: dict[str, int] | None = None
        self._at = 0.0

    def publish(self, values: Mapping[str, int], *, force: bool = False) -> None:
        """Write base + `values` when they changed, at most every `every` seconds unless forced."""
        now = time.monotonic()
        if not force and now - self._at < self.every:
            return
        totals = {**self.base, **{key: self.base.get(key, 0) + value for key, value in values.items()}}
        if totals == self._published:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(totals))
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._published, self._at = totals, now


def totals(directory: Path) -> dict[str, int]:
    """The sum of every process's published counters."""
    summed: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if name.endswith(".json") and not name.startswith("."):
                for key, value in _read(directory / name).items():
                    summed[key] = summed.get(key, 0) + value
    return summed
