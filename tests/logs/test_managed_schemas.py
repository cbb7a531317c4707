"""Onca's managed schemas: every one has sample-based tests, and they all pass."""

from __future__ import annotations

from collections import Counter

import yaml

from onca.logs.registry import SchemaRegistry, managed_schema_dir
from onca.logs.schema_tests import find_test_files, run_schema_tests

REQUIRED = {"AWS.CloudTrail", "AWS.VPCFlow", "AWS.S3ServerAccess", "AWS.ALB", "AWS.GuardDuty", "Okta.SystemLog",
            "GitHub.Audit", "GCP.AuditLog", "Zeek.Conn", "Zeek.DNS", "Zeek.HTTP", "Zeek.SSL", "Suricata.EVE",
            "Syslog.RFC3164", "Syslog.RFC5424", "Apache.AccessCommon", "Apache.AccessCombined", "Nginx.Access",
            "Osquery.Differential", "Onca.Audit"}


def test_every_managed_schema_is_shipped_and_its_samples_pass() -> None:
    registry = SchemaRegistry.load()
    assert set(registry.names()) >= REQUIRED
    result = run_schema_tests(managed_schema_dir())
    assert result.ok, [(case.log_type, case.name, case.message[:300]) for case in result.failed] + result.invalid
    positive: Counter[str] = Counter()
    malformed: Counter[str] = Counter()
    for path in find_test_files(managed_schema_dir()):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            (malformed if doc.get("quarantined") else positive)[doc["logType"]] += 1
    for name in REQUIRED:
        assert positive[name] >= 2, f"{name} needs realistic positive samples with expected rows"
        assert malformed[name] >= 1, f"{name} needs a malformed sample"
