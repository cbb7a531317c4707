"""The test harness: verdicts, function rows, truncation, dedup fallback, mocks, bad content, summary."""

from __future__ import annotations

import io
from pathlib import Path

from onca.detections.report import TextReporter
from onca.detections.testing import Options, run_tests
from onca.detections.testing import TestRun as Run

from .conftest import ContentDir, case


def run(root: Path, **options: object) -> tuple[Run, str]:
    out = io.StringIO()
    reporter = TextReporter(out, color=False)
    result = run_tests(root, Options(workers=1, **options), on_report=reporter.detection)  # type: ignore[arg-type]
    reporter.summary(result)
    return result, out.getvalue()


def test_passing_rule_prints_rows_and_summary(content: ContentDir) -> None:
    content.rule("Test.Login", """
        def rule(event):
            return event.get("action") == "login"

        def title(event):
            return f"login by {event.get('user')}"
        """, [case("Login", True, {"action": "login", "user": "ann"}), case("Other", False, {"action": "x"})])
    result, text = run(content.root)
    assert result.counts == {"passed": 1, "skipped": 0, "failed": 0, "invalid": 0}
    assert result.exit_code == 0
    assert "Test.Login\n\t[PASS] Login\n\t\t[PASS] [rule] true\n\t\t[PASS] [title] login by ann\n" in text
    # dedup falls back to the title
    assert "\t\t[PASS] [dedup] login by ann\n" in text
    # negative tests show only the matcher row
    assert "\t[PASS] Other\n\t\t[PASS] [rule] false\n\n" in text
    summary = f"Test Summary\n\tPath: {content.root}\n\tPassed: 1\n\tSkipped: 0\n\tFailed: 0\n\tInvalid: 0\n\n"
    assert text.endswith(summary)


def test_flipped_expected_result_fails_exactly_that_detection(content: ContentDir) -> None:
    content.rule("Test.A", "def rule(event):\n    return event.get('x') == 1\n",
                 [case("Matches", False, {"x": 1})])
    content.rule("Test.B", "def rule(event):\n    return True\n", [case("Always", True, {})])
    result, text = run(content.root)
    assert [r.id for r in result.failed] == ["Test.A"]
    assert result.failed[0].failures == ["Matches:rule"]
    assert "\t[FAIL] Matches\n\t\t[FAIL] [rule] true\n" in text
    assert "Failed Tests Summary\n\tTest.A\n\t\t['Matches:rule']\n" in text
    assert result.exit_code == 1


def test_strict_return_types(content: ContentDir) -> None:
    content.rule("Test.Types", """
        def rule(event):
            return 1

        def title(event):
            return None
        """, [case("Wrong", True, {})])
    result, text = run(content.root)
    assert "[FAIL] [rule] FunctionReturnTypeError: detection [Test.Types] function [rule] returned [int], " \
           "expected [bool]" in text
    assert "[FAIL] [title] FunctionReturnTypeError: detection [Test.Types] function [title] returned " \
           "[NoneType], expected [str]" in text
    assert result.failed[0].failures == ["Wrong:rule", "Wrong:title"]


def test_auxiliary_errors_only_count_when_an_alert_is_expected(content: ContentDir) -> None:
    content.rule("Test.Aux", """
        def rule(event):
            return event.get("hit") is True

        def alert_context(event):
            return {"bad": {1, 2}}
        """, [case("Quiet", False, {"hit": False}), case("Loud", True, {"hit": True})])
    result, text = run(content.root)
    assert result.failed[0].failures == ["Loud:alertContext"]
    assert "[FAIL] [alertContext] TypeError: object of type <class 'set'> is not JSON serializable" in text


def test_truncation_and_dedup_default(content: ContentDir) -> None:
    content.rule("Test.Long", """
        def rule(event):
            return True

        def title(event):
            return "t" * 1200

        def dedup(event):
            return ""
        """, [case("Long", True, {})])
    result, _ = run(content.root)
    rows = {row.function: row for row in result.reports[0].tests[0].rows}
    assert rows["title"].output == "t" * 985 + "... (truncated)"
    assert len(rows["title"].output) == 1000
    assert rows["dedup"].output == "defaultDedupString:Test.Long"


def test_severity_default_and_case(content: ContentDir) -> None:
    content.rule("Test.Sev", """
        def rule(event):
            return True

        def severity(event):
            return event.get("sev")
        """, [case("Default", True, {"sev": "default"}), case("Lower", True, {"sev": "critical"}),
              case("Bad", True, {"sev": "urgent"})])
    result, text = run(content.root)
    default, lower, bad = result.reports[0].tests
    assert "severity" not in {row.function for row in default.rows}  # DEFAULT reads as no severity in tests
    assert any(row.function == "severity" and row.output == "CRITICAL" for row in lower.rows)
    assert not bad.passed
    assert "AssertionError: Expected severity to be any of the following" in text


def test_mocks_are_magicmocks_patched_on_the_module(content: ContentDir) -> None:
    content.rule("Test.Mock", """
        import json
        from unittest.mock import MagicMock

        ALLOWED = ["a.example"]

        def lookup(ip):
            raise RuntimeError("network")

        def rule(event):
            allowed = json.loads(ALLOWED()) if isinstance(ALLOWED, MagicMock) else ALLOWED
            return event.get("domain") not in allowed and lookup(event.get("ip")) == "bad"
        """, [
        case("Mocked", True, {"domain": "b.example", "ip": "1.2.3.4"},
             Mocks=[{"objectName": "ALLOWED", "returnValue": '["c.example"]'},
                    {"objectName": "lookup", "returnValue": "bad"}]),
        case("Mock of a missing name", True, {}, Mocks=[{"objectName": "nope", "returnValue": "x"}]),
    ])
    result, _text = run(content.root)
    mocked, missing = result.reports[0].tests
    assert mocked.passed
    assert not missing.passed and missing.harness_error is not None and "nope" in missing.harness_error
    assert result.reports[0].failures == ["Mock of a missing name"]


def test_policies_alert_on_false_and_get_a_plain_dict(content: ContentDir) -> None:
    content.rule("Test.Policy", """
        def policy(resource):
            assert type(resource) is dict
            return resource.get("Encrypted") is True
        """, [{"Name": "Encrypted", "ExpectedResult": True, "Resource": {"Encrypted": True}},
              {"Name": "Plain", "ExpectedResult": False, "Resource": {"Encrypted": False}}],
        analysis_type="policy", directory="policies")
    result, text = run(content.root)
    assert result.counts["passed"] == 1
    assert "\t[PASS] Plain\n\t\t[PASS] [policy] false\n\t\t[PASS] [dedup] defaultDedupString:Test.Policy\n" in text


def test_create_alert_false_hides_rows_but_errors_still_fail(content: ContentDir) -> None:
    content.rule("Test.Signal", """
        def rule(event):
            return True

        def title(event):
            return "hidden"

        def alert_context(event):
            return {"a": 1}
        """, [case("Signal", True, {})], CreateAlert=False)
    _result, text = run(content.root)
    assert "[title]" not in text and "[dedup]" not in text
    assert '\t[PASS] Signal\n\t\t[PASS] [rule] true\n\t\t[PASS] [alertContext] {"a": 1}\n' in text


def test_hidden_function_errors_fail_the_test(content: ContentDir) -> None:
    content.rule("Test.Signal", """
        def rule(event):
            return True

        def title(event):
            raise ValueError("boom")
        """, [case("Signal", True, {})], CreateAlert=False)
    result, text = run(content.root)
    # Onca shows and counts the hidden error ...
    assert result.failed[0].failures == ["Signal:title"]
    assert "[FAIL] [title] ValueError: boom" in text
    # ... the reference tool marks the test FAIL but does not count the detection as failed.
    result, text = run(content.root, compat=True)
    assert result.reports[0].tests[0].passed is False
    assert result.counts["failed"] == 0 and "[title]" not in text


def test_bad_content_is_reported_per_file_and_others_still_run(content: ContentDir) -> None:
    content.rule("Test.Good", "def rule(event):\n    return True\n", [case("ok", True, {})])
    content.rule("Test.Syntax", "def rule(event) return True\n", [case("x", True, {})])
    content.rule("Test.Import", "import not_a_module_anywhere\ndef rule(event):\n    return True\n", [])
    content.rule("Test.NoRule", "def title(event):\n    return 'x'\n", [])
    content.write("rules/broken.yml", "AnalysisType: rule\nRuleID: [unclosed\n")
    content.spec("rules/missing_file.yml", {"AnalysisType": "rule", "RuleID": "Test.Missing", "Enabled": True,
                                            "Filename": "nowhere.py", "LogTypes": ["X"], "Severity": "Low"})
    content.spec("rules/extra_key.yml", {"AnalysisType": "rule", "RuleID": "Test.Extra", "Enabled": True,
                                         "Filename": "test_good.py", "LogTypes": ["X"], "Severity": "Low",
                                         "Colour": "red"})
    result, text = run(content.root)
    invalid = {p.path.name: p.message for p in result.invalid}
    assert set(invalid) == {"test_syntax.yml", "test_import.yml", "test_norule.yml", "broken.yml",
                            "missing_file.yml", "extra_key.yml"}
    assert "SyntaxError" in invalid["test_syntax.yml"]
    assert "not_a_module_anywhere" in invalid["test_import.yml"]
    assert "detection needs to have a method named 'rule'" in invalid["test_norule.yml"]
    assert "nowhere.py" in invalid["missing_file.yml"]
    assert "Colour" in invalid["extra_key.yml"]
    assert [r.id for r in result.reports] == ["Test.Good"]
    assert result.reports[0].status == "passed"
    assert result.exit_code == 1
    assert "Invalid Tests Summary" in text


def test_duplicate_ids_across_types_are_invalid(content: ContentDir) -> None:
    content.rule("Test.Same", "def rule(event):\n    return True\n", [])
    content.rule("Test.Same", "def policy(resource):\n    return True\n", [], analysis_type="policy",
                 directory="policies")
    result, _ = run(content.root)
    assert any("Test.Same" in p.message for p in result.invalid)


def test_globals_import_under_their_id_and_panther_names_resolve(content: ContentDir) -> None:
    content.helper("my_helpers", """
        from panther_core import PantherEvent
        from panther_core.immutable import ImmutableList

        def is_list(value):
            return isinstance(value, ImmutableList)

        def is_event(value):
            return isinstance(value, PantherEvent)
        """)
    content.rule("Test.Globals", """
        from my_helpers import is_event, is_list
        from panther_detection_helpers.caching import get_string_set

        def rule(event):
            return is_event(event) and is_list(event.get("items")) and not isinstance(event.get("items"), list)
        """, [case("Nested list", True, {"items": [1, 2]})])
    result, _ = run(content.root)
    assert result.exit_code == 0, result.invalid


def test_filters_test_names_minimum_tests_and_skip_disabled(content: ContentDir) -> None:
    content.rule("Test.High", "def rule(event):\n    return True\n", [case("one", True, {})], Severity="High")
    content.rule("Test.Low", "def rule(event):\n    return True\n", [case("two", True, {})], Severity="Low",
                 Enabled=False)
    result, _ = run(content.root, filters=[("Severity", False, {"high"})])
    assert [r.id for r in result.reports] == ["Test.High"]
    result, _ = run(content.root, skip_disabled=True)
    assert [r.id for r in result.skipped] == ["Test.Low"]
    result, _text = run(content.root, test_names={"two"})
    assert [r.id for r in result.skipped] == ["Test.High"]
    result, _ = run(content.root, minimum_tests=2)
    assert {r.id for r in result.failed} == {"Test.High", "Test.Low"}
    assert "Insufficient test coverage: 2 tests required but only 1 found" in result.failed[0].failures


def test_output_of_detection_code_is_captured_per_test(content: ContentDir, capsys: object) -> None:
    content.rule("Test.Print", "def rule(event):\n    print('debugging', event.get('x'))\n    return True\n",
                 [case("prints", True, {"x": 7})])
    _, text = run(content.root)
    assert "Test.Print\ndebugging 7\n\n\t[PASS] prints\n" in text
