"""What the scheduler runs: a job is a name, a cadence, and `run(tick)` that does one tick's work."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.destinations.routing import route
from onca.pipeline.cadence import Cadence
from onca.store.models import Alert, Destination

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"  # the job's own input is broken (bad SQL, a timeout): recorded, and its window is done
ERROR = "error"  # something outside the job failed (database, disk): the window is retried later


@dataclass
class JobRun:
    """One tick of one job: what ran, how it ended, and what it counted."""

    job: str
    tick: datetime
    outcome: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""


class Job(Protocol):
    name: str
    cadence: Cadence
    # True: every missed tick runs (each is a window of data); False: only the latest (maintenance).
    catch_up: bool

    def run(self, tick: datetime) -> JobRun: ...


def row_id(*parts: str) -> str:
    """A p_row_id for rows the scheduler makes up, a function of what identifies them: a re-run after a
    crash produces the same ids, and the alert manager recognises them as already counted."""
    return "s" + hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=16).hexdigest()


def spec_router(session_factory: Callable[[], Session],
                specs: Callable[[], Mapping[str, Mapping[str, Any]]]) -> Callable[[Alert], list[str]]:
    """The alert manager's `route` for the scheduler's rules: the rule's OutputIds, else by severity."""
    def destinations_of(alert: Alert) -> list[str]:
        with session_factory() as session:
            destinations = list(session.scalars(select(Destination)))
        spec = specs().get(alert.rule_id, {})
        return [d.name for d in route(alert, destinations, spec.get("OutputIds"), alert.destinations)]
    return destinations_of
