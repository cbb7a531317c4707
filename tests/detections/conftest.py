"""Helpers to write small content repositories in a temporary directory."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

NOW = 1_700_000_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class ContentDir:
    """A throwaway panther-analysis-format repository."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def spec(self, relative: str, spec: dict[str, Any]) -> Path:
        return self.write(relative, yaml.safe_dump(spec, sort_keys=False))

    def rule(self, rule_id: str, code: str, tests: list[dict[str, Any]] | None = None, *,
             analysis_type: str = "rule", directory: str = "rules", **keys: Any) -> Path:
        stem = rule_id.lower().replace(".", "_")
        self.write(f"{directory}/{stem}.py", code)
        spec: dict[str, Any] = {
            "AnalysisType": analysis_type,
            "Filename": f"{stem}.py",
            ("PolicyID" if analysis_type == "policy" else "RuleID"): rule_id,
            "Enabled": True,
            "Severity": "High",
        }
        if analysis_type == "rule":
            spec["LogTypes"] = ["Custom.Test"]
        elif analysis_type == "scheduled_rule":
            spec["ScheduledQueries"] = ["Some Query"]
        elif analysis_type == "policy":
            spec["ResourceTypes"] = ["AWS.S3.Bucket"]
        spec.update(keys)
        if tests is not None:
            spec["Tests"] = tests
        return self.spec(f"{directory}/{stem}.yml", spec)

    def helper(self, global_id: str, code: str) -> None:
        self.write(f"global_helpers/{global_id}.py", code)
        self.spec(f"global_helpers/{global_id}.yml",
                  {"AnalysisType": "global", "GlobalID": global_id, "Filename": f"{global_id}.py"})


@pytest.fixture
def content(tmp_path: Path) -> ContentDir:
    return ContentDir(tmp_path / "repo")


def case(name: str, expected: bool, log: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
    return {"Name": name, "ExpectedResult": expected, "Log": log if log is not None else {}, **keys}
