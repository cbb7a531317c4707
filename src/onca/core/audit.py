"""Onca's own audit log: who did what to Onca, kept where Onca can monitor it like any other log.

Each record is one JSON line in <home>/audit/audit-YYYY-MM-DD.ndjson (UTC day of the record), written
with a single O_APPEND write and fsync, so concurrent writers never interleave lines and a record that
was acknowledged survives a crash. With a database session the record also goes into audit_log, for
the console. The files are the log type `Onca.Audit`, which the onboard component registers as a
source with detections over it (src/onca/content/rules/onca_audit/).

Fields of Onca.Audit: at (RFC 3339, UTC), actor, action, target, details (object), outcome
(success | failure | denied), source_ip (optional).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_TYPE = "Onca.Audit"
AUDIT_DIR = "audit"
OUTCOMES = ("success", "failure", "denied")
DEPLOYER = "onca-deploy"  # the actor of changes the deployer makes

# The action vocabulary the shipped Onca.Audit detections read; other actions are recorded as given.
USER_LOGIN = "user.login"                      # outcome failure for a bad password; target = account
USER_CREATED = "user.created"                  # details: role
USER_INVITED = "user.invited"                  # details: expires_at, emailed
USER_INVITE_REDEEMED = "user.invite_redeemed"
USER_DISABLED = "user.disabled"
ROLE_GRANTED = "role.granted"                  # target = identity; details: role, source
ROLE_REVOKED = "role.revoked"                  # target = identity; details: role, source
ACCESS_DENIED = "access.denied"                # details: permission, reason
TOKEN_CREATED = "token.created"                # target = token name; details: role, expires_at
DEPLOYMENT_UPDATED = "deployment.updated"      # target = stack; details: from_version, to_version
DEPLOYMENT_PARAMETERS_CHANGED = "deployment.parameters_changed"  # details: changed (parameter names)
DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back"                # details: status, reason
# Any action done under an operator role carries details.actor_role (Support or Operations).


def audit_dir(home: Path) -> Path:
    return Path(home) / AUDIT_DIR


def _rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_record(
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    *,
    outcome: str = "success",
    source_ip: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if not action:
        raise ValueError("an audit record needs an action")
    record: dict[str, Any] = {
        "at": _rfc3339(at or datetime.now(UTC)),
        "actor": actor or "",
        "action": action,
        "target": target or "",
        "details": dict(details or {}),
        "outcome": outcome,
    }
    if source_ip:
        record["source_ip"] = source_ip
    return record


def record(
    home: Path,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    *,
    outcome: str = "success",
    source_ip: str | None = None,
    session: Any = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Append one Onca.Audit record (and insert it into audit_log when `session` is given); return it."""
    entry = make_record(actor, action, target, details, outcome=outcome, source_ip=source_ip, at=at)
    line = (json.dumps(entry, separators=(",", ":"), default=str, ensure_ascii=False) + "\n").encode("utf-8")
    directory = audit_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{entry['at'][:10]}.ndjson"
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:
        # Make the new file's directory entry durable too, not only its content.
        dir_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_descriptor)
        finally:
            os.close(dir_descriptor)
    if session is not None:
        _insert(session, entry)
    return entry


def _insert(session: Any, entry: Mapping[str, Any]) -> None:
    from onca.store.models import AuditLog

    # The table has no outcome/source_ip columns: they travel inside details, next to the caller's keys.
    details = dict(entry["details"])
    details.setdefault("outcome", entry["outcome"])
    if entry.get("source_ip"):
        details.setdefault("source_ip", entry["source_ip"])
    at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    session.add(AuditLog(at=at, actor=entry["actor"], action=entry["action"], target=entry["target"],
                         details=json.loads(json.dumps(details, default=str))))
    session.flush()


def read(home: Path) -> Iterator[dict[str, Any]]:
    """Every record in the audit files, oldest file first (a torn last line is skipped)."""
    for path in sorted(audit_dir(home).glob("audit-*.ndjson")):
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    yield json.loads(raw)
                except ValueError:
                    continue
