"""`onca test`: run every detection's unit tests with the reference tool's verdicts (spec §4).

By default Onca also runs what the reference tool cannot run without its backend: correlation rules,
simple `Detection:` rules and InlineFilters. `compat=True` reproduces the reference's skipping, so
the two tools' counts can be compared side by side.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from onca.detections import schemas
from onca.detections.content import Content, ContentItem, Problem, load_content
from onca.detections.detection import Detection, Evaluation
from onca.detections.errors import UnknownDestinationError
from onca.detections.event import PantherEvent
from onca.detections.parallel import run_in_workers
from onca.detections.runtime import Runtime, build_runtime

# Printed name of each function row, in the reference tool's order.
ROW_ORDER = (("detection", None), ("title", "title"), ("dedup", "dedup"), ("alert_context", "alertContext"),
             ("description", "description"), ("reference", "reference"), ("severity", "severity"),
             ("runbook", "runbook"), ("destinations", "destinations"))
# With CreateAlert: false only the matcher and alert context rows are shown (errors still count).
# Below this many detections, forking workers costs more than it saves.
PARALLEL_THRESHOLD = 200
HIDDEN_WHEN_SUPPRESSED = {"title", "dedup", "destinations", "runbook", "severity", "description", "reference"}


@dataclass
class Options:
    compat: bool = False
    filters: list[tuple[str, bool, set[str]]] = field(default_factory=list)  # key, negated, values
    minimum_tests: int = 0
    skip_disabled: bool = False
    test_names: set[str] | None = None
    available_destinations: list[str] = field(default_factory=list)
    ignore_files: list[str] = field(default_factory=list)
    ignore_extra_keys: bool = False
    workers: int = 0  # 0 = as many as useful on this machine
    extra_paths: list[Path] = field(default_factory=list)  # where PipLibraries of a deployment are installed


@dataclass
class Row:
    function: str
    output: str | None
    error: str | None
    matched: bool


@dataclass
class CaseResult:
    name: str
    expected: bool
    actual: bool | None
    passed: bool
    rows: list[Row] = field(default_factory=list)
    captured: str = ""
    harness_error: str | None = None
    unique_error: str | None = None


@dataclass
class DetectionReport:
    id: str
    file: str
    analysis_type: str
    status: str = "passed"  # passed | failed | invalid | skipped
    message: str | None = None
    tests: list[CaseResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    no_tests: bool = False
    printed: bool = True


@dataclass
class TestRun:
    path: str
    reports: list[DetectionReport] = field(default_factory=list)
    invalid: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    detection_count: int = 0
    compat: bool = False

    @property
    def failed(self) -> list[DetectionReport]:
        return [r for r in self.reports if r.status == "failed"]

    @property
    def skipped(self) -> list[DetectionReport]:
        return [r for r in self.reports if r.status == "skipped"]

    @property
    def counts(self) -> dict[str, int]:
        failed, skipped, invalid = len(self.failed), len(self.skipped), len(self.invalid)
        if self.compat:
            # The reference subtracts every invalid file, detection or not, so Passed can even go negative.
            passed = self.detection_count - failed - skipped - invalid
        else:
            passed = sum(1 for r in self.reports if r.status == "passed")
        return {"passed": passed, "skipped": skipped, "failed": failed, "invalid": invalid}

    @property
    def exit_code(self) -> int:
        return 1 if self.invalid or self.failed else 0


ChunkResult = tuple[list[DetectionReport], list[Problem]]


def parse_filter(text: str) -> tuple[str, bool, set[str]]:
    """`Key=v1,v2` or `Key!=v` into (key, negated, lower-cased values)."""
    negated = "!=" in text
    key, sep, values = text.partition("!=" if negated else "=")
    if not sep or not key or not values:
        raise ValueError(f"filter '{text}' must look like Key=value1,value2 or Key!=value")
    return key.strip(), negated, {v.strip().lower() for v in values.split(",")}


def _matches_filters(spec: Mapping[str, Any], filters: Sequence[tuple[str, bool, set[str]]]) -> bool:
    for key, negated, values in filters:
        raw = spec.get(key)
        present = raw if isinstance(raw, list) else [raw]
        hit = any(str(v).lower() in values for v in present if v is not None)
        if hit == negated:
            return False
    return True


def run_tests(path: Path, options: Options, on_report: Callable[[DetectionReport], None] | None = None) -> TestRun:
    """Load content under `path`, run its tests, and return the whole run (reports in load order)."""
    content = load_content(path, ignore_files=options.ignore_files, ignore_extra_keys=options.ignore_extra_keys)
    run = TestRun(path=str(path), compat=options.compat)
    run.invalid.extend(content.problems)
    run.warnings.extend(content.warnings)
    items = [item for item in content.detections if _matches_filters(item.spec, options.filters)]
    run.detection_count = len(items)
    if options.compat:
        # The reference tool without a backend: simple detections are silently passed over.
        items = [item for item in items if not item.is_simple]
    reported: set[tuple[Path, str]] = set()
    for reports, problems in _run_chunks(content, items, options):
        for problem in problems:
            if (problem.path, problem.message) not in reported:  # helper problems come from every chunk
                reported.add((problem.path, problem.message))
                run.invalid.append(problem)
        for report in reports:
            run.reports.append(report)
            if on_report is not None:
                on_report(report)
    run.invalid.extend(_pack_problems(content))
    return run


def _pack_problems(content: Content) -> list[Problem]:
    known = {item.id for item in content.items}
    packs = [(item.path, item.spec) for item in content.of_type("pack")]
    return [Problem(Path(p), message) for p, message in schemas.find_pack_problems(packs, known)]


def _run_chunks(content: Content, items: list[ContentItem], options: Options) -> Iterable[ChunkResult]:
    """Test results chunk by chunk; with several workers each forked worker loads and tests its own share."""
    workers = options.workers or min(2, os.cpu_count() or 1)
    if workers < 2 or len(items) < PARALLEL_THRESHOLD or not hasattr(os, "fork"):
        yield _test_chunk(content, items, options)
        return
    chunks = _balanced_chunks(items, workers)
    yield from run_in_workers(chunks, lambda chunk: _test_chunk(content, chunk, options), workers)


def _balanced_chunks(items: list[ContentItem], count: int) -> list[list[ContentItem]]:
    """Contiguous slices (so output keeps load order) with about the same number of tests each."""
    weights = [1 + len(item.spec.get("Tests") or []) for item in items]
    share = sum(weights) / count
    chunks: list[list[ContentItem]] = [[]]
    load = 0.0
    for item, weight in zip(items, weights, strict=True):
        if load >= share * len(chunks) and len(chunks) < count:
            chunks.append([])
        chunks[-1].append(item)
        load += weight
    return chunks


def _test_chunk(content: Content, items: list[ContentItem], options: Options) -> ChunkResult:
    runtime = build_runtime(content, wanted={item.id for item in items}, inline_filters=not options.compat,
                            extra_paths=options.extra_paths)
    try:
        invalid_files = {p.path for p in runtime.problems}
        reports = [test_detection(item, runtime, options) for item in items if item.path not in invalid_files]
        return reports, runtime.problems
    finally:
        runtime.close()


def test_detection(item: ContentItem, runtime: Runtime, options: Options) -> DetectionReport:
    spec = item.spec
    report = DetectionReport(id=item.id, file=str(item.path), analysis_type=item.analysis_type)
    if options.skip_disabled and not item.enabled:
        report.status, report.message, report.printed = "skipped", "disabled", False
        return report
    tests = spec.get("Tests") or []
    if options.test_names is not None and not options.test_names & {t.get("Name") for t in tests}:
        report.status = "skipped"
        report.message = f"No tests match the provided test names: {sorted(options.test_names)}"
        return report
    if item.analysis_type == "correlation_rule" and options.compat:
        report.status, report.message = "skipped", "correlation rules need the Panther backend in the reference tool"
        return report
    if len(tests) < options.minimum_tests:
        report.failures.append(f"Insufficient test coverage: {options.minimum_tests} tests required "
                               f"but only {len(tests)} found")
    if "Tests" not in spec:
        report.no_tests = True
    if options.test_names is not None:
        tests = [t for t in tests if t.get("Name") in options.test_names]
    if item.analysis_type == "correlation_rule":
        rule = runtime.correlations[item.id]
        for test in tests:
            report.tests.append(_run_correlation_case(rule, test, report))
    else:
        detection = runtime.detections[item.id]
        destinations = {name: name for name in options.available_destinations}
        for test in tests:
            report.tests.append(_run_case(detection, test, runtime, destinations, options, report))
    if options.minimum_tests > 1 and not (any(t.get("ExpectedResult") for t in spec.get("Tests") or [])
                                          and any(not t.get("ExpectedResult") for t in spec.get("Tests") or [])):
        report.failures.append("Insufficient test coverage: expected at least one positive and one negative test")
    if report.failures:
        report.status = "failed"
    return report


def _run_correlation_case(rule: Any, test: Mapping[str, Any], report: DetectionReport) -> CaseResult:
    expected = test["ExpectedResult"]
    try:
        fired = rule.evaluate_test(test.get("RuleOutputs") or [])
    except Exception as err:
        report.failures.append(test["Name"])
        return CaseResult(test["Name"], expected, None, False, harness_error=f"{type(err).__name__}: {err}")
    passed = fired == expected
    if not passed:
        report.failures.append(test["Name"])
    return CaseResult(test["Name"], expected, fired, passed)


def _event_for(detection: Detection, entry: Any, runtime: Runtime) -> Any:
    if detection.analysis_type == "policy":
        return entry  # policies get the plain resource dict, as in the reference
    if detection.analysis_type == "scheduled_rule":
        return PantherEvent(entry, None)
    return PantherEvent(entry, runtime.data_models.get(entry.get("p_log_type") or ""))


def _run_case(detection: Detection, test: Mapping[str, Any], runtime: Runtime, destinations: Mapping[str, str],
              options: Options, report: DetectionReport) -> CaseResult:
    name = test["Name"]
    expected = test["ExpectedResult"]
    buffer = io.StringIO()
    try:
        entry = test["Resource"] if "Resource" in test else test["Log"]
        mocks = {m["objectName"]: MagicMock(return_value=m["returnValue"])
                 for m in test.get("Mocks") or [] if "objectName" in m and "returnValue" in m}
        event = _event_for(detection, entry, runtime)
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            if mocks:
                with patch.multiple(detection.module, **mocks):
                    evaluation = detection.evaluate_test(event, destinations)
            else:
                evaluation = detection.evaluate_test(event, destinations)
    except Exception as err:
        report.failures.append(name)
        kind = "AttributeError" if isinstance(err, AttributeError | KeyError) else "Unexpected exception"
        return CaseResult(name, expected, None, False, captured=buffer.getvalue(),
                          harness_error=f"{kind}: {{{err}}} for [{detection.detection_id}] in test [{name}]")
    if not options.available_destinations:
        for key, err in list(evaluation.errors.items()):
            if isinstance(err, UnknownDestinationError):
                del evaluation.errors[key]
    return _judge(detection, name, expected, evaluation, buffer.getvalue(), options, report)


def _output_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _judge(detection: Detection, name: str, expected: bool, ev: Evaluation, captured: str, options: Options,
           report: DetectionReport) -> CaseResult:
    alert_expected = expected == detection.alert_value
    passed = ev.trigger_alert and not ev.errors if alert_expected else ev.detection_output == expected
    case = CaseResult(name, expected, ev.detection_output, passed, captured=captured)
    for key, printed in ROW_ORDER:
        if key != "detection" and not alert_expected:
            continue
        label = printed or detection.matcher_name
        err = ev.errors.get(key)
        # The reference hides these rows for signals, errors included; Onca still shows an error.
        if detection.suppress_alert and key in HIDDEN_WHEN_SUPPRESSED and (err is None or options.compat):
            continue
        output = ev.detection_output if key == "detection" else ev.outputs.get(key)
        if output is None and err is None:
            continue
        matched = (expected == ev.detection_output) if key == "detection" else err is None
        row = Row(label, None if output is None else _output_text(output),
                  None if err is None else f"{type(err).__name__}: {err}", matched)
        case.rows.append(row)
        if row.error is not None or not row.matched:
            report.failures.append(f"{name}:{label}")
    unique_err = ev.errors.get("unique")
    if unique_err is not None and alert_expected:
        case.unique_error = f"{type(unique_err).__name__}: {unique_err}"
        if not options.compat:
            # The reference tool fails such a test without counting it; Onca counts it.
            report.failures.append(f"{name}:unique")
    if "filter" in ev.errors:
        report.failures.append(f"{name}:inlineFilters")
        case.rows.append(Row("inlineFilters", None, f"{type(ev.errors['filter']).__name__}: {ev.errors['filter']}",
                             False))
    return case
