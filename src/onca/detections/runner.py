"""The production rules engine: every enabled rule of a log type over a batch of events.

This is what the pipeline calls for each parsed batch. Rules are indexed by log type, and within a
log type a guard index derived from each rule's own code (see prefilter.py) skips the rules that
provably cannot match an event, so most events run only a handful of rules. A matcher exception is
a rule error (never a silent drop); auxiliary failures fall back to defaults as in the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onca.detections.content import Content, load_content
from onca.detections.detection import Detection, RuleMatch
from onca.detections.errors import FunctionReturnTypeError
from onca.detections.event import PantherEvent
from onca.detections.prefilter import GuardIndex, derive_guard
from onca.detections.runtime import Runtime, build_runtime
from onca.detections.watchdog import RuleTimeout, Watchdog

__all__ = ["BatchResult", "RuleError", "RuleMatch", "Runner"]


@dataclass(slots=True)
class RuleError:
    rule_id: str
    event_index: int
    error_type: str
    message: str


@dataclass
class BatchResult:
    matches: list[RuleMatch] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)


@dataclass
class _LogTypeRules:
    rules: list[Detection]
    index: GuardIndex | None


class Runner:
    """Evaluates enabled rules in production mode; build one per content set and reuse it."""

    def __init__(self, runtime: Runtime, content: Content, *, use_index: bool = True,
                 destinations: Mapping[str, str] | None = None, time_limit: float | None = None) -> None:
        self.runtime = runtime
        # Seconds one rule may take on one event (matcher and auxiliary functions); None: no limit.
        self.time_limit = time_limit
        self.destinations = dict(destinations or {})
        helpers = _global_sources(content)
        by_log_type: dict[str, list[Detection]] = {}
        for item in content.of_type("rule"):
            detection = runtime.detections.get(item.id)
            if detection is None or not item.enabled:
                continue
            for log_type in item.spec.get("LogTypes") or []:
                by_log_type.setdefault(log_type, []).append(detection)
        self._by_log_type: dict[str, _LogTypeRules] = {}
        for log_type, rules in by_log_type.items():
            index = None
            if use_index:
                guards = [_guard_for(rule, helpers) for rule in rules]
                if any(g is not None for g in guards):
                    index = GuardIndex(guards)
            self._by_log_type[log_type] = _LogTypeRules(rules, index)

    @classmethod
    def from_path(cls, path: Path | str, *, use_index: bool = True, destinations: Mapping[str, str] | None = None,
                  time_limit: float | None = None) -> Runner:
        content = load_content(Path(path))
        runtime = build_runtime(content, severity_from_spec=True)
        return cls(runtime, content, use_index=use_index, destinations=destinations, time_limit=time_limit)

    @property
    def log_types(self) -> list[str]:
        return sorted(self._by_log_type)

    def rule_ids(self, log_type: str) -> list[str]:
        entry = self._by_log_type.get(log_type)
        return [rule.detection_id for rule in entry.rules] if entry else []

    def evaluate(self, log_type: str, events: Iterable[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        entry = self._by_log_type.get(log_type)
        if entry is None:
            return result
        if self.time_limit is None:
            self._evaluate(entry, log_type, events, result, None)
        else:
            with Watchdog(self.time_limit) as watchdog:
                self._evaluate(entry, log_type, events, result, watchdog)
        return result

    def _evaluate(self, entry: _LogTypeRules, log_type: str, events: Iterable[dict[str, Any]],
                  result: BatchResult, watchdog: Watchdog | None) -> None:
        rules, index = entry.rules, entry.index
        all_positions = range(len(rules))
        data_model = self.runtime.data_models.get(log_type)
        matches, errors = result.matches, result.errors
        for event_index, raw in enumerate(events):
            event = PantherEvent(raw, data_model)
            positions: Sequence[int] = index.candidates(event) if index is not None else all_positions
            for position in positions:
                rule = rules[position]
                if watchdog is not None:
                    watchdog.begin()
                try:
                    if rule.inline_filter is not None and not rule.inline_filter(raw):
                        continue
                    output = rule.module.rule(event)
                    if output is True:
                        matches.append(rule.match(event, event_index, self.destinations))
                    elif output is not False:
                        raise FunctionReturnTypeError(f"detection [{rule.detection_id}] function [rule] returned "
                                                      f"[{type(output).__name__}], expected [bool]")
                except RuleTimeout:
                    errors.append(RuleError(rule.detection_id, event_index, "RuleTimeout",
                                            f"rule ran longer than {self.time_limit} s on this event"))
                except Exception as err:
                    errors.append(RuleError(rule.detection_id, event_index, type(err).__name__, str(err)))
                finally:
                    if watchdog is not None:
                        watchdog.end()

    def close(self) -> None:
        self.runtime.close()


def _global_sources(content: Content) -> dict[str, str]:
    sources = {}
    for item in content.of_type("global"):
        try:
            sources[item.spec["GlobalID"]] = (item.path.parent / item.spec["Filename"]).read_text(encoding="utf-8")
        except OSError:
            continue
    return sources


def _guard_for(rule: Detection, helpers: Mapping[str, str]) -> Any:
    if rule.inline_filter is not None or not getattr(rule.module, "__file__", None):
        return None  # simple detections and filtered rules always run; their code is not a Python file
    try:
        source = Path(rule.module.__file__).read_text(encoding="utf-8")
    except OSError:
        return None
    return derive_guard(source, helpers=helpers)
