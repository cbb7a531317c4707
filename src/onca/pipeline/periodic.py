"""Periodic jobs of the scheduler role: each runs every `every` seconds, one after the other, in one process.

A job that raises is logged and tried again at its next turn; it never stops the others. Jobs run in the
order given, so a slow job delays the next ones rather than overlapping them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    every: float  # seconds between the end of one run and the start of the next
    run: Callable[[datetime], object]
    due: float = 0.0  # monotonic time of the next run (0: at once)


def run_due(jobs: list[PeriodicJob]) -> float:
    """Run every job that is due; returns the monotonic time the next one is."""
    for job in jobs:
        if time.monotonic() >= job.due:
            try:
                job.run(datetime.now(UTC))
            except Exception:
                log.exception("scheduled job %s failed; it runs again in %.1f s", job.name, job.every)
            job.due = time.monotonic() + job.every
    return min((job.due for job in jobs), default=time.monotonic() + 1.0)


def run_jobs(jobs: list[PeriodicJob], stop: threading.Event, tick: Callable[[], bool], *,
             max_sleep: float = 0.5) -> None:
    """Run `jobs` until `stop`; `tick` runs between rounds and ends the loop by returning False."""
    while not stop.is_set() and tick():
        next_due = run_due(jobs)
        stop.wait(min(max_sleep, max(0.0, next_due - time.monotonic())))
