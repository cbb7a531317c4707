"""Correlation rules: alerts of several sub-rules that together, within a window, make one alert.

The core is `CorrelationRule.evaluate(occurrences)`: given the sub-rule alerts seen during the lookback
window (each an `Occurrence`: which group or sequence step it belongs to, the values of the fields the
rule joins on, and its time in minutes), it says whether the rule fires and for which join key. The
scheduler feeds it real sub-rule alerts; `evaluate_test` feeds it a test's `RuleOutputs`.

Semantics:

* The join key of an occurrence is the value at the field path its group uses in `MatchCriteria` (Group
  form) or in the `Transitions` `Match` (Sequence form). A list value joins on any of its elements
  (list-on-list match = intersection). An occurrence whose group has no path in a criterion joins every
  key; one that lacks a value at its path joins none. Without any criteria all occurrences share one key.
* Group: fires for key k when some window [s, s + LookbackWindowMinutes] (both ends included) holds, for
  every non-absent group (or for the rule-level `MinMatchCount` of them), at least `MinMatchCount`
  (default 1) occurrences with key k, and no `Absence` group has any occurrence with key k. Like
  Absence, `MaxMatchCount` counts over all the occurrences evaluated (the scheduler passes one lookback
  period): a group with more is not satisfied. The order of the groups does not matter, whatever
  `EventEvaluationOrder` says.
* Sequence: fires for key k when the steps can be chained in order, each completing (its
  `MinMatchCount`-th occurrence) at or after the previous step's completion and within the transition's
  `WithinTimeFrameMinutes` (default: the lookback) of it, the whole chain spanning at most the lookback.
  An `Absence` step requires that no occurrence of it follows the previous step within the transition's
  time frame (or, for a leading absent step, precedes the first present step within it).
  `MaxMatchCount` is validated but only Group windows apply it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from onca.detections.errors import ContentError

DEFAULT_LOOKBACK_MINUTES: Final = 15
_ORDERS = ("Chronological", "ReverseChronological")
JoinKey = tuple[Any, ...] | None
_WILD: Final = object()  # an occurrence that joins every key of one criterion
_GROUP_KEYS = {"Group", "MatchCriteria", "EventEvaluationOrder", "LookbackWindowMinutes", "Schedule",
               "MinMatchCount"}
_SEQUENCE_KEYS = {"Sequence", "Transitions", "EventEvaluationOrder", "LookbackWindowMinutes", "Schedule"}
_MEMBER_KEYS = {"ID", "RuleID", "MinMatchCount", "MaxMatchCount", "Absence"}


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One sub-rule alert: its group (or sequence step) ID, field path -> value, and time in minutes."""

    group: str
    values: Mapping[str, Any]
    time: float


@dataclass(frozen=True, slots=True)
class CorrelationMatch:
    """Why a correlation rule fired: the join key (None without criteria) and the window it fired in."""

    join_key: JoinKey
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    rule_id: str
    min_count: int
    max_count: int | None
    absent: bool


@dataclass(frozen=True, slots=True)
class Transition:
    id: str | None
    source: str
    target: str
    within: int | None
    source_path: str | None
    target_path: str | None


@dataclass(frozen=True, slots=True)
class Schedule:
    rate_minutes: int | None
    cron_expression: str | None
    timeout_minutes: int


def to_minutes(value: Any) -> float:
    """A test time: an integer (or float) of minutes on a relative axis, or an RFC 3339 timestamp."""
    if type(value) in (int, float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        except ValueError:
            raise ValueError(f"time {value!r} is neither minutes nor an RFC 3339 timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp() / 60.0
    raise ValueError(f"time {value!r} is neither minutes nor an RFC 3339 timestamp")


def _join_values(value: Any) -> Any:
    """The set of keys a field value joins on (empty when absent or null)."""
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple)):
        return frozenset(item for item in value if item is not None and _hashable(item))
    return frozenset((value,)) if _hashable(value) else frozenset()


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _count_between(times: list[float], low: float, high: float) -> int:
    return bisect.bisect_right(times, high) - bisect.bisect_left(times, low)


class CorrelationRule:
    """A validated correlation rule `Detection`; raises ContentError naming `where` on bad input."""

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        self.where = where
        self.rule_id = spec.get("RuleID")
        detection = spec.get("Detection")
        if not isinstance(detection, list) or len(detection) != 1 or not isinstance(detection[0], Mapping):
            raise ContentError(f"{where}: Detection must be a list holding one Group or Sequence mapping")
        body = detection[0]
        forms = [form for form in ("Group", "Sequence") if form in body]
        if len(forms) != 1:
            raise ContentError(f"{where}: Detection[0] must have exactly one of Group or Sequence")
        self.kind = forms[0]
        here = f"{where}: Detection[0]"
        extra = set(body) - (_GROUP_KEYS if self.kind == "Group" else _SEQUENCE_KEYS)
        if extra:
            raise ContentError(f"{here}: unexpected key(s) {sorted(extra)} for the {self.kind} form")
        self.members = self._members(body[self.kind], f"{here}.{self.kind}")
        self._by_id = {member.id: member for member in self.members}
        self.lookback = self._positive(body, "LookbackWindowMinutes", here, DEFAULT_LOOKBACK_MINUTES)
        order = body.get("EventEvaluationOrder", "Chronological")
        if order not in _ORDERS:
            raise ContentError(f"{here}: EventEvaluationOrder must be Chronological or ReverseChronological")
        self.order: str = order
        self.schedule = self._schedule(body.get("Schedule"), f"{here}.Schedule")
        # criteria[i] maps a member ID to the field path it joins on in criterion i
        self.criteria: list[dict[str, str]] = []
        self.transitions: list[Transition | None] = []
        self.required_groups = sum(1 for member in self.members if not member.absent)
        if self.kind == "Group":
            self.criteria = self._match_criteria(body.get("MatchCriteria"), f"{here}.MatchCriteria")
            if "MinMatchCount" in body:
                self.required_groups = self._positive(body, "MinMatchCount", here, 1)
                present = sum(1 for member in self.members if not member.absent)
                if self.required_groups > present:
                    raise ContentError(f"{here}: MinMatchCount {self.required_groups} exceeds the "
                                       f"{present} non-absent groups")
        else:
            self.transitions = self._transitions(body.get("Transitions", []), f"{here}.Transitions")
            paths: dict[str, str] = {}
            for link in self.transitions:
                if link is not None and link.source_path is not None:
                    paths.setdefault(link.source, link.source_path)
                    paths.setdefault(link.target, link.target_path or link.source_path)
            self.criteria = [paths] if paths else []
            self._sequence_paths = self._step_paths()

    # -- validation ---------------------------------------------------------------------------------

    @staticmethod
    def _positive(body: Mapping[str, Any], key: str, where: str, default: int) -> int:
        value = body.get(key, default)
        if type(value) is not int or value < 1:
            raise ContentError(f"{where}: {key} must be a positive integer, got {value!r}")
        return value

    def _members(self, raw: Any, where: str) -> tuple[Member, ...]:
        if not isinstance(raw, list) or not raw:
            raise ContentError(f"{where}: must be a non-empty list of {{ID, RuleID, ...}}")
        members = []
        for i, item in enumerate(raw):
            here = f"{where}[{i}]"
            if not isinstance(item, Mapping):
                raise ContentError(f"{here}: must be a mapping with RuleID")
            extra = set(item) - _MEMBER_KEYS
            if extra:
                raise ContentError(f"{here}: unexpected key(s) {sorted(extra)}")
            rule_id = item.get("RuleID")
            if not isinstance(rule_id, str) or not rule_id:
                raise ContentError(f"{here}: RuleID must be a non-empty string")
            member_id = item.get("ID", rule_id)
            if not isinstance(member_id, str) or not member_id:
                raise ContentError(f"{here}: ID must be a non-empty string")
            min_count = self._positive(item, "MinMatchCount", here, 1)
            max_count = item.get("MaxMatchCount")
            if max_count is not None and (type(max_count) is not int or max_count < min_count):
                raise ContentError(f"{here}: MaxMatchCount must be an integer >= MinMatchCount ({min_count})")
            absent = item.get("Absence", False)
            if type(absent) is not bool:
                raise ContentError(f"{here}: Absence must be true or false")
            members.append(Member(member_id, rule_id, min_count, max_count, absent))
        ids = [member.id for member in members]
        duplicates = sorted({x for x in ids if ids.count(x) > 1})
        if duplicates:
            raise ContentError(f"{where}: duplicate ID(s) {duplicates}")
        if all(member.absent for member in members):
            raise ContentError(f"{where}: at least one entry must not be an Absence")
        return tuple(members)

    def _schedule(self, raw: Any, where: str) -> Schedule:
        if not isinstance(raw, Mapping):
            raise ContentError(f"{where}: is required (RateMinutes or CronExpression, and TimeoutMinutes)")
        extra = set(raw) - {"RateMinutes", "CronExpression", "TimeoutMinutes"}
        if extra:
            raise ContentError(f"{where}: unexpected key(s) {sorted(extra)}")
        if ("RateMinutes" in raw) == ("CronExpression" in raw):
            raise ContentError(f"{where}: needs exactly one of RateMinutes or CronExpression")
        timeout = self._positive(raw, "TimeoutMinutes", where, 0)
        if "RateMinutes" in raw:
            return Schedule(self._positive(raw, "RateMinutes", where, 0), None, timeout)
        cron = raw["CronExpression"]
        if not isinstance(cron, str) or len(cron.split()) not in (5, 6):
            raise ContentError(f"{where}: CronExpression must have 5 or 6 fields, got {cron!r}")
        return Schedule(None, cron, timeout)

    def _match_criteria(self, raw: Any, where: str) -> list[dict[str, str]]:
        if raw is None:
            return []
        if not isinstance(raw, Mapping):
            raise ContentError(f"{where}: must map a criterion name to a list of {{GroupID, Match}}")
        criteria = []
        for name, entries in raw.items():
            here = f"{where}.{name}"
            if not isinstance(entries, list) or not entries:
                raise ContentError(f"{here}: must be a non-empty list of {{GroupID, Match}}")
            paths: dict[str, str] = {}
            for i, entry in enumerate(entries):
                if not isinstance(entry, Mapping) or set(entry) != {"GroupID", "Match"}:
                    raise ContentError(f"{here}[{i}]: an entry must have exactly the keys GroupID and Match")
                group, path = entry["GroupID"], entry["Match"]
                if group not in self._by_id:
                    raise ContentError(f"{here}[{i}]: GroupID {group!r} is not an ID in Group")
                if not isinstance(path, str) or not path:
                    raise ContentError(f"{here}[{i}]: Match must be a non-empty field path")
                if group in paths:
                    raise ContentError(f"{here}[{i}]: GroupID {group!r} is listed twice")
                paths[group] = path
            criteria.append(paths)
        return criteria

    def _transitions(self, raw: Any, where: str) -> list[Transition | None]:
        """One slot per consecutive pair of steps; None where no transition links the pair."""
        if not isinstance(raw, list):
            raise ContentError(f"{where}: must be a list of {{From, To, Match, ...}}")
        order = [member.id for member in self.members]
        slots: list[Transition | None] = [None] * (len(order) - 1)
        for i, item in enumerate(raw):
            here = f"{where}[{i}]"
            if not isinstance(item, Mapping):
                raise ContentError(f"{here}: must be a mapping")
            extra = set(item) - {"ID", "From", "To", "WithinTimeFrameMinutes", "Match"}
            if extra:
                raise ContentError(f"{here}: unexpected key(s) {sorted(extra)}")
            source, target = item.get("From"), item.get("To")
            if source not in self._by_id or target not in self._by_id:
                raise ContentError(f"{here}: From/To must be Sequence IDs, got {source!r} -> {target!r}")
            step = order.index(source)
            if step + 1 >= len(order) or order[step + 1] != target:
                raise ContentError(f"{here}: {source!r} -> {target!r} skips or reverses Sequence steps")
            if slots[step] is not None:
                raise ContentError(f"{here}: a second transition from {source!r} to {target!r}")
            within = item.get("WithinTimeFrameMinutes")
            if within is not None:
                within = self._positive(item, "WithinTimeFrameMinutes", here, 0)
            source_path, target_path = self._transition_match(item.get("Match"), f"{here}.Match")
            slots[step] = Transition(item.get("ID"), source, target, within, source_path, target_path)
        return slots

    @staticmethod
    def _transition_match(raw: Any, where: str) -> tuple[str | None, str | None]:
        if raw is None:
            return None, None
        if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], Mapping):
            raise ContentError(f"{where}: must be a list of exactly one {{On}} or {{From, To}}")
        entry = raw[0]
        keys = set(entry)
        if keys == {"On"} and isinstance(entry["On"], str) and entry["On"]:
            return entry["On"], entry["On"]
        if keys == {"From", "To"} and all(isinstance(entry[k], str) and entry[k] for k in ("From", "To")):
            return entry["From"], entry["To"]
        raise ContentError(f"{where}[0]: must be {{On: path}} or {{From: path, To: path}}")

    def _step_paths(self) -> dict[str, tuple[str, ...]]:
        paths: dict[str, list[str]] = {}
        for link in self.transitions:
            if link is None or link.source_path is None:
                continue
            paths.setdefault(link.source, []).append(link.source_path)
            paths.setdefault(link.target, []).append(link.target_path or link.source_path)
        return {step: tuple(dict.fromkeys(found)) for step, found in paths.items()}

    # -- evaluation ---------------------------------------------------------------------------------

    def field_paths(self, member_id: str) -> tuple[str, ...]:
        """The field paths the scheduler must read from `member_id`'s alerts to build Occurrences."""
        if self.kind == "Sequence":
            return self._sequence_paths.get(member_id, ())
        return tuple(dict.fromkeys(c[member_id] for c in self.criteria if member_id in c))

    def _keys_of(self, occurrence: Occurrence) -> tuple[Any, ...]:
        """Per criterion: _WILD, or the frozenset of join values the occurrence carries."""
        if self.kind == "Sequence":
            paths = self._sequence_paths.get(occurrence.group)
            if not paths:
                return (_WILD,)
            found: frozenset[Any] = frozenset()
            for path in paths:
                found |= _join_values(occurrence.values.get(path))
            return (found,)
        keys = []
        for criterion in self.criteria:
            path = criterion.get(occurrence.group)
            keys.append(_WILD if path is None else _join_values(occurrence.values.get(path)))
        return tuple(keys)

    def evaluate(self, occurrences: Iterable[Occurrence]) -> CorrelationMatch | None:
        """The first join key (in sorted-time order of discovery) for which the rule fires, or None."""
        known = [occ for occ in occurrences if occ.group in self._by_id]
        width = len(self.criteria) if self.kind == "Group" else (1 if self.criteria else 0)
        if width == 0:
            return self._evaluate_key(None, known)
        keyed = [(occ, self._keys_of(occ)) for occ in known]
        candidates: list[list[Any]] = []
        for position in range(width):
            seen: dict[Any, None] = {}
            for occ, keys in sorted(keyed, key=lambda pair: pair[0].time):
                if not self._by_id[occ.group].absent and keys[position] is not _WILD:
                    seen.update(dict.fromkeys(keys[position]))
            candidates.append(list(seen) or [_WILD])
        for key in itertools.product(*candidates):
            members = [occ for occ, keys in keyed if all(
                keys[i] is _WILD or (key[i] is not _WILD and key[i] in keys[i]) for i in range(width))]
            found = self._evaluate_key(tuple(None if k is _WILD else k for k in key), members)
            if found is not None:
                return found
        return None

    def fires(self, occurrences: Iterable[Occurrence]) -> bool:
        return self.evaluate(occurrences) is not None

    def _evaluate_key(self, key: JoinKey, occurrences: list[Occurrence]) -> CorrelationMatch | None:
        times: dict[str, list[float]] = {member.id: [] for member in self.members}
        for occ in occurrences:
            times[occ.group].append(occ.time)
        for found in times.values():
            found.sort()
        if self.kind == "Group":
            return self._group_window(key, times)
        return self._sequence_chain(key, times)

    def _group_window(self, key: JoinKey, times: dict[str, list[float]]) -> CorrelationMatch | None:
        if any(member.absent and times[member.id] for member in self.members):
            return None
        # Like Absence (a maximum of zero), MaxMatchCount bounds the alerts of the whole evaluated period.
        present = [member for member in self.members if not member.absent
                   and (member.max_count is None or len(times[member.id]) <= member.max_count)]
        if len(present) < self.required_groups:
            return None
        for start in sorted({t for member in present for t in times[member.id]}):
            end = start + self.lookback
            satisfied = [member for member in present
                         if _count_between(times[member.id], start, end) >= member.min_count]
            if len(satisfied) >= self.required_groups:
                last = max(t for member in satisfied for t in times[member.id] if t <= end)
                return CorrelationMatch(key, start, last)
        return None

    def _within(self, step: int) -> float:
        """Time frame allowed between step-1's completion and step's (the transition into `step`)."""
        link = self.transitions[step - 1]
        return float(link.within if link is not None and link.within is not None else self.lookback)

    def _sequence_chain(self, key: JoinKey, times: dict[str, list[float]]) -> CorrelationMatch | None:
        steps = list(self.members)
        first_present = next(i for i, member in enumerate(steps) if not member.absent)
        head = steps[first_present]
        for start in sorted(set(times[head.id])):
            # reachable: completion times of the latest present step, for chains starting at `start`
            reachable = self._completions(times[head.id], [start], head.min_count, None, start)
            if any(self._absent_before(steps, times, i, start) for i in range(first_present)):
                continue
            for index in range(first_present + 1, len(steps)):
                member = steps[index]
                frame = self._within(index)
                if member.absent:
                    reachable = [p for p in reachable if not _count_between(times[member.id], p, p + frame)]
                    continue
                reachable = self._completions(times[member.id], reachable, member.min_count, frame, start)
                if not reachable:
                    break
            if reachable:
                return CorrelationMatch(key, start, min(reachable))
        return None

    def _absent_before(self, steps: Sequence[Member], times: dict[str, list[float]], index: int,
                       start: float) -> bool:
        """Whether leading absent step `index` occurred within its transition's frame before `start`."""
        return _count_between(times[steps[index].id], start - self._within(index + 1), start) > 0

    def _completions(self, times: list[float], previous: list[float], needed: int, frame: float | None,
                     start: float) -> list[float]:
        """Times at which a step can complete (its `needed`-th occurrence at or after a previous
        completion p, within `frame` of p and within the lookback of the chain's start)."""
        limit = start + self.lookback
        found: set[float] = set()
        for p in previous:
            first = bisect.bisect_left(times, p)
            last = first + needed - 1
            end = limit if frame is None else min(limit, p + frame)
            if last < len(times) and times[last] <= end:
                found.update(t for t in times[last:] if t <= end)
        return sorted(found)

    # -- tests --------------------------------------------------------------------------------------

    def occurrences_from_test(self, rule_outputs: Any) -> list[Occurrence]:
        """Turn a test's `RuleOutputs` ([{ID, Matches: {path: {value: [times]}}}]) into Occurrences.

        When one output lists several paths, entries with the same time are taken to be one alert."""
        if not isinstance(rule_outputs, list):
            raise ContentError(f"{self.where}: RuleOutputs must be a list of {{ID, Matches}}")
        occurrences = []
        for i, output in enumerate(rule_outputs):
            here = f"{self.where}: RuleOutputs[{i}]"
            if not isinstance(output, Mapping) or "ID" not in output or set(output) - {"ID", "Matches"}:
                raise ContentError(f"{here}: must be a mapping with ID and optional Matches")
            group = output["ID"]
            if group not in self._by_id:
                raise ContentError(f"{here}: ID {group!r} is not one of {sorted(self._by_id)}")
            matches = output.get("Matches") or {}
            if not isinstance(matches, Mapping):
                raise ContentError(f"{here}: Matches must map a field path to {{value: [times]}}")
            by_time: dict[float, dict[str, list[Any]]] = {}
            for path, values in matches.items():
                if not isinstance(values, Mapping):
                    raise ContentError(f"{here}: Matches.{path} must map a value to a list of times")
                for value, stamps in values.items():
                    if not isinstance(stamps, list):
                        raise ContentError(f"{here}: Matches.{path}.{value} must be a list of times")
                    for stamp in stamps:
                        try:
                            minute = to_minutes(stamp)
                        except ValueError as exc:
                            raise ContentError(f"{here}: {exc}") from None
                        by_time.setdefault(minute, {}).setdefault(path, []).append(value)
            for minute, paths in by_time.items():
                names = list(paths)
                occurrences.extend(
                    Occurrence(group, dict(zip(names, combo, strict=True)), minute)
                    for combo in itertools.product(*(paths[name] for name in names))
                )
        return occurrences

    def evaluate_test(self, rule_outputs: list[dict[str, Any]]) -> bool:
        """Whether the rule fires on a unit test's RuleOutputs (the verdict is this == ExpectedResult)."""
        return self.fires(self.occurrences_from_test(rule_outputs))
