"""The alert manager: rule matches and rule errors of a batch become deduplicated alerts.

Semantics (after the reference's alert merger, B.6 of the reference notes), with these decisions:

* Grouping. Matches of one rule with the same dedup string share an alert while they fall in its dedup
  window, [first event time, first event time + DedupPeriodMinutes). An event at or after the window's end
  starts a new alert. Rule errors are grouped the same way by (rule, error type), in the rule's windows.
* Event time, not processing time. The window is measured on the events' p_event_time (then p_parse_time,
  then the processing clock). The reference used processing time; event time makes grouping a function
  of the data alone, so a backfill, a replay after a crash or a slow queue gives the same alerts as live
  processing. Each batch is processed in event-time order. A late event that falls before an existing
  window opens a window that ends where the next one starts, so windows of one group never overlap and
  every event belongs to exactly one alert.
* First match wins. Title, severity, context, description, reference, runbook and destinations of an
  alert come from the match that opened it; later matches only add counts, times, log types and unique
  values. (The reference kept its alert's title on merge too; a title changing under an analyst's feet
  would be confusing, and the dedup string already says what the events have in common.)
* Threshold. An alert is `raised` once its metric reaches the rule's Threshold (default 1): the number of
  distinct unique() values when any of its matches produced one, else the number of matching events.
  Until then it accumulates silently (raised=false) and is neither listed by default nor delivered. When it
  is raised, raised_at is the processing time (the reference's "creation time = crossing time") and one
  outbox row per routed destination is added in the same transaction. Rule errors always have threshold 1
  and raise even for rules with CreateAlert: false (a broken rule is an operational problem either way).
* Signals. Matches of CreateAlert: false rules make no alert; they only go to the rule_matches lake table.
* Idempotence. processed_matches holds (rule id, p_row_id) of every counted match and error, in the same
  transaction as the counts, so a batch replayed after a crash is recognised and counts nothing twice.
  The lake is written after the commit with the alert ids recorded there, under file names derived from
  the rows' ids: a replay rewrites the same files.

One manager per metadata database is the intended deployment; concurrent managers are safe (rows are
locked on PostgreSQL, a conflicting insert retries the batch) but may open overlapping windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from onca.alerts import lake
from onca.alerts.model import (
    RULE,
    RULE_ERROR,
    RuleSettings,
    alert_id,
    dedup_key,
    event_time_of,
    normalize_severity,
    parse_context,
    row_id_of,
    to_utc,
)
from onca.detections.runner import RuleError, RuleMatch
from onca.lake.writer import LakeWriter
from onca.store.models import Alert, AlertUnique, Outbox, ProcessedMatch, utcnow

__all__ = ["AlertManager", "ProcessResult"]

MAX_TITLE = 1000
_RETRIES = 3
_CHUNK = 500


@dataclass
class ProcessResult:
    alerts: list[str] = field(default_factory=list)  # alerts that counted an event of this batch
    raised: list[str] = field(default_factory=list)  # alerts this batch raised (and queued for delivery)
    replayed: int = 0  # matches and errors skipped because an earlier run already counted them
    signals: int = 0
    files: list[Path] = field(default_factory=list)


@dataclass
class _Item:
    kind: str
    rule_id: str
    row_id: str
    event: Mapping[str, Any]
    time: datetime
    dedup: str
    settings: RuleSettings
    match: RuleMatch | None = None
    error: RuleError | None = None
    alert_id: str | None = None

    @property
    def event_index(self) -> int:
        return self.match.event_index if self.match is not None else self.error.event_index  # type: ignore[union-attr]


def no_route(alert: Alert) -> list[str]:
    return []


class AlertManager:
    """Turns a batch's RuleMatch and RuleError objects into alerts; see the module docstring."""

    def __init__(self, session_factory: Callable[[], Session], lake_writer: LakeWriter | None = None,
                 clock: Callable[[], datetime] = utcnow, route: Callable[[Alert], list[str]] = no_route) -> None:
        self.session_factory = session_factory
        self.lake_writer = lake_writer
        self.clock = clock
        self.route = route  # destination names of a raised alert (the routing module plugs in here)

    def process(self, matches: Sequence[RuleMatch], errors: Sequence[RuleError], *,
                events: Sequence[Mapping[str, Any]], log_type: str,
                rule_meta: Mapping[str, RuleSettings | Mapping[str, Any]],
                schema: pa.Schema | None = None, arrivals: Sequence[int] | None = None) -> ProcessResult:
        """Count one evaluated batch. `events` are the rows the runner saw (indexed by event_index);
        `rule_meta` maps rule ids to their settings or raw specs; `schema` is the log type's Arrow schema
        for the lake tables (inferred from the rows when None). `arrivals` numbers the events' arrival
        groups (the spool entries a worker batch is made of): the groups are counted one after another, each
        in event-time order, so a batch of several entries makes exactly the alerts those entries would make
        one by one, whatever the batch boundaries."""
        now = self.clock()
        settings = {rule_id: value if isinstance(value, RuleSettings) else RuleSettings.from_spec(value)
                    for rule_id, value in rule_meta.items()}
        default = RuleSettings()
        items: list[_Item] = []
        signals: list[RuleMatch] = []
        for match in matches:
            rule = settings.get(match.rule_id, default)
            if not rule.create_alert:
                signals.append(match)
                continue
            event = events[match.event_index]
            items.append(_Item(RULE, match.rule_id, row_id_of(event), event, event_time_of(event, now),
                               match.dedup, rule, match=match))
        for error in errors:
            event = events[error.event_index]
            items.append(_Item(RULE_ERROR, error.rule_id, row_id_of(event), event, event_time_of(event, now),
                               error.error_type, settings.get(error.rule_id, default), error=error))
        # Event-time order makes an alert's first match the earliest event of the batch, whatever the order
        # the runner produced; row id and rule break ties so the order is total.
        if arrivals is None:
            items.sort(key=lambda item: (item.time, item.row_id, item.rule_id, item.kind))
        else:
            items.sort(key=lambda item: (arrivals[item.event_index], item.time, item.row_id, item.rule_id, item.kind))
        result = ProcessResult(signals=len(signals))
        for attempt in range(_RETRIES):
            try:
                self._transaction(items, log_type, now, result)
                break
            except (IntegrityError, OperationalError):
                # Another manager inserted the same alert or processed row meanwhile: count again from scratch.
                if attempt == _RETRIES - 1:
                    raise
                result.alerts, result.raised, result.replayed = [], [], 0
        if self.lake_writer is not None:
            result.files = self._write_lake(items, signals, events, log_type, settings, schema)
        return result

    # ---- the metadata transaction ------------------------------------------------------------------------

    def _transaction(self, items: list[_Item], log_type: str, now: datetime, result: ProcessResult) -> None:
        session = self.session_factory()
        try:
            self._count(session, items, log_type, now, result)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _count(self, session: Session, items: list[_Item], log_type: str, now: datetime,
               result: ProcessResult) -> None:
        done = _processed(session, items)
        bounds: dict[str, tuple[datetime, datetime]] = {}
        for item in items:
            key = dedup_key(item.kind, item.rule_id, item.dedup)
            low, high = bounds.get(key, (item.time, item.time))
            bounds[key] = (min(low, item.time), max(high, item.time))
        windows: dict[str, list[Alert]] = {}
        uniques: dict[str, set[str]] = {}
        touched: dict[str, tuple[Alert, _Item]] = {}
        for item in items:
            pair = (item.rule_id, item.row_id)
            if pair in done:
                item.alert_id = done[pair]
                result.replayed += 1
                continue
            key = dedup_key(item.kind, item.rule_id, item.dedup)
            if key not in windows:
                windows[key] = _load_windows(session, key, *bounds[key])
            alert = self._alert_for(session, windows[key], key, item, log_type, now)
            _merge(session, alert, item, log_type, now, uniques)
            session.add(ProcessedMatch(rule_id=item.rule_id, row_id=item.row_id, kind=item.kind, alert_id=alert.id,
                                       processed_at=now))
            done[pair] = item.alert_id = alert.id
            touched.setdefault(alert.id, (alert, item))
        for alert, item in touched.values():
            threshold = 1 if alert.kind == RULE_ERROR else item.settings.threshold
            metric = alert.unique_count if alert.unique_count else alert.event_count
            if not alert.raised and metric >= threshold:
                alert.raised, alert.raised_at = True, now
                result.raised.append(alert.id)
                session.flush()  # the outbox rows reference the alert
                for name in dict.fromkeys(self.route(alert)):
                    session.add(Outbox(alert_id=alert.id, destination=name, state="pending", attempts=0,
                                       next_attempt_at=now, last_error="", created_at=now))
        result.alerts = list(touched)

    def _alert_for(self, session: Session, windows: list[Alert], key: str, item: _Item, log_type: str,
                   now: datetime) -> Alert:
        """The alert whose window holds the item's event time, or a new one opening a window there."""
        later: list[datetime] = []
        for alert in windows:
            if alert.window_start <= item.time < alert.window_end:
                return alert
            if alert.window_start > item.time:
                later.append(alert.window_start)
        stored_next = session.scalar(select(func.min(Alert.window_start))
                                     .where(Alert.dedup_key == key, Alert.window_start > item.time))
        if stored_next is not None:
            later.append(to_utc(stored_next))
        end = min([item.time + item.settings.dedup_period, *later])
        alert = _new_alert(item, key, end, log_type, now)
        session.add(alert)
        windows.append(alert)
        return alert

    # ---- the lake --------------------------------------------------------------------------------------------

    def _write_lake(self, items: list[_Item], signals: list[RuleMatch], events: Sequence[Mapping[str, Any]],
                    log_type: str, settings: Mapping[str, RuleSettings], schema: pa.Schema | None) -> list[Path]:
        assert self.lake_writer is not None
        default = RuleSettings()
        match_rows, error_rows = [], []
        alerting = [(item.match, item.alert_id) for item in items if item.match is not None]
        for match, alert in [*alerting, *((signal, None) for signal in signals)]:
            rule = settings.get(match.rule_id, default)
            match_rows.append(lake.match_row(
                events[match.event_index], rule_id=match.rule_id, alert_id=alert, alert_context=match.alert_context,
                dedup=match.dedup, severity=normalize_severity(match.severity, rule.severity), tags=rule.tags,
                reports=rule.reports))
        for item in items:
            if item.error is not None:
                error_rows.append(lake.error_row(item.event, rule_id=item.rule_id, alert_id=item.alert_id,
                                                 error=item.error.message, error_type=item.error.error_type))
        files = lake.write_rows(self.lake_writer, lake.matches_table(log_type), match_rows, schema, lake.MATCH_FIELDS)
        files += lake.write_rows(self.lake_writer, lake.errors_table(log_type), error_rows, schema, lake.ERROR_FIELDS)
        return files


def _processed(session: Session, items: list[_Item]) -> dict[tuple[str, str], str]:
    """{(rule id, row id): alert id} of the batch's pairs an earlier run already counted."""
    pairs = sorted({(item.rule_id, item.row_id) for item in items})
    done: dict[tuple[str, str], str] = {}
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start:start + _CHUNK]
        rows = session.execute(select(ProcessedMatch.rule_id, ProcessedMatch.row_id, ProcessedMatch.alert_id)
                               .where(tuple_(ProcessedMatch.rule_id, ProcessedMatch.row_id).in_(chunk)))
        done.update({(rule_id, row_id): alert for rule_id, row_id, alert in rows})
    return done


def _load_windows(session: Session, key: str, low: datetime, high: datetime) -> list[Alert]:
    """The group's alerts whose windows meet [low, high] (locked on PostgreSQL: counts are read-modify-write)."""
    query = (select(Alert).where(Alert.dedup_key == key, Alert.window_end > low, Alert.window_start <= high)
             .order_by(Alert.window_start).with_for_update())
    return list(session.scalars(query))


def _new_alert(item: _Item, key: str, window_end: datetime, log_type: str, now: datetime) -> Alert:
    rule = item.settings
    common: dict[str, Any] = dict(
        id=alert_id(item.kind, item.rule_id, item.dedup, item.time), rule_id=item.rule_id, kind=item.kind,
        dedup=item.dedup, dedup_key=key, tags=list(rule.tags), reports=dict(rule.reports), first_event_time=item.time,
        last_event_time=item.time, event_count=0, unique_count=0, log_types=[log_type], status="OPEN",
        window_start=item.time, window_end=window_end, raised=False, created_at=now, updated_at=now)
    if item.match is not None:
        match = item.match
        return Alert(**common, severity=normalize_severity(match.severity, rule.severity), title=match.title,
                     description=match.description or rule.description, reference=match.reference or rule.reference,
                     runbook=match.runbook or rule.runbook, alert_context=parse_context(match.alert_context),
                     destinations=match.destinations)
    assert item.error is not None
    error = item.error
    title = f"Rule {item.rule_id} failed: {error.error_type}: {error.message}"
    if len(title) > MAX_TITLE:
        title = title[:MAX_TITLE - 15] + "... (truncated)"
    return Alert(**common, severity=rule.severity, title=title, description=error.message,
                 reference=rule.reference, runbook=rule.runbook,
                 alert_context={"error_type": error.error_type, "message": error.message}, destinations=None)


def _merge(session: Session, alert: Alert, item: _Item, log_type: str, now: datetime,
           uniques: dict[str, set[str]]) -> None:
    alert.event_count += 1
    alert.first_event_time = min(to_utc(alert.first_event_time), item.time)
    alert.last_event_time = max(to_utc(alert.last_event_time), item.time)
    if log_type not in alert.log_types:
        alert.log_types = [*alert.log_types, log_type]  # a new list: JSON columns track assignment, not mutation
    alert.updated_at = now
    value = item.match.unique if item.match is not None else None
    if value is None:
        return
    known = uniques.get(alert.id)
    if known is None:
        known = uniques[alert.id] = set(session.scalars(select(AlertUnique.value)
                                                        .where(AlertUnique.alert_id == alert.id)))
    if value not in known:
        known.add(value)
        session.add(AlertUnique(alert_id=alert.id, value=value))
        alert.unique_count += 1
