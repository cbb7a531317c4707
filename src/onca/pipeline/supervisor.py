"""Child processes of `onca serve`: started, restarted with backoff when they die, stopped in order.

Each child is an `onca serve --role ...` process of its own (a fresh interpreter, nothing inherited from the
parent's threads). A child dies with its parent even when the parent is killed with SIGKILL: it asks the
kernel for SIGKILL on the parent's death (PR_SET_PDEATHSIG, Linux) and also watches its parent pid, which
covers the moment before the request and other systems. The pid of every running child is in
`<home>/state/pids/<name>.pid`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
PARENT_ENV = "ONCA_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> int | None:
    """In a supervised child: arrange to be killed when the supervisor dies; returns its pid (None when this
    process was not started by a supervisor). Exits at once if the supervisor is already gone."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None:
        return None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os._exit(1)
    return int(parent)


def describe(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0  # consecutive early deaths, for the backoff
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Runs `children` (name -> argv) until `stop`. Call `poll` regularly from the thread that called `start`:
    on Linux the kernel ties a child's parent-death signal to the thread that started it."""

    def __init__(self, children: dict[str, list[str]], pid_dir: Path, *, base_delay: float = 0.5,
                 max_delay: float = 30.0, stable_after: float = 30.0) -> None:
        self.children = [Child(name, argv) for name, argv in children.items()]
        self.pid_dir = pid_dir
        self.base_delay, self.max_delay, self.stable_after = base_delay, max_delay, stable_after
        self._stopping = False

    def start(self) -> None:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        # Own process group: a Ctrl-C in the terminal reaches the supervisor only, which stops the intake first.
        child.process = subprocess.Popen(child.argv, env=env, stdin=subprocess.DEVNULL, process_group=0)
        child.started, child.restart_at = time.monotonic(), None
        pid_file = self.pid_dir / f"{child.name}.pid"
        pid_file.with_suffix(".tmp").write_text(f"{child.process.pid}\n")
        os.replace(pid_file.with_suffix(".tmp"), pid_file)
        log.info("%s started (pid %d)", child.name, child.process.pid)

    def poll(self) -> None:
        """Notice dead children and restart them once their backoff has passed."""
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is not None and not self._stopping:
                code = child.process.returncode
                child.failures = 1 if now - child.started >= self.stable_after else child.failures + 1
                delay = min(self.max_delay, self.base_delay * 2 ** (child.failures - 1))
                log.warning("%s (pid %d) %s; restarting it in %.1f s", child.name, child.process.pid,
                            describe(code), delay)
                child.process, child.restart_at = None, now + delay
            if child.process is None and child.restart_at is not None and now >= child.restart_at \
                    and not self._stopping:
                child.restarts += 1
                self._spawn(child)

    def pids(self) -> dict[str, int]:
        return {c.name: c.process.pid for c in self.children if c.process is not None}

    def stop(self, deadline: float = 30.0) -> None:
        """SIGTERM every child (each finishes its batch and commits), SIGKILL what still runs at the deadline."""
        self._stopping = True
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        end = time.monotonic() + deadline
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) did not stop within %.0f s; killing it", child.name, child.process.pid,
                            deadline)
                child.process.kill()
                child.process.wait()
        for child in self.children:
            with contextlib.suppress(FileNotFoundError):
                (self.pid_dir / f"{child.name}.pid").unlink()
            child.process = None
