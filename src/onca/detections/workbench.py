"""Running one deployed detection on demand, for the console: its unit tests, or one event a user pasted.

Each run happens in a forked child process with a hard time limit. Detection code changes process-wide
state while it runs (DetectionImports edits sys.modules and sys.path), which must not leak into the web
server or race with another request, and a detection that never returns must not hold a server thread:
the child is killed when the limit passes. Inside the child a pasted event goes through the production
Runner with its per-call Watchdog, so a looping rule reports the same RuleTimeout error a worker would.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from onca.deploy.components.detections import python_dir
from onca.detections.content import Content, ContentItem
from onca.detections.event import PantherEvent
from onca.detections.runner import Runner
from onca.detections.runtime import Runtime, build_runtime
from onca.detections.testing import DetectionReport, Options, test_detection
from onca.detections.watchdog import Watchdog

TESTS_TIMEOUT_S = 60.0  # all of one detection's tests
EVENT_TIMEOUT_S = 20.0  # one pasted event, loading the detection included
RULE_TIME_LIMIT_S = 5.0  # one function call on the pasted event, as ONCA_RULE_TIME_LIMIT is for workers
EVENT_TYPES = ("rule", "scheduled_rule")  # what runs on events in production

T = TypeVar("T")


class WorkbenchError(RuntimeError):
    """The run could not finish (time limit, crash, a detection that cannot run events); for the user."""


@dataclass
class EventVerdict:
    """What production would make of one event, plus the errors production would hide."""

    detection_id: str
    log_type: str
    matched: bool
    title: str | None = None
    dedup: str | None = None
    severity: str | None = None
    alert_context: Any = None
    destinations: list[str] | None = None
    errors: list[str] = field(default_factory=list)
    output: str = ""  # what the detection printed

    def as_dict(self) -> dict[str, Any]:
        return {"detection_id": self.detection_id, "log_type": self.log_type, "matched": self.matched,
                "title": self.title, "dedup": self.dedup, "severity": self.severity,
                "alert_context": self.alert_context, "destinations": self.destinations,
                "errors": list(self.errors), "output": self.output}


def run_tests(home: Path, content: Content, item: ContentItem, *, timeout_s: float | None = None) -> DetectionReport:
    """The detection's unit tests through the `onca test` harness (same verdicts, same rows)."""
    timeout_s = timeout_s or TESTS_TIMEOUT_S
    def task() -> DetectionReport:
        runtime = _runtime(home, content, item)
        try:
            problems = [p.message for p in runtime.problems if p.path == item.path]
            if item.id not in runtime.detections and item.id not in runtime.correlations:
                return DetectionReport(id=item.id, file=item.path.name, analysis_type=item.analysis_type,
                                       status="invalid", message="; ".join(problems) or "the detection did not load")
            return test_detection(item, runtime, Options(extra_paths=[python_dir(home)]))
        finally:
            runtime.close()

    return _in_child(task, timeout_s, f"the tests of {item.id} did not finish within {timeout_s:g} s "
                                      "and were stopped (does a function loop forever?)")


def try_event(home: Path, content: Content, item: ContentItem, event: Mapping[str, Any], *,
              rule_time_limit_s: float | None = None, timeout_s: float | None = None) -> EventVerdict:
    """Run one event through the detection as a worker would (enabled or not, whatever its author said).
    The limits default to the module's constants (read at call time)."""
    limit = rule_time_limit_s or RULE_TIME_LIMIT_S
    timeout_s = timeout_s or EVENT_TIMEOUT_S
    if item.analysis_type not in EVENT_TYPES:
        raise WorkbenchError(f"{item.id} is a {item.analysis_type}: only rules and scheduled rules run on events")
    log_types = [str(t) for t in item.spec.get("LogTypes") or item.spec.get("ScheduledQueries") or []]
    given = event.get("p_log_type")
    log_type = given if isinstance(given, str) and given in log_types else (log_types[0] if log_types else "")
    # Workers always see p_log_type on an event; a pasted one may lack it.
    raw = {**event, "p_log_type": given if isinstance(given, str) else log_type}

    def task() -> EventVerdict:
        runtime = _runtime(home, content, item)
        try:
            return _evaluate(runtime, content, item, log_type, raw, limit)
        finally:
            runtime.close()

    return _in_child(task, timeout_s, f"{item.id} did not finish within {timeout_s:g} s on this event "
                                      "and was stopped")


def report_as_dict(report: DetectionReport) -> dict[str, Any]:
    """A test run as plain data: per test the verdict, each function's output or error, what it printed."""
    tests = [{"name": case.name, "expected": case.expected, "actual": case.actual, "passed": case.passed,
              "functions": [{"function": row.function, "output": row.output, "error": row.error,
                             "matched": row.matched} for row in case.rows],
              "errors": [e for e in (case.harness_error, case.unique_error) if e], "output": case.captured}
             for case in report.tests]
    return {"detection_id": report.id, "status": report.status, "message": report.message,
            "passed": sum(1 for t in tests if t["passed"]), "failed": sum(1 for t in tests if not t["passed"]),
            "failures": list(report.failures), "tests": tests}


def _runtime(home: Path, content: Content, item: ContentItem) -> Runtime:
    return build_runtime(content, wanted={item.id}, severity_from_spec=True, extra_paths=[python_dir(home)])


def _evaluate(runtime: Runtime, content: Content, item: ContentItem, log_type: str, raw: dict[str, Any],
              limit: float) -> EventVerdict:
    verdict = EventVerdict(detection_id=item.id, log_type=log_type, matched=False)
    detection = runtime.detections.get(item.id)
    if detection is None:
        verdict.errors = [p.message for p in runtime.problems if p.path == item.path] or ["the detection did not load"]
        return verdict
    # The Runner indexes rules by log type and runs only enabled rules of type `rule` (scheduled rules
    # are fed by query name the same way in jobs_scheduled): present the one detection to it that way.
    as_rule = ContentItem(item.path, {**item.spec, "AnalysisType": "rule", "Enabled": True, "LogTypes": [log_type]})
    runner = Runner(runtime, Content(root=content.root, items=[as_rule]), use_index=False, time_limit=limit)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        result = runner.evaluate(log_type, [raw])
    verdict.output = printed.getvalue()
    verdict.errors = [f"{e.error_type}: {e.message}" for e in result.errors]
    if result.matches:
        match = result.matches[0]
        verdict.matched = True
        verdict.title, verdict.dedup, verdict.severity = match.title, match.dedup, match.severity
        verdict.destinations = match.destinations
        verdict.alert_context = json.loads(match.alert_context) if match.alert_context else None
        verdict.errors += _hidden_errors(runtime, detection, log_type, raw, limit)
    return verdict


def _hidden_errors(runtime: Runtime, detection: Any, log_type: str, raw: dict[str, Any], limit: float) -> list[str]:
    """Errors of the auxiliary functions, which production replaces by defaults so that no alert is lost;
    the author needs to see them. Test mode keeps each function's exception."""
    event = PantherEvent(raw, runtime.data_models.get(log_type))
    # What the functions print was shown from the production run already.
    with Watchdog(limit) as watchdog, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        watchdog.begin()
        try:
            evaluation = detection.evaluate_test(event, {})
        finally:
            watchdog.end()
    # No destination is configured here, so every named destination is unknown: that is not an error.
    return [f"{name}(): {type(err).__name__}: {err}" for name, err in evaluation.errors.items()
            if name not in ("detection", "destinations")]


def _in_child(task: Callable[[], T], timeout_s: float, timeout_message: str) -> T:
    """task() in a forked child, its result sent back; the child is killed when the limit passes."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        try:
            outcome: tuple[bool, Any] = (True, task())
        except BaseException as err:  # the parent reports it; the child must still answer
            outcome = (False, f"{type(err).__name__}: {err}")
        sender.send(outcome)

    process = context.Process(target=child, name="onca-workbench", daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise WorkbenchError(timeout_message)
        try:
            ok, value = receiver.recv()
        except EOFError as err:
            process.join(1)
            raise WorkbenchError(f"the detection's process ended without an answer (exit code {process.exitcode})"
                                 ) from err
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if not ok:
        raise WorkbenchError(value)
    return value
