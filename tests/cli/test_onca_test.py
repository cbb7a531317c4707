"""`onca test` as a user runs it: a real process, real files, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.detections.conftest import ContentDir, case


def onca(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", "onca", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300, check=False)


def test_builtin_content_passes_with_every_kind_run() -> None:
    result = onca("test", "--no-color")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    summary = result.stdout[result.stdout.index("Test Summary"):]
    assert "\tFailed: 0\n\tInvalid: 0" in summary
    assert "\tSkipped: 0\n" in summary
    passed = int(summary.split("Passed: ")[1].split("\n")[0])
    assert passed >= 25
    # correlation rules and the simple detection are run, not skipped
    assert "Onca.AWS.NewUserGrantedAdmin\n\t[PASS]" in result.stdout
    assert "Onca.GitHub.RepoDeleted\n\t[PASS]" in result.stdout


def test_compat_skips_what_the_reference_tool_skips() -> None:
    result = onca("test", "--no-color", "--compat")
    assert result.returncode == 0
    assert "\tSkipped: 2\n" in result.stdout  # the two correlation rules
    assert "Onca.GitHub.RepoDeleted\n" not in result.stdout  # the simple detection is silently passed over


def _repo(tmp_path: Path) -> ContentDir:
    repo = ContentDir(tmp_path / "repo")
    repo.rule("Cli.Root", "def rule(event):\n    return event.get('user') == 'root'\n",
              [case("Root", True, {"user": "root"}), case("Alice", False, {"user": "alice"})])
    repo.rule("Cli.Other", "def rule(event):\n    return False\n", [case("Never", False, {})])
    return repo


def test_flipping_one_expected_result_fails_exactly_that_detection(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert onca("test", str(repo.root), "--no-color").returncode == 0
    spec_path = repo.root / "rules" / "cli_root.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["Tests"][1]["ExpectedResult"] = True
    spec_path.write_text(yaml.safe_dump(spec))
    result = onca("test", str(repo.root), "--no-color")
    assert result.returncode == 1
    assert "\t[FAIL] Alice\n\t\t[FAIL] [rule] false\n" in result.stdout
    assert "Failed Tests Summary\n\tCli.Root\n\t\t['Alice:rule']\n" in result.stdout
    assert "\tPassed: 1\n\tSkipped: 0\n\tFailed: 1\n" in result.stdout


def test_json_format_is_one_document_with_every_detection_and_test(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write("rules/broken.yml", "AnalysisType: rule\nRuleID: [\n")
    result = onca("test", str(repo.root), "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["summary"] == {"passed": 2, "skipped": 0, "failed": 0, "invalid": 1}
    by_id = {d["id"]: d for d in document["detections"]}
    root = by_id["Cli.Root"]
    assert root["status"] == "passed" and root["file"].endswith("cli_root.yml")
    assert [(t["name"], t["expected"], t["actual"]) for t in root["tests"]] == [("Root", True, True),
                                                                               ("Alice", False, False)]
    invalid = by_id[None]
    assert invalid["status"] == "invalid" and invalid["file"].endswith("broken.yml")
    assert "YAML syntax error" in invalid["error"]


def test_show_failures_only_and_filters(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.rule("Cli.Broken", "def rule(event):\n    return True\n", [case("Wrong", False, {})], Severity="Low")
    result = onca("test", str(repo.root), "--no-color", "--show-failures-only")
    assert "Cli.Root" not in result.stdout.split("----")[0]
    assert "Cli.Broken\n\t[FAIL] Wrong\n" in result.stdout
    result = onca("test", str(repo.root), "--no-color", "--filter", "Severity=High")
    assert result.returncode == 0 and "Cli.Broken" not in result.stdout


def test_bad_arguments_get_a_clear_message(tmp_path: Path) -> None:
    result = onca("test", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = onca("test", "--filter", "Severity")
    assert result.returncode == 2 and "Key=value1,value2" in result.stderr


def test_dedup_period_warnings_are_shown_without_failing(tmp_path: Path) -> None:
    repo = ContentDir(tmp_path / "repo")
    repo.rule("Cli.Short", "def rule(event):\n    return True\n", [case("t", True, {})], DedupPeriodMinutes=2)
    result = onca("test", str(repo.root), "--no-color")
    assert result.returncode == 0
    assert "WARNING:" in result.stderr and "cli_short.yml" in result.stderr and "5" in result.stderr
