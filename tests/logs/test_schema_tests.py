"""`onca schemas test`: passing cases, a failing case with its diff, quarantine expectations, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from onca.cli import schemas_command
from onca.logs.schema_tests import run_schema_tests

SCHEMA = """version: 0
schema: Custom.Login
parser:
  csv:
    hasHeader: true
    emptyValues: ['-']
fields:
  - {name: time, type: timestamp, timeFormat: unix, isEventTime: true, required: true}
  - {name: user, type: string, indicators: [username]}
  - {name: ip, type: string, indicators: [ip]}
  - {name: ok, type: boolean}
"""
JSON_SCHEMA = """version: 0
schema: Custom.Api
fields:
  - {name: at, type: timestamp, timeFormat: rfc3339, isEventTime: true}
  - {name: body, type: json}
  - {name: n, type: int}
"""
PASSING = """name: a login
logType: Custom.Login
input: |
  time,user,ip,ok
  1715674502,dana,2001:db8::7,true
result:
  time: '2024-05-14T08:15:02Z'
  user: dana
  ip: 2001:db8::7
  ok: true
  p_log_type: Custom.Login
  p_event_time: '2024-05-14T10:15:02+02:00'
  p_any_usernames: [dana]
  p_any_ip_addresses: ['2001:db8::7']
---
name: a short line
logType: Custom.Login
input: |
  time,user,ip,ok
  1715674502,dana
quarantined: true
reason: field count 2, expected 4
---
name: drift is expected too
logType: Custom.Api
input: {at: '2024-05-14T08:15:02.5Z', body: {k: [1, 2]}, n: many}
result:
  at: '2024-05-14T08:15:02.500Z'
  body: {k: [1, 2]}
  p_log_type: Custom.Api
  p_event_time: '2024-05-14T08:15:02.5Z'
  p_nonconforming: {n: {value: many, reason: "'many' is not an integer"}}
"""
FAILING = """name: wrong user
logType: Custom.Login
input: |
  time,user,ip,ok
  1715674502,dana,-,false
result:
  time: '2024-05-14T08:15:02Z'
  user: erin
  ok: false
  p_log_type: Custom.Login
  p_event_time: '2024-05-14T08:15:02Z'
  p_any_usernames: [erin]
---
name: expected quarantine but it parses
logType: Custom.Api
input: '{"n": 1}'
quarantined: true
---
name: wrong reason
logType: Custom.Api
input: '[1]'
quarantined: true
reason: not JSON
---
name: unknown type
logType: Custom.Nope
input: x
result: {}
---
name: bad key
logType: Custom.Api
input: x
expected: {}
"""


def make(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "login.yml").write_text(SCHEMA)
    (tmp_path / "api.yml").write_text(JSON_SCHEMA)
    (tmp_path / "login_tests.yml").write_text(tests)
    return tmp_path


def test_passing_cases(tmp_path: Path) -> None:
    run = run_schema_tests(make(tmp_path, PASSING))
    assert [(case.name, case.passed, case.message) for case in run.cases] == [
        ("a login", True, ""), ("a short line", True, ""), ("drift is expected too", True, "")]
    assert run.ok


def test_failures_with_diff_and_invalid_documents(tmp_path: Path) -> None:
    run = run_schema_tests(make(tmp_path, FAILING))
    results = {case.name: case for case in run.cases}
    assert not results["wrong user"].passed
    diff = results["wrong user"].message
    assert '-  "user": "erin"' in diff and '+  "user": "dana"' in diff and diff.startswith("--- expected\n+++ actual")
    assert results["expected quarantine but it parses"].message.startswith("expected quarantine, but the record parsed")
    assert results["wrong reason"].message == ("quarantined as expected, but the reason 'a JSON array, not an object'"
                                               " does not contain 'not JSON'")
    assert [problem.message for problem in run.invalid] == [
        "document 4 (unknown type): unknown log type 'Custom.Nope' (did you mean Custom.Api, Custom.Login?)",
        "document 5: unknown key 'expected' (allowed: name, logType, input, result, quarantined, reason)"]
    assert not run.ok


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(schemas_command.app, name="schemas")
    return app


def test_cli_text_and_json(tmp_path: Path) -> None:
    make(tmp_path, PASSING)
    result = CliRunner().invoke(cli(), ["schemas", "test", str(tmp_path), "--no-color"])
    assert result.exit_code == 0, result.output
    assert "Custom.Login\n\t[PASS] a login\n" in result.output
    assert "\tPassed: 3\n\tFailed: 0\n\tInvalid: 0\n" in result.output
    (tmp_path / "login_tests.yml").write_text(FAILING)
    result = CliRunner().invoke(cli(), ["schemas", "test", str(tmp_path), "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert (document["passed"], document["failed"], document["invalid"]) == (0, 3, 2)


def test_cli_reports_a_broken_schema_and_tests_the_rest(tmp_path: Path) -> None:
    make(tmp_path, PASSING)
    (tmp_path / "broken.yml").write_text("version: 0\nschema: Custom.Broken\nfields: [{name: a, type: nope}]\n")
    result = CliRunner().invoke(cli(), ["schemas", "test", str(tmp_path), "--no-color"])
    assert result.exit_code == 1
    assert "broken.yml\n\t\tfields[0].type (field a): 'nope' is not a type" in result.output
    assert "\tPassed: 3\n" in result.output


def test_cli_list(tmp_path: Path) -> None:
    make(tmp_path, PASSING)
    result = CliRunner().invoke(cli(), ["schemas", "list", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Custom.Login" in result.output and "custom_login" in result.output and "AWS.CloudTrail" in result.output
