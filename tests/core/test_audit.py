"""Onca's own audit log: one JSON line per record in a daily file, and a row in audit_log."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.core import audit
from onca.store.models import AuditLog


def test_record_appends_a_line(home: Path) -> None:
    at = datetime(2024, 6, 1, 23, 59, 59, 123456, tzinfo=UTC)
    entry = audit.record(home, "admin@example.com", "role.granted", "ops", {"role": "Operations"},
                         source_ip="198.51.100.7", at=at)
    audit.record(home, "anonymous", "user.login", "admin@example.com", {"reason": "bad password"},
                 outcome="failure", at=at)
    path = home / "audit" / "audit-2024-06-01.ndjson"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == entry == {
        "at": "2024-06-01T23:59:59.123Z", "actor": "admin@example.com", "action": "role.granted", "target": "ops",
        "details": {"role": "Operations"}, "outcome": "success", "source_ip": "198.51.100.7"}
    assert lines[1]["outcome"] == "failure" and "source_ip" not in lines[1]
    assert list(audit.read(home)) == lines


def test_files_roll_over_by_utc_day(home: Path) -> None:
    audit.record(home, "a", "x", "t", at=datetime(2024, 6, 1, 12, tzinfo=UTC))
    audit.record(home, "a", "x", "t", at=datetime(2024, 6, 2, 0, 30, tzinfo=UTC))
    assert sorted(p.name for p in (home / "audit").iterdir()) == ["audit-2024-06-01.ndjson",
                                                                  "audit-2024-06-02.ndjson"]


def test_record_with_session_inserts_a_row(home: Path, session: Session) -> None:
    audit.record(home, "admin@example.com", "token.created", "ci", {"role": "ReadOnly"}, outcome="success",
                 source_ip="192.0.2.1", session=session)
    row = session.scalars(select(AuditLog)).one()
    assert (row.actor, row.action, row.target) == ("admin@example.com", "token.created", "ci")
    assert row.details == {"role": "ReadOnly", "outcome": "success", "source_ip": "192.0.2.1"}
    assert row.at.tzinfo is not None


def test_bad_records_are_refused(home: Path) -> None:
    with pytest.raises(ValueError, match="outcome must be one of"):
        audit.record(home, "a", "x", "t", outcome="maybe")
    with pytest.raises(ValueError, match="needs an action"):
        audit.record(home, "a", "", "t")
    assert not (home / "audit").exists() or not any((home / "audit").iterdir())


def test_concurrent_writers_never_interleave(home: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from onca.core import audit\n"
        "for i in range(200): audit.record(Path(sys.argv[1]), 'w' + sys.argv[2], 'bulk', str(i), {'pad': 'x' * 500})\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(home), str(n)]) for n in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    records = list(audit.read(home))
    assert len(records) == 800
    assert {(r["actor"], r["target"]) for r in records} == {(f"w{n}", str(i)) for n in range(4) for i in range(200)}
