"""Hand-built rows following the row contract of onca.logs, and a small schema for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from onca.lake import writer as writer_module
from onca.lake.layout import STRINGS, TIMESTAMP

T0 = datetime(2025, 3, 1, 10, 15, tzinfo=UTC)

SCHEMA = pa.schema([
    ("eventName", pa.string()),
    ("sourceIPAddress", pa.string()),
    ("userIdentity", pa.struct([("type", pa.string()), ("userName", pa.string())])),
    ("bytes", pa.int64()),
    ("tags", pa.list_(pa.string())),
    ("p_log_type", pa.string()),
    ("p_event_time", TIMESTAMP),
    ("p_parse_time", TIMESTAMP),
    ("p_row_id", pa.string()),
    ("p_source_id", pa.string()),
    ("p_source_label", pa.string()),
    ("p_any_ip_addresses", STRINGS),
    ("p_any_usernames", STRINGS),
    ("p_any_domain_names", STRINGS),
    ("p_nonconforming", pa.string()),
])


def make_row(n: int, at: datetime = T0, *, ip: str = "10.0.0.1", user: str = "alice",
             log_type: str = "Test.Events", **extra: Any) -> dict[str, Any]:
    row = {
        "eventName": f"Call{n}",
        "sourceIPAddress": ip,
        "userIdentity": {"type": "IAMUser", "userName": user},
        "bytes": n,
        "tags": ["a", "b"],
        "p_log_type": log_type,
        "p_event_time": at,
        "p_parse_time": T0 + timedelta(days=1),
        "p_row_id": f"{log_type}-{n:06d}",
        "p_source_id": "src-1",
        "p_source_label": "test source",
        "p_any_ip_addresses": [ip],
        "p_any_usernames": [user],
        "p_any_domain_names": None,
        "p_nonconforming": None,
    }
    row.update(extra)
    return row


@pytest.fixture
def lake(tmp_path):
    return tmp_path / "lake"


@pytest.fixture(autouse=True)
def index_every_file(monkeypatch):
    """These tests' hand-built files hold a few rows: index them all, so the sidecars are what is tested
    (test_writer checks the default, which leaves small batch files unindexed)."""
    monkeypatch.setattr(writer_module, "SMALL_FILE_ROWS", 1)
