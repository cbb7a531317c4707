"""The outbox on a real SQLite metadata database, delivering to a real HTTP receiver."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from onca.destinations import outbox
from onca.destinations import store as destinations
from onca.destinations.outbox import RetryPolicy, deliver_due, enqueue
from onca.destinations.webhook import verify_signature
from onca.store import models
from tests.destinations.conftest import Receiver

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "receiver-shared-secret"


def add_alert(session: Any, alert_id: str = "alert0000000000000000000000000001") -> str:
    session.add(models.Alert(id=alert_id, rule_id="AWS.Console.RootLogin", kind="RULE", dedup="root",
                             dedup_key=alert_id[-32:], severity="HIGH", title="Root login",
                             alert_context={"ip": "1.2.3.4"}, log_types=["AWS.CloudTrail"], first_event_time=T0,
                             last_event_time=T0, event_count=1,
                             window_start=T0, window_end=T0 + timedelta(hours=1), raised=True))
    session.flush()
    return alert_id


@pytest.fixture
def queued(session_factory: Callable[[], Any], fernet: Fernet, receiver: Receiver) -> str:
    with session_factory() as session:
        destinations.add(session, fernet, "hook", "webhook", {"url": f"{receiver.url}/in", "secret": SECRET})
        alert_id = add_alert(session)
        assert enqueue(session, alert_id, ["hook"], T0) == 1
        assert enqueue(session, alert_id, ["hook"], T0) == 0  # already queued
    return alert_id


def deliveries(session: Any, alert_id: str) -> list[tuple[int, str, int | None]]:
    return [(d.attempt, d.outcome, d.status_code) for d in outbox.history(session, alert_id)]


def row(session: Any, alert_id: str) -> models.Outbox:
    return session.scalars(select(models.Outbox).where(models.Outbox.alert_id == alert_id)).one()


def test_500_then_200_is_two_attempts_and_success(session_factory: Callable[[], Any], fernet: Fernet,
                                                   receiver: Receiver, queued: str) -> None:
    receiver.respond(500, "boom")
    with session_factory() as session:
        (first,) = deliver_due(session, T0, fernet=fernet, timeout=5)
        assert (first.attempt, first.outcome, first.status_code) == (1, "retry", 500)
        assert first.next_attempt_at is not None and T0 <= first.next_attempt_at <= T0 + timedelta(seconds=30)
        # Not due yet just before the retry time.
        assert deliver_due(session, first.next_attempt_at - timedelta(microseconds=1), fernet=fernet) == []
        (second,) = deliver_due(session, first.next_attempt_at, fernet=fernet, timeout=5)
        assert (second.attempt, second.outcome, second.status_code) == (2, "success", 200)
        assert deliver_due(session, T0 + timedelta(days=1), fernet=fernet) == []
    with session_factory() as session:
        assert deliveries(session, queued) == [(1, "retry", 500), (2, "success", 200)]
        assert (row(session, queued).state, row(session, queued).attempts) == ("done", 2)
    assert len(receiver.requests) == 2
    assert all(verify_signature(SECRET, r.body, r.headers, now=r_time(r)) for r in receiver.requests)
    assert receiver.requests[1].json["alert"]["id"] == queued


def r_time(request: Any) -> float:
    return float(request.headers["X-Onca-Timestamp"])


def test_400_fails_at_once_and_is_not_retried(session_factory: Callable[[], Any], fernet: Fernet,
                                              receiver: Receiver, queued: str) -> None:
    receiver.respond(400, "bad payload")
    with session_factory() as session:
        (attempt,) = deliver_due(session, T0, fernet=fernet)
        assert (attempt.outcome, attempt.status_code, attempt.next_attempt_at) == ("failed", 400, None)
        assert deliver_due(session, T0 + timedelta(days=2), fernet=fernet) == []
        assert deliveries(session, queued) == [(1, "failed", 400)]
        assert row(session, queued).state == "failed" and "bad payload" in row(session, queued).last_error
    assert len(receiver.requests) == 1


def test_gives_up_after_max_attempts(session_factory: Callable[[], Any], fernet: Fernet, receiver: Receiver,
                                     queued: str) -> None:
    receiver.default = (503, "down", {})
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=1)
    now = T0
    outcomes = []
    with session_factory() as session:
        for _ in range(5):
            for attempt in deliver_due(session, now, fernet=fernet, policy=policy):
                outcomes.append(attempt.outcome)
            now += timedelta(seconds=2)
        assert outcomes == ["retry", "retry", "failed"]
        assert row(session, queued).state == "failed"
        assert "gave up after 3 attempts" in row(session, queued).last_error


def test_gives_up_when_the_next_try_is_past_max_age(session_factory: Callable[[], Any], fernet: Fernet,
                                                    receiver: Receiver, queued: str) -> None:
    receiver.default = (503, "down", {})
    policy = RetryPolicy(max_attempts=100, max_age=timedelta(minutes=1), base_delay=600, max_delay=600)
    with session_factory() as session:
        (attempt,) = deliver_due(session, T0 + timedelta(seconds=59), fernet=fernet, policy=policy,
                                 rng=_Fixed(0.9))
        assert attempt.outcome == "failed" and "more than" in attempt.message


class _Fixed(random.Random):
    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def test_backoff_is_full_jitter_within_exponential_bounds() -> None:
    policy = RetryPolicy(base_delay=30, max_delay=3600)
    assert [policy.ceiling(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    rng = random.Random(7)
    for attempts in range(1, 12):
        delays = [policy.delay(attempts, rng) for _ in range(500)]
        assert all(0 <= d <= policy.ceiling(attempts) for d in delays)
        # Spread over the whole range (the point of full jitter), not clustered at the ceiling.
        assert min(delays) < policy.ceiling(attempts) * 0.1 and max(delays) > policy.ceiling(attempts) * 0.9
    assert policy.delay(1, _Fixed(0.0), retry_after=120) == 120  # Retry-After is a floor
    assert policy.delay(1, _Fixed(0.0), retry_after=10**6) == 3600  # ...bounded by max_delay


def test_retry_after_header_is_honoured(session_factory: Callable[[], Any], fernet: Fernet, receiver: Receiver,
                                        queued: str) -> None:
    receiver.respond(429, "slow down", {"Retry-After": "600"})
    with session_factory() as session:
        (attempt,) = deliver_due(session, T0, fernet=fernet)
        assert attempt.outcome == "retry" and attempt.next_attempt_at == T0 + timedelta(seconds=600)


def test_connection_refused_is_retried(session_factory: Callable[[], Any], fernet: Fernet,
                                       closed_port_url: str) -> None:
    with session_factory() as session:
        destinations.add(session, fernet, "down", "webhook", {"url": closed_port_url, "secret": SECRET})
        alert_id = add_alert(session)
        enqueue(session, alert_id, ["down"], T0)
        (attempt,) = deliver_due(session, T0, fernet=fernet, timeout=2)
        assert attempt.outcome == "retry" and attempt.status_code is None and "cannot connect" in attempt.message


def test_missing_or_disabled_destination_fails_permanently(session_factory: Callable[[], Any], fernet: Fernet,
                                                          receiver: Receiver, queued: str) -> None:
    with session_factory() as session:
        destinations.add(session, fernet, "paused", "slack", {"webhook_url": receiver.url}, enabled=False)
        enqueue(session, queued, ["ghost", "paused"], T0)
        results = {a.destination: a for a in deliver_due(session, T0, fernet=fernet)}
        assert results["hook"].outcome == "success"
        assert results["ghost"].outcome == "failed" and "no longer exists" in results["ghost"].message
        assert results["paused"].outcome == "failed" and "disabled" in results["paused"].message
    assert len(receiver.requests) == 1


def test_a_crashed_sender_s_claim_expires_and_is_retried(session_factory: Callable[[], Any], fernet: Fernet,
                                                         receiver: Receiver, queued: str) -> None:
    with session_factory() as session:
        # A sender claimed the row and died before recording anything.
        claimed = outbox._claim(session, T0, 10, lease=timedelta(seconds=90))
        assert [r.state for r in claimed] == ["sending"]
        assert deliver_due(session, T0 + timedelta(seconds=89), fernet=fernet) == []  # lease still held
        (attempt,) = deliver_due(session, T0 + timedelta(seconds=90), fernet=fernet)
        assert attempt.outcome == "success" and attempt.attempt == 1


def test_many_rows_are_sent_concurrently(session_factory: Callable[[], Any], fernet: Fernet,
                                         receiver: Receiver) -> None:
    receiver.delay = 0.3
    with session_factory() as session:
        destinations.add(session, fernet, "hook", "webhook", {"url": receiver.url, "secret": SECRET})
        for i in range(8):
            enqueue(session, add_alert(session, f"alert{i:027d}"), ["hook"], T0)
    started = time.monotonic()
    with session_factory() as session:
        attempts = deliver_due(session, T0, fernet=fernet, workers=8)
    assert [a.outcome for a in attempts] == ["success"] * 8
    assert time.monotonic() - started < 8 * 0.3  # not one after another
