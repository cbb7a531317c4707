"""Baseline for the rules-engine benchmark: the official runtime (panther_core) over the same events.

Run this file with a SEPARATE interpreter that has panther_core and panther_detection_helpers
installed (Onca never depends on them); bench/rules_engine.py does that through --baseline-python.

It loads the content the way the production runtime receives it: global helpers importable under their
GlobalID, the enabled data model of the log type attached to every event, every enabled rule of the
log type built as a panther_core `Rule`. Each event is read from the NDJSON file with only
`p_log_type` set, wrapped once in a `PantherEvent` and passed to `Rule.run(event, outputs,
outputs_names, batch_mode=True)` of every rule, as the log-analysis engine does. Only that loop is
timed, pinned to one core. It prints one JSON object:

    {"events": N, "rules": R, "seconds": s, "per_rule": {rule_id: {"matches": m, "errors": e}}}

panther_detection_helpers.caching talks to DynamoDB. Some rules call it outside of test mocks, so the
module is kept as it is and only its table is replaced by an in-memory one (`MemoryKVTable`) that
implements the few DynamoDB operations the module issues, with DynamoDB's semantics. The module's own
logic (TTL handling, conditional resets, empty-set rules) therefore runs unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fnmatch
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

_CONTENT_DIR_PATTERNS = (
    "*rules*",
    "*policies*",
    "*queries*",
    "*data_models*",
    "*/global_helpers",
    "*lookup_tables*",
    "*/packs",
    "*scheduled_prompts*",
)
_YAML_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b")


class MemoryKVTable:
    """The subset of a boto3 DynamoDB Table that panther_detection_helpers.caching uses, in memory."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    @staticmethod
    def _stored(value: Any) -> Any:
        # DynamoDB hands numbers back as Decimal and sets as fresh objects; the module relies on the
        # former (`.to_integral_value()`), and callers must not alias the stored set.
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return Decimal(str(value))
        if isinstance(value, set | frozenset):
            return set(value)
        return value

    def get_item(self, Key: dict[str, str], ProjectionExpression: str | None = None) -> dict[str, Any]:
        item = self.items.get(Key["key"])
        if item is None:
            return {}
        names = [n.strip() for n in ProjectionExpression.split(",")] if ProjectionExpression else list(item)
        return {"Item": {n: copy.copy(item[n]) for n in names if n in item}}

    def put_item(self, Item: dict[str, Any]) -> dict[str, Any]:
        self.items[Item["key"]] = {k: self._stored(v) for k, v in Item.items()}
        return {}

    def update_item(
        self,
        Key: dict[str, str],
        UpdateExpression: str,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        ConditionExpression: Any = None,
        ReturnValues: str = "NONE",
    ) -> dict[str, Any]:
        names = ExpressionAttributeNames or {}
        values = ExpressionAttributeValues or {}
        existing = self.items.get(Key["key"])
        if ConditionExpression is not None and not self._condition_holds(existing, ConditionExpression):
            from botocore.exceptions import ClientError

            raise ClientError(
                {
                    "Error": {
                        "Code": "ConditionalCheckFailedException",
                        "Message": "The conditional request failed",
                    }
                },
                "UpdateItem",
            )
        item = existing if existing is not None else {"key": Key["key"]}
        updated: list[str] = []
        for action, body in self._clauses(UpdateExpression):
            for part in (p.strip() for p in body.split(",")):
                if action == "SET":
                    name, _, placeholder = (s.strip() for s in part.partition("="))
                    item[names.get(name, name)] = self._stored(values[placeholder])
                    updated.append(names.get(name, name))
                elif action == "REMOVE":
                    item.pop(names.get(part, part), None)
                else:
                    name, placeholder = part.split()
                    self._add_or_delete(item, names.get(name, name), values[placeholder], action)
                    updated.append(names.get(name, name))
        self.items[Key["key"]] = item
        if ReturnValues == "UPDATED_NEW":
            return {"Attributes": {n: copy.copy(item[n]) for n in updated if n in item}}
        return {}

    @staticmethod
    def _clauses(expression: str) -> Iterator[tuple[str, str]]:
        parts = _CLAUSE.split(expression)
        for i in range(1, len(parts), 2):
            yield parts[i], parts[i + 1]

    def _add_or_delete(self, item: dict[str, Any], name: str, value: Any, action: str) -> None:
        if isinstance(value, set | frozenset):
            current = item.get(name, set())
            result = current | value if action == "ADD" else current - value
            if result:
                item[name] = set(result)
            else:  # DynamoDB never stores an empty set: the attribute disappears
                item.pop(name, None)
        elif action == "ADD":
            item[name] = item.get(name, Decimal(0)) + self._stored(value)
        else:
            raise ValueError(f"DELETE needs a set, got {type(value).__name__}")

    @staticmethod
    def _condition_holds(item: dict[str, Any] | None, condition: Any) -> bool:
        expression = condition.get_expression()
        attribute, operand = expression["values"]
        if expression["operator"] != ">=":
            raise NotImplementedError(f"condition {expression['operator']!r} is not needed by the caching module")
        # A comparison against a missing attribute (or a missing item) is false in DynamoDB.
        if item is None or attribute.name not in item:
            return False
        return bool(item[attribute.name] >= Decimal(str(operand)))


def content_specs(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every YAML spec the official tool would read at the root of a content repository."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        rel = "./" + os.path.relpath(dirpath, root)
        if rel != "./." and not any(fnmatch.fnmatch(rel, p) for p in _CONTENT_DIR_PATTERNS):
            continue
        for filename in sorted(filenames):
            if filename.startswith(".") or not fnmatch.fnmatch(filename, "*.y*ml"):
                continue
            path = Path(dirpath, filename)
            try:
                spec = yaml.load(path.read_bytes(), Loader=_YAML_LOADER)
            except yaml.YAMLError:
                continue
            if isinstance(spec, dict) and "AnalysisType" in spec:
                yield path, spec


class Content:
    """Globals, the data model and the rules of one log type, loaded into panther_core objects."""

    def __init__(self, root: Path, log_type: str, globals_dir: Path) -> None:
        from panther_core.data_model import DataModel
        from panther_core.rule import Rule

        specs = list(content_specs(root))
        for path, spec in specs:
            if spec["AnalysisType"] == "global" and spec.get("Filename"):
                shutil.copyfile(path.parent / spec["Filename"], globals_dir / f"{spec['GlobalID']}.py")
        sys.path.append(str(globals_dir))

        self.data_model: Any = None
        for path, spec in specs:
            if spec["AnalysisType"] == "datamodel" and spec.get("Enabled") and log_type in spec["LogTypes"]:
                config: dict[str, Any] = {
                    "id": spec["DataModelID"],
                    "versionId": "bench",
                    "mappings": [{k.lower(): v for k, v in m.items()} for m in spec["Mappings"]],
                }
                if spec.get("Filename"):
                    config["body"] = (path.parent / spec["Filename"]).read_text(encoding="utf-8")
                self.data_model = DataModel(config)

        self.rules: list[Any] = []
        self.skipped: list[str] = []
        for path, spec in sorted(specs, key=lambda item: str(item[1].get("RuleID"))):
            if spec["AnalysisType"] != "rule" or spec.get("Enabled") is not True:
                continue
            if log_type not in (spec.get("LogTypes") or ()):
                continue
            if not spec.get("Filename"):
                # Simple (`Detection:`) and derived rules are transpiled or fetched by the backend.
                self.skipped.append(spec["RuleID"])
                continue
            self.rules.append(
                Rule(
                    {
                        "id": spec["RuleID"],
                        "versionId": "bench",
                        "analysisType": "RULE",
                        "path": str(path.parent / spec["Filename"]),
                        "severity": str(spec.get("Severity", "")).upper(),
                        "dedupPeriodMinutes": spec.get("DedupPeriodMinutes", 60),
                        "tags": list(spec.get("Tags") or []),
                        "reports": {k: list(v) for k, v in (spec.get("Reports") or {}).items()},
                        "suppressAlert": spec.get("CreateAlert") is False,
                    }
                )
            )


def run_rules(content: Content, events: list[dict[str, Any]]) -> tuple[float, dict[str, dict[str, int]]]:
    """Evaluate every rule over every event in arrival order; return loop seconds and per-rule counts."""
    from panther_core.enriched_event import PantherEvent

    rules = content.rules
    data_model = content.data_model
    matches = [0] * len(rules)
    errors = [0] * len(rules)
    indexed = list(enumerate(rules))
    outputs: dict[str, Any] = {}
    outputs_names: dict[str, Any] = {}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # rules that print
        start = time.perf_counter()
        for raw in events:
            event = PantherEvent(raw, data_model)
            for i, rule in indexed:
                result = rule.run(event, outputs, outputs_names, batch_mode=True)
                if result.trigger_alert:
                    matches[i] += 1
                elif result.fatal_error is not None:
                    errors[i] += 1
        seconds = time.perf_counter() - start
    per_rule = {rule.detection_id: {"matches": matches[i], "errors": errors[i]} for i, rule in enumerate(rules)}
    return seconds, per_rule


def read_events(path: Path, log_type: str) -> list[dict[str, Any]]:
    events = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                event = json.loads(line)
                event["p_log_type"] = log_type
                events.append(event)
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time panther_core (the official runtime) over an NDJSON event file. "
        "Run with an interpreter that has panther_core installed."
    )
    parser.add_argument("--analysis-dir", required=True, type=Path, help="panther-analysis style content directory")
    parser.add_argument("--events", required=True, type=Path, help="NDJSON file, one event per line")
    parser.add_argument("--log-type", default="AWS.CloudTrail", help="log type to run (default AWS.CloudTrail)")
    parser.add_argument("--repeat", type=int, default=1, help="time the loop K times, report the best (default 1)")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the first allowed core)")
    args = parser.parse_args(argv)
    if not args.analysis_dir.is_dir():
        parser.error(f"--analysis-dir {args.analysis_dir}: not a directory")
    if not args.events.is_file():
        parser.error(f"--events {args.events}: no such file")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    try:
        from panther_detection_helpers import caching
    except ImportError as err:
        parser.error(f"this interpreter lacks the official runtime ({err}); see bench/README.md")

    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else allowed[0]})

    events = read_events(args.events, args.log_type)
    with tempfile.TemporaryDirectory(prefix="bench-globals-") as globals_dir:
        content = Content(args.analysis_dir.resolve(), args.log_type, Path(globals_dir))
        best = float("inf")
        per_rule: dict[str, dict[str, int]] = {}
        for attempt in range(args.repeat):
            caching._KV_TABLE = MemoryKVTable()  # a fresh, empty store for every pass
            seconds, counts = run_rules(content, events)
            best = min(best, seconds)
            if attempt == 0:
                per_rule = counts
    if content.skipped:
        print(f"baseline: skipped rules without a Filename: {', '.join(content.skipped)}", file=sys.stderr)
    json.dump(
        {"events": len(events), "rules": len(content.rules), "seconds": best, "per_rule": per_rule},
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
