"""The delivery outbox: every (alert, destination) pair is a row that is sent, retried, and finally done or failed.

Rows move pending → sending → done | failed (or back to pending with a later next_attempt_at). Every
attempt is recorded in `deliveries`, so an alert's delivery history shows each try and its answer.

Transient failures (timeouts, connection errors, HTTP 408/429/5xx, AWS throttling) are retried with
exponential backoff and full jitter (a uniformly random delay between 0 and min(cap, base·2^(n-1)),
so many failing deliveries do not retry in lock-step) until `max_attempts` or `max_age` is reached.
Permanent failures (other 4xx, bad credentials, an invalid config, a missing destination) fail at once.

Crash safety: a claimed row is leased (state sending, next_attempt_at = now + lease). If the sender dies
mid-flight the lease expires and the row is picked up again, so delivery is at-least-once; receivers
dedupe on the alert id (PagerDuty dedup_key, Opsgenie alias, the webhook's X-Onca-Delivery header...).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from onca.destinations import registry
from onca.destinations.base import DEFAULT_TIMEOUT, Alert, ConfigError, Destination, DestinationConfig, Result
from onca.destinations.secrets import SecretError, decrypt_config
from onca.store import models

PENDING, SENDING, DONE, FAILED = "pending", "sending", "done", "failed"
Sender = Callable[[Destination, Alert, DestinationConfig, float], Result]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=24)  # counted from when the row was queued
    base_delay: float = 30.0  # seconds; the ceiling of the first retry's delay
    max_delay: float = 3600.0  # the ceiling never grows beyond this

    def ceiling(self, attempts: int) -> float:
        """The largest delay after `attempts` failed attempts (1 after the first failure)."""
        return min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))

    def delay(self, attempts: int, rng: random.Random | None = None, retry_after: float | None = None) -> float:
        """Full jitter; a service's Retry-After (bounded by max_delay) is a lower limit."""
        jitter = (rng or _rng).uniform(0.0, self.ceiling(attempts))
        if retry_after:
            jitter = max(jitter, min(retry_after, self.max_delay))
        return jitter


_rng = random.Random()


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt did (also recorded as a `deliveries` row)."""

    outbox_id: int
    alert_id: str
    destination: str
    attempt: int
    outcome: str  # success | retry | failed
    status_code: int | None
    message: str
    next_attempt_at: datetime | None


# ---- queueing ---------------------------------------------------------------------------------------

def enqueue(session: Session, alert_id: str, destinations: Iterable[str], now: datetime | None = None) -> int:
    """Queue the alert for each destination name; pairs already queued are left alone. Returns rows added."""
    moment = _utc(now)
    names = list(dict.fromkeys(destinations))
    if not names:
        return 0
    existing = set(session.scalars(select(models.Outbox.destination).where(
        models.Outbox.alert_id == alert_id, models.Outbox.destination.in_(names))))
    added = 0
    for name in names:
        if name not in existing:
            session.add(models.Outbox(alert_id=alert_id, destination=name, state=PENDING, attempts=0,
                                      next_attempt_at=moment, last_error="", created_at=moment))
            added += 1
    session.flush()
    return added


def requeue(session: Session, alert_id: str, destination: str, now: datetime | None = None) -> bool:
    """Send again now (a manual re-delivery), whatever the row's state; attempts continue counting."""
    moment = _utc(now)
    row = session.scalars(select(models.Outbox).where(models.Outbox.alert_id == alert_id,
                                                      models.Outbox.destination == destination)).first()
    if row is None:
        enqueue(session, alert_id, [destination], moment)
        return True
    row.state, row.next_attempt_at, row.created_at = PENDING, moment, moment
    session.flush()
    return True


def next_due(session: Session) -> datetime | None:
    """When the next row becomes due (the sender's sleep target); None when nothing is waiting."""
    return session.scalar(select(models.Outbox.next_attempt_at).where(
        models.Outbox.state.in_((PENDING, SENDING))).order_by(models.Outbox.next_attempt_at).limit(1))


# ---- sending ----------------------------------------------------------------------------------------

def load_destination(row: models.Destination, fernet: Fernet) -> tuple[Destination, DestinationConfig]:
    """The kind and the decrypted, validated config of a destinations-table row."""
    kind = registry.kind_of(row.kind)
    return kind, registry.validate(row.kind, decrypt_config(fernet, row.config_encrypted))


def send_one(kind: Destination, alert: Alert, config: DestinationConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """One attempt; a bug or surprise in a sender becomes a transient failure instead of killing the loop."""
    try:
        return kind.send(alert, config, timeout)
    except Exception as err:
        return Result.transient(f"unexpected {type(err).__name__}: {err}")


def deliver_due(
    session: Session,
    now: datetime | None = None,
    *,
    fernet: Fernet,
    policy: RetryPolicy | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    limit: int = 100,
    workers: int = 8,
    link_base: str = "",
    sender: Sender = send_one,
    rng: random.Random | None = None,
) -> list[Attempt]:
    """Send every due row (at most `limit`), record each attempt, and return what happened.

    Commits as it goes: claims are committed before any network call (no database lock is held while
    waiting on a remote service), results after the sends.
    """
    moment = _utc(now)
    policy = policy or RetryPolicy()
    claimed = _claim(session, moment, limit, lease=timedelta(seconds=timeout * 3 + 60))
    if not claimed:
        return []

    names = {row.destination for row in claimed}
    destinations = {d.name: d for d in session.scalars(select(models.Destination).where(
        models.Destination.name.in_(names)))}
    alert_ids = {row.alert_id for row in claimed}
    alerts = {a.id: a for a in session.scalars(select(models.Alert).where(models.Alert.id.in_(alert_ids)))}

    results: dict[int, Result] = {}
    jobs: list[tuple[models.Outbox, Destination, Alert, DestinationConfig]] = []
    for row in claimed:
        problem, job = _prepare(row, destinations.get(row.destination), alerts.get(row.alert_id), fernet, link_base)
        if problem is not None:
            results[row.id] = problem
        elif job is not None:
            jobs.append((row, *job))

    if jobs:
        pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), thread_name_prefix="onca-deliver")
        futures = [(row, pool.submit(sender, kind, alert, config, timeout)) for row, kind, alert, config in jobs]
        # requests' timeout bounds each socket operation, not the whole exchange: a server that drips bytes
        # could hold a worker longer, so the wait is bounded here too (the thread is abandoned, not killed).
        for row, future in futures:
            try:
                results[row.id] = future.result(timeout=timeout * 3 + 5)
            except FutureTimeout:
                results[row.id] = Result.transient(f"no answer within {timeout * 3 + 5:g}s")
        pool.shutdown(wait=False, cancel_futures=True)

    attempts = [_record(session, row, results[row.id], moment, policy, rng) for row in claimed]
    session.commit()
    return attempts


def _claim(session: Session, now: datetime, limit: int, lease: timedelta) -> list[models.Outbox]:
    """Due rows, each taken with a compare-and-set so two senders never send the same row at once."""
    table = models.Outbox
    due = session.scalars(select(table).where(
        table.state.in_((PENDING, SENDING)), table.next_attempt_at <= now,
    ).order_by(table.next_attempt_at, table.id).limit(limit)).all()
    claimed = []
    for row in due:
        taken = session.execute(update(table).where(and_(
            table.id == row.id, table.state == row.state,
            table.next_attempt_at == row.next_attempt_at,
        )).values(state=SENDING, next_attempt_at=now + lease).execution_options(synchronize_session=False))
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(row)
    session.commit()
    for row in claimed:
        session.refresh(row)
    return claimed


Job = tuple[Destination, Alert, DestinationConfig]


def _prepare(row: models.Outbox, destination: models.Destination | None, alert_row: models.Alert | None,
             fernet: Fernet, link_base: str) -> tuple[Result | None, Job | None]:
    if destination is None:
        return Result.fatal(f"destination {row.destination!r} no longer exists"), None
    if not destination.enabled:
        return Result.fatal(f"destination {row.destination!r} is disabled"), None
    if alert_row is None:
        return Result.fatal(f"alert {row.alert_id} no longer exists"), None
    try:
        kind, config = load_destination(destination, fernet)
    except (ConfigError, SecretError) as err:
        return Result.fatal(str(err)), None
    link = f"{link_base.rstrip('/')}/alerts/{alert_row.id}" if link_base else ""
    return None, (kind, Alert.from_record(alert_row, link=link), config)


def _record(session: Session, row: models.Outbox, result: Result, now: datetime, policy: RetryPolicy,
            rng: random.Random | None) -> Attempt:
    attempt = row.attempts + 1
    next_at: datetime | None = None
    message = result.message
    if result.success:
        outcome, state = "success", DONE
    elif result.permanent:
        outcome, state = "failed", FAILED
    else:
        candidate = now + timedelta(seconds=policy.delay(attempt, rng, result.retry_after))
        deadline = _utc(row.created_at) + policy.max_age
        if attempt >= policy.max_attempts:
            outcome, state = "failed", FAILED
            message = f"{message} (gave up after {attempt} attempts)"
        elif candidate > deadline:
            outcome, state = "failed", FAILED
            message = f"{message} (gave up: next attempt would be more than {_hours(policy.max_age)} after queueing)"
        else:
            outcome, state, next_at = "retry", PENDING, candidate
    row.attempts = attempt
    row.state = state
    row.last_error = "" if result.success else message
    if next_at is not None:
        row.next_attempt_at = next_at
    else:
        row.next_attempt_at = now
    session.add(models.Delivery(alert_id=row.alert_id, destination=row.destination, attempt=attempt, at=now,
                                outcome=outcome, status_code=result.status_code, message=message,
                                next_attempt_at=next_at))
    return Attempt(row.id, row.alert_id, row.destination, attempt, outcome, result.status_code, message, next_at)


def history(session: Session, alert_id: str) -> list[models.Delivery]:
    """Every attempt for an alert, oldest first (the alert's delivery history)."""
    return list(session.scalars(select(models.Delivery).where(models.Delivery.alert_id == alert_id)
                                .order_by(models.Delivery.at, models.Delivery.id)))


def _hours(value: timedelta) -> str:
    hours = value.total_seconds() / 3600
    return f"{hours:g}h"


def _utc(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
