"""`onca schemas test`: each schema's sample logs against their expected normalised rows.

Test files sit next to schemas as `<name>_tests.yml`, several YAML documents each:

    name: ConsoleLogin without MFA            name: truncated record
    logType: AWS.CloudTrail                   logType: AWS.CloudTrail
    input: '{"eventVersion": ...}'            input: '{"eventVersion": "1.0'
    result: {eventTime: '2024-05-14T...Z',    quarantined: true
             p_any_ip_addresses: [...], ...}  reason: not JSON

`input` is the raw text of one record (for text formats, earlier lines such as headers may come first;
the last line is the record under test). `result` is compared with the row after dropping p_parse_time,
p_row_id, p_source_id, p_source_label and null values; timestamps are compared as instants (write them
as RFC 3339) and `json` fields by their decoded value (write a mapping, or the JSON text).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from onca.detections.yaml_dialect import ContentLoader
from onca.logs.model import ParseError, RawRecord, Source
from onca.logs.normalize import Compiler
from onca.logs.registry import SchemaRegistry, is_test_file
from onca.logs.schema import LogSchema
from onca.logs.schema_model import SchemaError
from onca.logs.timeformats import parse_rfc3339

IGNORED = ("p_parse_time", "p_row_id", "p_source_id", "p_source_label")
_TEST_KEYS = ("name", "logType", "input", "result", "quarantined", "reason")
_SOURCE = Source(id="schema-tests", label="onca schemas test")
_PARSE_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # fixed, so a row without an event time compares stably


@dataclass
class CaseResult:
    name: str
    log_type: str
    file: str
    passed: bool
    message: str = ""  # why it failed (a diff for a mismatched row)


@dataclass
class Problem:
    file: str
    message: str


@dataclass
class RunResult:
    path: str
    cases: list[CaseResult] = field(default_factory=list)
    invalid: list[Problem] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [case for case in self.cases if not case.passed]

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.failed


def find_test_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if is_test_file(path) else []
    return sorted(p for p in path.rglob("*_tests.y*ml") if p.is_file() and p.suffix in (".yml", ".yaml"))


def run_schema_tests(path: Path, registry: SchemaRegistry | None = None) -> RunResult:
    """Run every `*_tests.yml` under `path` with the managed schemas plus the schemas found under `path`."""
    result = RunResult(path=str(path))
    if registry is None:
        try:
            registry = SchemaRegistry.load([path.parent if path.is_file() else path])
        except SchemaError as err:
            result.invalid += [Problem(*_split_origin(line)) for line in err.errors]
            registry = _partial_registry(path)
    for file in find_test_files(path):
        run_file(file, registry, result)
    return result


def _split_origin(line: str) -> tuple[str, str]:
    origin, sep, message = line.partition(": ")
    return (origin, message) if sep else ("", line)


def _partial_registry(path: Path) -> SchemaRegistry:
    """What loads cleanly when some schema does not, so its neighbours are still tested."""
    from onca.logs.registry import managed_schema_dir, schema_files
    from onca.logs.schema import load_schema

    registry = SchemaRegistry()
    managed_root = managed_schema_dir().resolve()
    roots = [managed_schema_dir(), path.parent if path.is_file() else path]
    for root in roots:
        for file in schema_files(root):
            managed = managed_root == file.resolve() or managed_root in file.resolve().parents
            try:
                schema = load_schema(file, managed=managed)
            except SchemaError:
                continue
            if schema.name not in registry:
                registry.add(schema)
    return registry


def run_file(file: Path, registry: SchemaRegistry, result: RunResult) -> None:
    try:
        documents = list(yaml.load_all(file.read_bytes(), Loader=ContentLoader))
    except (OSError, yaml.YAMLError) as err:
        result.invalid.append(Problem(str(file), f"cannot read tests: {err}"))
        return
    for index, document in enumerate(documents):
        if document is None:
            continue
        where = f"document {index + 1}"
        problem = _check_document(document)
        if problem:
            result.invalid.append(Problem(str(file), f"{where}: {problem}"))
            continue
        try:
            schema = registry.get(document["logType"])
        except KeyError as err:
            result.invalid.append(Problem(str(file), f"{where} ({document['name']}): {err.args[0]}"))
            continue
        result.cases.append(run_case(document, schema, f"{file}#{index + 1}", str(file)))


def _check_document(document: Any) -> str | None:
    if not isinstance(document, dict):
        return f"expected a mapping with name, logType, input and result, got {type(document).__name__}"
    unknown = [key for key in document if key not in _TEST_KEYS]
    if unknown:
        return f"unknown key {unknown[0]!r} (allowed: {', '.join(_TEST_KEYS)})"
    for key in ("name", "logType", "input"):
        if key not in document:
            return f"missing required key {key!r}"
    if type(document["name"]) is not str or type(document["logType"]) is not str:
        return "name and logType must be strings"
    if document.get("quarantined") is True:
        if "result" in document:
            return "give either result or quarantined: true, not both"
        if "reason" in document and type(document["reason"]) is not str:
            return "reason must be a string (a part of the expected quarantine reason)"
    elif "quarantined" in document:
        return "quarantined may only be true (leave it out and give result for a record that parses)"
    elif not isinstance(document.get("result"), dict):
        return "result must be a mapping of the expected normalised row (or give quarantined: true)"
    return None


def run_case(document: dict[str, Any], schema: LogSchema, origin: str, file: str) -> CaseResult:
    name, log_type = document["name"], document["logType"]
    try:
        row = normalize_input(schema, document["input"], origin)
    except ParseError as err:
        if document.get("quarantined"):
            expected = document.get("reason", "")
            if expected.lower() in str(err).lower():
                return CaseResult(name, log_type, file, True)
            return CaseResult(name, log_type, file, False,
                              f"quarantined as expected, but the reason {str(err)!r} does not contain {expected!r}")
        return CaseResult(name, log_type, file, False, f"quarantined: {err}")
    if row is None:
        return CaseResult(name, log_type, file, False, "the input holds no event (only header or comment lines)")
    if document.get("quarantined"):
        return CaseResult(name, log_type, file, False,
                          f"expected quarantine, but the record parsed:\n{_render(comparable(schema, row))}")
    actual = comparable(schema, row)
    expected = comparable(schema, document["result"])
    if actual == expected:
        return CaseResult(name, log_type, file, True)
    return CaseResult(name, log_type, file, False, row_diff(expected, actual))


def normalize_input(schema: LogSchema, raw: Any, origin: str) -> dict[str, Any] | None:
    """The row for a test input (ParseError when it would be quarantined)."""
    parser = schema.new_parser()
    if not isinstance(raw, str):
        raw = orjson.dumps(raw).decode()  # a mapping written as YAML stands for its JSON text
    lines = [raw] if schema.parser_kind == "json" else raw.rstrip("\n").split("\n")
    row = None
    for position, line in enumerate(lines):
        record = RawRecord(line.encode(), origin, position)
        row = schema.normalize_record(parser, record, source=_SOURCE, parse_time=_PARSE_TIME)
    return row


def _timestamp_text(value: datetime) -> str:
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _canonical(value: Any, spec: dict[str, Any] | None, compiler: Compiler) -> Any:
    if spec is None:
        return value
    spec = compiler.resolve(spec)
    kind = spec["type"]
    if kind == "timestamp":
        if isinstance(value, datetime):
            return _timestamp_text(value)
        if isinstance(value, str):
            try:
                return _timestamp_text(parse_rfc3339(value))
            except ValueError:
                return value
        return value
    if kind == "json":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if kind == "object" and isinstance(value, dict):
        return _canonical_fields(value, spec["fields"], compiler)
    if kind == "array" and isinstance(value, list):
        return [_canonical(item, spec["element"], compiler) for item in value]
    return value


def _canonical_fields(value: dict[str, Any], fields: list[dict[str, Any]], compiler: Compiler) -> dict[str, Any]:
    specs = {item["name"]: item for item in fields}
    return {key: _canonical(item, specs.get(key), compiler) for key, item in value.items() if item is not None}


_STANDARD_SPECS = {
    "p_event_time": {"type": "timestamp", "timeFormat": "rfc3339"},
    "p_parse_time": {"type": "timestamp", "timeFormat": "rfc3339"},
    "p_nonconforming": {"type": "json"},
}


def comparable(schema: LogSchema, row: dict[str, Any]) -> dict[str, Any]:
    """A row (actual or expected) in the form tests compare: no ignored or null fields, timestamps as RFC 3339
    UTC text, json fields decoded."""
    fields = [*schema.fields, *({"name": name, **spec} for name, spec in _STANDARD_SPECS.items())]
    trimmed = {key: value for key, value in row.items() if key not in IGNORED}
    return _canonical_fields(trimmed, fields, Compiler(schema.definitions))


def _render(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def row_diff(expected: dict[str, Any], actual: dict[str, Any]) -> str:
    lines = difflib.unified_diff(_render(expected).splitlines(), _render(actual).splitlines(),
                                 "expected", "actual", lineterm="", n=2)
    return "\n".join(lines)


def write_text(run: RunResult, out: TextIO, *, color: bool = False) -> None:
    """Per log type PASS/FAIL lines (a diff under each failure), then the summary."""
    pass_word = "\x1b[32mPASS\x1b[0m" if color else "PASS"
    fail_word = "\x1b[31mFAIL\x1b[0m" if color else "FAIL"
    by_type: dict[str, list[CaseResult]] = {}
    for case in run.cases:
        by_type.setdefault(case.log_type, []).append(case)
    for log_type in sorted(by_type):
        out.write(f"{log_type}\n")
        for case in by_type[log_type]:
            out.write(f"\t[{pass_word if case.passed else fail_word}] {case.name}\n")
            if not case.passed:
                for line in case.message.splitlines():
                    out.write(f"\t\t{line}\n")
        out.write("\n")
    rule = "-" * 10 + "\n"
    if run.failed:
        out.write(rule + "Failed Tests Summary\n")
        for case in run.failed:
            out.write(f"\t{case.log_type}\n\t\t{case.name} ({case.file})\n\n")
    if run.invalid:
        out.write(rule + "Invalid Tests Summary\n")
        for problem in run.invalid:
            out.write(f"\t{problem.file}\n\t\t{problem.message}\n\n")
    out.write(rule + "Test Summary\n")
    passed = len(run.cases) - len(run.failed)
    out.write(f"\tPath: {run.path}\n\tPassed: {passed}\n\tFailed: {len(run.failed)}\n\tInvalid: {len(run.invalid)}\n")


def to_json(run: RunResult) -> dict[str, Any]:
    return {
        "path": run.path,
        "passed": len(run.cases) - len(run.failed),
        "failed": len(run.failed),
        "invalid": len(run.invalid),
        "cases": [{"name": c.name, "logType": c.log_type, "file": c.file, "passed": c.passed, "message": c.message}
                  for c in run.cases],
        "invalidFiles": [{"file": p.file, "message": p.message} for p in run.invalid],
    }
