"""Rendering a test run: the reference tool's text layout, or one JSON document for machines."""

from __future__ import annotations

import json
from typing import Any, TextIO

from onca.detections.testing import CaseResult, DetectionReport, TestRun


class TextReporter:
    """Prints each detection as its report arrives, then the summary blocks (spec §4.4)."""

    def __init__(self, out: TextIO, *, color: bool, failures_only: bool = False) -> None:
        self.out = out
        self.failures_only = failures_only
        self.pass_word = "\x1b[32mPASS\x1b[0m" if color else "PASS"
        self.fail_word = "\x1b[31mFAIL\x1b[0m" if color else "FAIL"

    def _word(self, ok: bool) -> str:
        return self.pass_word if ok else self.fail_word

    def detection(self, report: DetectionReport) -> None:
        if not report.printed or (self.failures_only and report.status != "failed"):
            return
        write = self.out.write
        write(f"{report.id}\n")
        if report.status == "skipped" and report.message and report.message.startswith("No tests match"):
            write(f"\t{report.message}\n\n")
            return
        if report.no_tests:
            write(f"\tNo tests configured for {report.id}\n")
        for case in report.tests:
            if self.failures_only and case.passed:
                continue
            self._case(case)
        write("\n")

    def _case(self, case: CaseResult) -> None:
        write = self.out.write
        if case.captured:
            write(case.captured + "\n")
        if case.harness_error:
            write(f"\t[{self.fail_word}] {case.name}\n\t\t{case.harness_error}\n")
            return
        write(f"\t[{self._word(case.passed)}] {case.name}\n")
        for row in case.rows:
            if row.error is not None:
                write(f"\t\t[{self.fail_word}] [{row.function}] {row.error}\n")
            else:
                write(f"\t\t[{self._word(row.matched)}] [{row.function}] {row.output}\n")
        if case.unique_error:
            write(f"\t\t[{self.fail_word}] [unique] {case.unique_error}\n")

    def summary(self, run: TestRun, err: TextIO | None = None) -> None:
        for warning in run.warnings:
            (err or self.out).write(f"WARNING: {warning.path}: {warning.message}\n")
        write = self.out.write
        rule = "--------------------------\n"
        if run.skipped:
            write(rule + "Skipped Tests Summary\n")
            for report in run.skipped:
                write(f"\t{report.file}\n\t\t{report.id}\n\n")
        if run.failed:
            write(rule + "Failed Tests Summary\n")
            for report in run.failed:
                write(f"\t{report.id}\n\t\t{report.failures!r}\n\n")
        if run.invalid:
            write(rule + "Invalid Tests Summary\n")
            for problem in run.invalid:
                write(f"\t{problem.path}\n\t\t{problem.message}\n\n")
        counts = run.counts
        write(rule + "Test Summary\n")
        write(f"\tPath: {run.path}\n\tPassed: {counts['passed']}\n\tSkipped: {counts['skipped']}\n"
              f"\tFailed: {counts['failed']}\n\tInvalid: {counts['invalid']}\n\n")


def _case_json(case: CaseResult) -> dict[str, Any]:
    return {
        "name": case.name,
        "expected": case.expected,
        "actual": case.actual,
        "passed": case.passed,
        "functions": {row.function: {"output": row.output, "error": row.error, "matched": row.matched}
                      for row in case.rows},
        "errors": {row.function: row.error for row in case.rows if row.error}
        | ({"unique": case.unique_error} if case.unique_error else {})
        | ({"test": case.harness_error} if case.harness_error else {}),
        "output": case.captured,
    }


def run_json(run: TestRun) -> dict[str, Any]:
    invalid = [{"id": None, "file": str(p.path), "status": "invalid", "error": p.message} for p in run.invalid]
    detections = [
        {"id": r.id, "file": r.file, "type": r.analysis_type, "status": r.status, "message": r.message,
         "failures": r.failures, "tests": [_case_json(c) for c in r.tests]}
        for r in run.reports
    ]
    warnings = [{"file": str(w.path), "warning": w.message} for w in run.warnings]
    return {"path": run.path, "summary": run.counts, "exit_code": run.exit_code,
            "detections": detections + invalid, "warnings": warnings}


def write_json(run: TestRun, out: TextIO) -> None:
    json.dump(run_json(run), out, indent=2)
    out.write("\n")
