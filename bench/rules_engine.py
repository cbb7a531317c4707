"""Rules-engine benchmark: Onca's production runner over an NDJSON event file, optionally side by side
with the official runtime (panther_core) run in a separate interpreter.

    python bench/rules_engine.py --analysis-dir ~/panther-analysis --events ct.ndjson \
        --log-type AWS.CloudTrail --baseline-python ~/patenv/bin/python --repeat 3

Every enabled rule of the log type runs over every event, each event passed as read from the file with
only `p_log_type` set and an empty key-value store at the start of each pass. Only evaluation is timed,
pinned to one core. The last line is always

    events=N rules=R matches=M errors=E events_per_s=X

With --baseline-python the summary before that line gives the baseline's events/s, the ratio and any
rule whose match or error count differs between the engines (the exit status is then 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from onca.detections.kvstore import KVStore, set_default_store
from onca.detections.runner import BatchResult, Runner

BASELINE_SCRIPT = Path(__file__).with_name("panther_core_baseline.py")
PerRule = dict[str, dict[str, int]]


def read_events(path: Path, log_type: str) -> list[dict[str, Any]]:
    events = []
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                event = orjson.loads(line)
                event["p_log_type"] = log_type
                events.append(event)
    return events


def per_rule_counts(rule_ids: list[str], result: BatchResult) -> PerRule:
    matches = Counter(m.rule_id for m in result.matches)
    errors = Counter(e.rule_id for e in result.errors)
    return {rule_id: {"matches": matches[rule_id], "errors": errors[rule_id]} for rule_id in rule_ids}


def run_onca(runner: Runner, log_type: str, events: list[dict[str, Any]], repeat: int) -> tuple[float, BatchResult]:
    """Best wall time of `repeat` passes, and the result of the first pass."""
    best = float("inf")
    first: BatchResult | None = None
    for _ in range(repeat):
        set_default_store(KVStore(None))  # every pass starts from an empty store
        start = time.perf_counter()
        result = runner.evaluate(log_type, events)
        best = min(best, time.perf_counter() - start)
        if first is None:
            first = result
    assert first is not None  # repeat >= 1
    return best, first


def run_baseline(python: str, args: argparse.Namespace, cpu: int) -> dict[str, Any]:
    command = [
        python, str(BASELINE_SCRIPT),
        "--analysis-dir", str(args.analysis_dir),
        "--events", str(args.events),
        "--log-type", args.log_type,
        "--repeat", str(args.repeat),
        "--cpu", str(cpu),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as err:
        raise SystemExit(f"error: cannot run --baseline-python {python}: {err}") from err
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"error: the baseline failed (exit {done.returncode}); its stderr is above")
    if done.stderr:
        sys.stderr.write(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(onca: PerRule, baseline: PerRule) -> list[str]:
    """One line per rule whose counts differ (a rule missing on one side counts as differing)."""
    lines = []
    for rule_id in sorted(onca.keys() | baseline.keys()):
        ours, theirs = onca.get(rule_id), baseline.get(rule_id)
        if ours == theirs:
            continue
        left = f"matches={ours['matches']} errors={ours['errors']}" if ours else "not loaded"
        right = f"matches={theirs['matches']} errors={theirs['errors']}" if theirs else "not loaded"
        lines.append(f"  {rule_id}: onca {left} | panther_core {right}")
    return lines


def describe_errors(result: BatchResult, limit: int = 10) -> list[str]:
    by_rule: dict[str, list[Any]] = {}
    for error in result.errors:
        by_rule.setdefault(error.rule_id, []).append(error)
    lines = []
    for rule_id, errors in sorted(by_rule.items(), key=lambda item: -len(item[1]))[:limit]:
        first = errors[0]
        lines.append(
            f"  {rule_id}: {len(errors)} (first at event {first.event_index}: "
            f"{first.error_type}: {first.message[:120]})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time Onca's production rules engine over an NDJSON file of events, optionally "
        "against panther_core run by another interpreter."
    )
    parser.add_argument("--analysis-dir", required=True, type=Path, help="panther-analysis style content directory")
    parser.add_argument("--events", required=True, type=Path, help="NDJSON file, one event per line")
    parser.add_argument("--log-type", default="AWS.CloudTrail", help="log type to run (default: %(default)s)")
    parser.add_argument("--per-rule-json", type=Path, help="write {rule_id: {matches, errors}} to this file")
    parser.add_argument(
        "--baseline-python",
        metavar="PY",
        help="interpreter with panther_core installed: also run the official runtime and compare",
    )
    parser.add_argument("--repeat", type=int, default=1, help="time K passes and report the best (default 1)")
    parser.add_argument(
        "--no-index", action="store_true", help="run every rule on every event (disable Onca's guard index)"
    )
    args = parser.parse_args(argv)
    if not args.analysis_dir.is_dir():
        parser.error(f"--analysis-dir {args.analysis_dir}: not a directory")
    if not args.events.is_file():
        parser.error(f"--events {args.events}: no such file")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.baseline_python and not shutil.which(args.baseline_python):
        parser.error(f"--baseline-python {args.baseline_python}: no such executable")
    if args.per_rule_json and not args.per_rule_json.parent.is_dir():
        parser.error(f"--per-rule-json {args.per_rule_json}: directory does not exist")

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    events = read_events(args.events, args.log_type)
    runner = Runner.from_path(args.analysis_dir, use_index=not args.no_index)
    rule_ids = runner.rule_ids(args.log_type)
    if not rule_ids:
        print(f"warning: no enabled rules for {args.log_type} under {args.analysis_dir}", file=sys.stderr)
    seconds, result = run_onca(runner, args.log_type, events, args.repeat)
    counts = per_rule_counts(rule_ids, result)
    if args.per_rule_json:
        args.per_rule_json.write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    rate = len(events) / seconds if seconds > 0 else float("inf")
    print(
        f"onca: {len(events)} events x {len(rule_ids)} rules in {seconds:.3f} s "
        f"(best of {args.repeat}) = {rate:,.0f} events/s"
    )
    if result.errors:
        print("onca rule errors:")
        print("\n".join(describe_errors(result)))
    status = 0
    if args.baseline_python:
        baseline = run_baseline(args.baseline_python, args, cpu)
        base_rate = baseline["events"] / baseline["seconds"] if baseline["seconds"] > 0 else float("inf")
        print(
            f"panther_core: {baseline['events']} events x {baseline['rules']} rules in "
            f"{baseline['seconds']:.3f} s (best of {args.repeat}) = {base_rate:,.0f} events/s"
        )
        print(f"onca/panther_core = {rate / base_rate:.1f}x")
        differences = compare(counts, baseline["per_rule"])
        if differences:
            print(f"per-rule counts differ for {len(differences)} rule(s):")
            print("\n".join(differences))
            status = 1
        else:
            print(f"per-rule match and error counts identical for all {len(counts)} rules")
    matched = len(result.matches)
    print(
        f"events={len(events)} rules={len(rule_ids)} matches={matched} errors={len(result.errors)} "
        f"events_per_s={rate:.1f}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
