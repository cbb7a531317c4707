"""Seeing what happened: stack status, events, and the first failure of the last failed operation.

`diagnose` does in one command what the seed asks operators to do by hand in the CloudFormation
console: find the nested stack that failed first (deleted ones included), then its first error. It
drops "cancelled because another resource failed" noise, and lists other independent failures of
the same operation, and failures of its rollback, separately.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from onca.deploy.ledger import Event, Ledger

FAILED_SUFFIX = "_FAILED"
NOISE_STATUSES = {"CREATE_CANCELLED", "DELETE_SKIPPED"}


@dataclass
class Failure:
    component: str
    stack: str
    resource: str | None
    status: str
    reason: str
    at: float
    event_id: int


@dataclass
class Diagnosis:
    root: str
    status: str
    reason: str
    operation: int | None = None
    operation_kind: str | None = None
    first_failure: Failure | None = None
    other_failures: list[Failure] = field(default_factory=list)
    rollback_failures: list[Failure] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _component_of(ledger: Ledger, stack: str) -> str:
    record = ledger.stack(stack)
    return (record.component if record and record.component else stack) or stack


def _failure(ledger: Ledger, event: Event) -> Failure:
    return Failure(_component_of(ledger, event.stack), event.stack, event.resource, event.status, event.reason,
                   event.at, event.id)


def diagnose(ledger: Ledger, root: str) -> Diagnosis:
    record = ledger.stack(root)
    if record is None:
        return Diagnosis(root, "NOT_DEPLOYED", "no stack of that name in this home",
                         advice=["run `onca deploy` to create it"])
    result = Diagnosis(root, record.status, record.reason)
    failed_ops = [op for op in ledger.operations(root) if op.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE",
                                                                            "DELETE_COMPLETE", "IN_PROGRESS")]
    if not failed_ops:
        result.advice.append("no failed operation: nothing to diagnose")
        return result
    op = failed_ops[-1]
    result.operation, result.operation_kind = op.id, op.kind
    events = ledger.events(operation=op.id)
    rollback_started = next((e.id for e in events if e.stack == root and "ROLLBACK_IN_PROGRESS" in e.status), None)
    forward = [e for e in events if rollback_started is None or e.id < rollback_started]
    backward = [e for e in events if rollback_started is not None and e.id >= rollback_started]
    leaf_failures = [e for e in forward if e.resource and e.status.endswith(FAILED_SUFFIX)
                     and e.status not in NOISE_STATUSES and "cancelled" not in e.reason.lower()]
    if leaf_failures:
        result.first_failure = _failure(ledger, leaf_failures[0])
        result.other_failures = [_failure(ledger, e) for e in leaf_failures[1:]]
    else:
        stack_failures = [e for e in forward if e.stack != root and e.status.endswith(FAILED_SUFFIX)]
        if stack_failures:
            result.first_failure = _failure(ledger, stack_failures[0])
    result.rollback_failures = [_failure(ledger, e) for e in backward if e.resource
                                and e.status.endswith(FAILED_SUFFIX)]
    result.advice = _advice(result)
    return result


def _advice(result: Diagnosis) -> list[str]:
    advice = []
    if result.status in ("UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED"):
        skip = result.rollback_failures[0] if result.rollback_failures else None
        target = f"{skip.component}/{skip.resource}" if skip else "RESOURCE"
        advice.append("fix what blocked the rollback, then run `onca deploy --continue-rollback`; if it cannot be "
                      f"fixed, `onca deploy --continue-rollback --skip {target}` leaves that resource as it is")
    elif result.status == "ROLLBACK_COMPLETE":
        advice.append("the first deploy was rolled back and everything it created was deleted; fix the cause "
                      "below and run `onca deploy` again")
    elif result.status == "UPDATE_ROLLBACK_COMPLETE":
        advice.append("the update was rolled back to the previous parameters, version and database snapshot; "
                      "the deployment runs as before. Fix the cause below and run `onca deploy` again")
    if result.first_failure is not None:
        f = result.first_failure
        advice.append(f"first failure: component {f.component}, resource {f.resource or '-'}: {f.reason}")
    return advice


def render_diagnosis(d: Diagnosis) -> str:
    lines = [f"Stack {d.root}: {d.status}" + (f" — {d.reason}" if d.reason else "")]
    if d.operation is not None:
        lines.append(f"Last failed operation: #{d.operation} ({d.operation_kind})")
    if d.first_failure is not None:
        f = d.first_failure
        lines += ["", "First failure:", f"  component  {f.component} (stack {f.stack})",
                  f"  resource   {f.resource or '-'}", f"  status     {f.status}", f"  error      {f.reason}",
                  f"  at         {_time(f.at)}"]
    for title, failures in (("Other independent failures", d.other_failures),
                            ("Failures while rolling back", d.rollback_failures)):
        if failures:
            lines += ["", f"{title}:"]
            lines += [f"  {f.component}/{f.resource or '-'} {f.status}: {f.reason}" for f in failures]
    if d.advice:
        lines += ["", "What to do:"] + [f"  - {a}" for a in d.advice]
    return "\n".join(lines)


def _time(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def status_json(ledger: Ledger, root: str) -> dict[str, Any]:
    record = ledger.stack(root)
    if record is None:
        return {"stack": root, "status": "NOT_DEPLOYED"}
    lock = ledger.lock_info()
    return {
        "stack": root,
        "status": record.status,
        "reason": record.reason,
        "version": record.version,
        "updated_at": _time(record.updated_at),
        "components": [{"name": s.component, "stack": s.name, "status": s.status, "reason": s.reason,
                        "resources": [{"name": r.name, "status": r.status} for r in ledger.resources(s.name)]}
                       for s in ledger.stacks(root) if s.component],
        "lock": None if lock is None else {"operation": lock.operation, "pid": lock.pid, "host": lock.host,
                                           "since": _time(lock.started_at), "alive": lock.alive},
    }


def render_status(data: dict[str, Any]) -> str:
    if data["status"] == "NOT_DEPLOYED":
        return f"Stack {data['stack']} is not deployed in this home. Run `onca deploy`."
    lines = [f"Stack {data['stack']}: {data['status']}  (version {data['version'] or '-'}, "
             f"updated {data['updated_at']})"]
    if data["reason"]:
        lines.append(f"  {data['reason']}")
    for component in data["components"]:
        lines.append(f"  {component['name']:<12} {component['status']}")
        for resource in component["resources"]:
            lines.append(f"      {resource['name']:<24} {resource['status']}")
    if data["lock"]:
        lock = data["lock"]
        state = "running" if lock["alive"] else "stale: its process is gone; the next command recovers"
        lines.append(f"Lock: {lock['operation']} by pid {lock['pid']} since {lock['since']} ({state})")
    return "\n".join(lines)


def events_json(ledger: Ledger, root: str, *, stack: str | None = None, failed_only: bool = False,
                operation: int | None = None) -> list[dict[str, Any]]:
    events = ledger.events(root=root, stack=stack, operation=operation)
    if failed_only:
        events = [e for e in events if e.status.endswith(FAILED_SUFFIX)]
    return [{"id": e.id, "operation": e.operation, "at": _time(e.at), "stack": e.stack, "resource": e.resource,
             "status": e.status, "reason": e.reason} for e in events]


def render_events(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No events."
    width = max(len(r["stack"]) for r in rows)
    return "\n".join(f"{r['at']}  #{r['operation'] or '-':<4} {r['stack']:<{width}}  {r['resource'] or '':<24} "
                     f"{r['status']:<28} {r['reason']}".rstrip() for r in rows)
