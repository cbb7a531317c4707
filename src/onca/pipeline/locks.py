"""Exclusive locks of the worker partitions and the scheduler, held for a process's lifetime.

flock() locks die with their process, so a lock left by a killed process never needs cleaning up, and an
orphan still finishing its batch keeps its replacement waiting instead of running the same partition twice.
Lock files live in `<home>/state/locks/`: `worker-IofN.lock`, `scheduler.lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
from pathlib import Path

log = logging.getLogger(__name__)
_WORKER_LOCK = re.compile(r"^worker-\d+of(\d+)\.lock$")


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _busy_other_layout(directory: Path, partitions: int) -> str | None:
    """A lock of a worker of another layout that some process holds right now."""
    for name in sorted(os.listdir(directory)):
        match = _WORKER_LOCK.match(name)
        if match and int(match[1]) != partitions:
            fd = _try_lock(directory / name)
            if fd is None:
                return name
            os.close(fd)
    return None


class Locks:
    """Exclusive locks held together; `acquire` waits (stop-aware) until all of them are free."""

    def __init__(self, directory: Path, names: list[str], *, partitions: int | None = None) -> None:
        self.directory = directory
        self.names = names
        self.partitions = partitions  # set for workers: also wait until no worker of another layout runs
        self._fds: list[int] = []

    def acquire(self, stop: threading.Event, poll: float = 0.2) -> bool:
        """True once held; False when `stop` was set first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        announced = False
        while not stop.is_set():
            blocker = self._try_all()
            if blocker is None:
                return True
            if not announced:
                log.info("waiting for %s to be released (another process still runs it)", blocker)
                announced = True
            stop.wait(poll)
        return False

    def _try_all(self) -> str | None:
        for name in self.names:
            fd = _try_lock(self.directory / name)
            if fd is None:
                self.release()
                return name
            self._fds.append(fd)
        other = _busy_other_layout(self.directory, self.partitions) if self.partitions else None
        if other is not None:
            self.release()
        return other

    def release(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
