"""The alert manager: dedup windows, thresholds, rule errors, signals, outbox rows and idempotent replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from onca.alerts.manager import AlertManager
from onca.alerts.model import RuleSettings, alert_id
from onca.store.models import Alert, AlertUnique, Outbox, ProcessedMatch

from .conftest import LOG_TYPE, T0, Clock, error, event, match

US = timedelta(microseconds=1)
HOUR = timedelta(minutes=60)


def alerts(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.scalars(select(Alert).order_by(Alert.window_start, Alert.kind, Alert.id)))


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def run(manager: AlertManager, events: list[dict], matches: list, errors: list | None = None,
        meta: dict | None = None):
    return manager.process(matches, errors or [], events=events, log_type=LOG_TYPE, rule_meta=meta or {})


def test_matches_within_the_window_merge_and_the_exact_end_opens_a_new_alert(
        engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    manager = make_manager()
    last_in = HOUR - US
    events = [event("a", timedelta(0)), event("b", last_in), event("c", HOUR), event("d", HOUR + last_in),
              event("e", 2 * HOUR)]
    # Spread over three batches: the window is a property of the stored alert, not of a batch.
    run(manager, events, [match("R", 0), match("R", 1)])
    run(manager, events, [match("R", 2), match("R", 3)])
    run(manager, events, [match("R", 4)])
    first, second, third = alerts(engine)
    assert (first.window_start, first.window_end) == (T0, T0 + HOUR)
    assert (first.event_count, first.first_event_time, first.last_event_time) == (2, T0, T0 + last_in)
    assert (second.window_start, second.window_end, second.event_count) == (T0 + HOUR, T0 + 2 * HOUR, 2)
    assert (third.window_start, third.event_count) == (T0 + 2 * HOUR, 1)
    assert first.id == alert_id("RULE", "R", "d", T0)
    assert all(a.raised and a.status == "OPEN" and a.log_types == [LOG_TYPE] for a in (first, second, third))


def test_one_batch_in_any_order_gives_the_same_alerts(engine: Engine,
                                                      make_manager: Callable[..., AlertManager]) -> None:
    events = [event("c", HOUR), event("a", timedelta(0)), event("b", HOUR - US)]
    run(make_manager(), events, [match("R", 0), match("R", 1), match("R", 2)])
    first, second = alerts(engine)
    assert (first.window_start, first.event_count, second.window_start, second.event_count) == (T0, 2, T0 + HOUR, 1)


def test_dedup_period_and_dedup_strings_separate_alerts(engine: Engine,
                                                        make_manager: Callable[..., AlertManager]) -> None:
    events = [event("a", timedelta(0)), event("b", timedelta(minutes=9)), event("c", timedelta(minutes=10)),
              event("d", timedelta(minutes=1))]
    meta = {"R": {"DedupPeriodMinutes": 10}}
    run(make_manager(), events, [match("R", 0), match("R", 1), match("R", 2), match("R", 3, dedup="other")], meta=meta)
    got = sorted((a.dedup, a.window_start - T0, a.window_end - a.window_start, a.event_count) for a in alerts(engine))
    ten = timedelta(minutes=10)
    assert got == [("d", timedelta(0), ten, 2), ("d", ten, ten, 1), ("other", timedelta(minutes=1), ten, 1)]


def test_first_match_sets_what_the_alert_says(engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    events = [event("a", timedelta(minutes=1)), event("b", timedelta(minutes=2))]
    manager = make_manager()
    run(manager, events, [match("R", 0, title="first", severity="low", context='{"n": 1}', destinations=["x"]),
                          match("R", 1, title="second", severity="CRITICAL", context='{"n": 2}')],
        meta={"R": {"Description": "spec description", "Runbook": "spec runbook"}})
    (alert,) = alerts(engine)
    assert (alert.title, alert.severity, alert.alert_context, alert.destinations) == ("first", "LOW", {"n": 1}, ["x"])
    assert (alert.description, alert.runbook) == ("spec description", "spec runbook")
    # A later match in the window changes counts and times only.
    run(manager, [*events, event("d", timedelta(minutes=3))], [match("R", 2, title="later", severity="INFO")])
    (alert,) = alerts(engine)
    assert (alert.title, alert.severity, alert.event_count) == ("first", "LOW", 3)
    assert (alert.first_event_time, alert.last_event_time) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))


def test_a_late_event_before_a_window_opens_one_that_ends_where_the_next_starts(
        engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    manager = make_manager()
    events = [event("a", timedelta(0)), event("b", -timedelta(minutes=30)), event("c", -US), event("d", timedelta(0))]
    run(manager, events, [match("R", 0)])
    run(manager, events, [match("R", 1)])
    run(manager, events, [match("R", 2), match("R", 3)])
    early, original = alerts(engine)
    assert (early.window_start, early.window_end, early.event_count) == (T0 - timedelta(minutes=30), T0, 2)
    assert (original.window_start, original.window_end, original.event_count) == (T0, T0 + HOUR, 2)


def test_arrival_groups_in_one_batch_give_the_alerts_of_one_batch_each(
        engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    """A worker batch of several spool entries makes the alerts the entries make one by one (above: two
    windows), not those of one batch sorted by event time (one window): batch boundaries cannot change alerts."""
    events = [event("a", timedelta(0)), event("b", -timedelta(minutes=30)), event("c", -US), event("d", timedelta(0))]
    make_manager().process([match("R", 0), match("R", 1), match("R", 2), match("R", 3)], [], events=events,
                           log_type=LOG_TYPE, rule_meta={}, arrivals=[0, 1, 2, 2])
    early, original = alerts(engine)
    assert (early.window_start, early.window_end, early.event_count) == (T0 - timedelta(minutes=30), T0, 2)
    assert (original.window_start, original.window_end, original.event_count) == (T0, T0 + HOUR, 2)


def test_threshold_counts_events_and_raises_once(engine: Engine, make_manager: Callable[..., AlertManager],
                                                 clock: Clock) -> None:
    manager = make_manager(route=lambda alert: ["slack", "pager", "slack"])
    meta = {"R": {"Threshold": 3}}
    events = [event(f"r{i}", timedelta(minutes=i)) for i in range(5)]
    result = run(manager, events, [match("R", 0), match("R", 1)], meta=meta)
    (alert,) = alerts(engine)
    assert (alert.raised, alert.raised_at, alert.event_count, result.raised) == (False, None, 2, [])
    assert count(engine, Outbox) == 0
    clock.now += timedelta(minutes=5)
    result = run(manager, events, [match("R", 2)], meta=meta)
    (alert,) = alerts(engine)
    assert (alert.raised, alert.raised_at, alert.event_count, result.raised) == (True, clock.now, 3, [alert.id])
    with Session(engine) as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.destination)).all()
        assert [(o.destination, o.state, o.attempts, o.next_attempt_at) for o in rows] == [
            ("pager", "pending", 0, clock.now), ("slack", "pending", 0, clock.now)]
    result = run(manager, events, [match("R", 3), match("R", 4)], meta=meta)
    assert result.raised == [] and count(engine, Outbox) == 2
    assert alerts(engine)[0].event_count == 5


def test_threshold_counts_distinct_unique_values(engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    manager = make_manager()
    meta = {"R": RuleSettings(threshold=2)}
    events = [event(f"r{i}", timedelta(minutes=i)) for i in range(5)]
    run(manager, events, [match("R", 0, unique="alice"), match("R", 1, unique="alice"), match("R", 2, unique="alice")],
        meta=meta)
    (alert,) = alerts(engine)
    assert (alert.raised, alert.event_count, alert.unique_count) == (False, 3, 1)
    result = run(manager, events, [match("R", 3, unique="bob"), match("R", 4, unique="alice")], meta=meta)
    (alert,) = alerts(engine)
    assert (alert.raised, alert.event_count, alert.unique_count, result.raised) == (True, 5, 2, [alert.id])
    with Session(engine) as session:
        assert sorted(session.scalars(select(AlertUnique.value))) == ["alice", "bob"]


def test_threshold_starts_again_in_a_new_window(engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    events = [event("a", timedelta(0)), event("b", HOUR - US), event("c", HOUR)]
    run(make_manager(), events, [match("R", 0), match("R", 1), match("R", 2)], meta={"R": {"Threshold": 3}})
    assert [(a.event_count, a.raised) for a in alerts(engine)] == [(2, False), (1, False)]


def test_rule_errors_are_grouped_by_error_type_and_always_raise(
        engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    manager = make_manager(route=lambda alert: ["ops"])
    events = [event(f"r{i}", timedelta(minutes=i)) for i in range(5)]
    meta = {"R": {"Threshold": 10, "CreateAlert": False, "Severity": "Medium", "DedupPeriodMinutes": 3}}
    result = run(manager, events, [match("R", 4, dedup="KeyError")],
                 [error("R", 0), error("R", 1, "TypeError", "bad"), error("R", 2), error("R", 3)], meta=meta)
    got = alerts(engine)
    assert [(a.kind, a.dedup, a.event_count, a.raised, a.severity) for a in got] == [
        ("RULE_ERROR", "KeyError", 2, True, "MEDIUM"), ("RULE_ERROR", "TypeError", 1, True, "MEDIUM"),
        ("RULE_ERROR", "KeyError", 1, True, "MEDIUM")]
    assert got[0].title == "Rule R failed: KeyError: 'x'"
    assert got[0].alert_context == {"error_type": "KeyError", "message": "'x'"}
    assert got[2].window_start == T0 + timedelta(minutes=3)  # the rule's dedup period applies to its errors
    assert result.signals == 1 and len(result.raised) == 3 and count(engine, Outbox) == 3


def test_signals_make_no_alert(engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    events = [event("a", timedelta(0))]
    result = run(make_manager(), events, [match("S", 0)], meta={"S": {"CreateAlert": False}})
    assert (result.signals, result.alerts, count(engine, Alert), count(engine, ProcessedMatch)) == (1, [], 0, 0)


def test_replaying_a_batch_counts_nothing_twice(engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    manager = make_manager(route=lambda alert: ["slack"])
    events = [event("a", timedelta(0)), event("b", timedelta(minutes=1)), event("c", timedelta(minutes=2))]
    batch = ([match("R", 0, unique="u1"), match("R", 1, unique="u2"), match("Q", 0)], [error("R", 2)])
    meta = {"R": {"Threshold": 2}}
    first = run(manager, events, *batch, meta=meta)
    before = [(a.id, a.event_count, a.unique_count, a.raised) for a in alerts(engine)]
    again = run(manager, events, *batch, meta=meta)
    assert [(a.id, a.event_count, a.unique_count, a.raised) for a in alerts(engine)] == before
    assert (first.replayed, again.replayed, again.raised, again.alerts) == (0, 4, [], [])
    assert count(engine, Outbox) == len(first.raised) == 3
    assert count(engine, ProcessedMatch) == 4
    # A batch overlapping the replayed one counts only its new rows.
    events.append(event("d", timedelta(minutes=3)))
    result = run(manager, events, [match("R", 1, unique="u2"), match("R", 3, unique="u3")], meta=meta)
    assert result.replayed == 1
    rule_alert = next(a for a in alerts(engine) if a.rule_id == "R" and a.kind == "RULE")
    assert (rule_alert.event_count, rule_alert.unique_count) == (3, 3)


def test_rows_without_row_ids_are_identified_by_their_content(
        engine: Engine, make_manager: Callable[..., AlertManager]) -> None:
    events = [{"p_event_time": T0, "user": "a"}, {"p_event_time": T0, "user": "b"}]
    manager = make_manager()
    run(manager, events, [match("R", 0), match("R", 1)])
    run(manager, events, [match("R", 0), match("R", 1)])
    assert alerts(engine)[0].event_count == 2


def test_missing_event_time_falls_back_to_parse_time_then_the_clock(
        engine: Engine, make_manager: Callable[..., AlertManager], clock: Clock) -> None:
    events = [{"p_row_id": "a", "p_parse_time": T0 + HOUR}, {"p_row_id": "b", "p_event_time": None},
              {"p_row_id": "c", "p_event_time": "2026-03-01T10:05:00Z"}]
    run(make_manager(), events, [match("R", 0, dedup="x"), match("R", 1, dedup="y"), match("R", 2, dedup="z")])
    starts = {a.dedup: a.window_start for a in alerts(engine)}
    assert starts == {"x": T0 + HOUR, "y": clock.now, "z": T0 + timedelta(minutes=5)}


@pytest.mark.parametrize("severity, spec, expected", [(None, "Low", "LOW"), ("bogus", None, "INFO"),
                                                      ("medium", "High", "MEDIUM")])
def test_severity_falls_back_to_the_spec_then_info(engine: Engine, make_manager: Callable[..., AlertManager],
                                                   severity: str | None, spec: str | None, expected: str) -> None:
    run(make_manager(), [event("a", timedelta(0))], [match("R", 0, severity=severity)], meta={"R": {"Severity": spec}})
    assert alerts(engine)[0].severity == expected
