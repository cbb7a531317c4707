"""`onca up --demo`: replay the sample events of Onca's own detections, so alerts appear within seconds.

The samples are the `Log` of every positive unit test of the shipped rules whose log type has a JSON
schema: real-shaped events that Onca's rules are known to alert on, spooled under a `demo` source. A rule
test's `Log` of a text format (access logs, syslog) is the parsed event, not a line the parser could read,
so those log types replay the raw lines of their schema's own tests instead (the cases that parse).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.detections.content import load_content
from onca.detections.yaml_dialect import ContentLoader
from onca.logs.registry import SchemaRegistry, managed_schema_dir
from onca.logs.schema_tests import find_test_files
from onca.pipeline.spool import Spool
from onca.store.models import Source

DEMO_SOURCE = "demo"


def sample_events(content_root: Path, registry: SchemaRegistry) -> dict[str, list[bytes]]:
    """{log type: records} from the positive tests of the rules under content_root (JSON log types) and the
    parsing cases of the managed schemas' tests (text log types).

    Unit-test events often leave out fields a real log always has (CloudTrail's eventID): those the
    schema requires are filled in, and the event time is now, so the demo alerts look like fresh ones.
    """
    known = {name for name in registry.names() if registry.get(name).parser_kind == "json"}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    samples: dict[str, list[bytes]] = defaultdict(list)
    text = {name for name in registry.names() if name not in known}
    for file in find_test_files(managed_schema_dir()):
        for case in yaml.load_all(file.read_bytes(), Loader=ContentLoader):
            if isinstance(case, dict) and case.get("logType") in text and "result" in case:
                samples[case["logType"]].append(str(case["input"]).encode())
    for item in load_content(content_root).of_type("rule"):
        for test in item.spec.get("Tests") or []:
            log = test.get("Log")
            log_type = (log or {}).get("p_log_type") or next(iter(item.spec.get("LogTypes") or []), None)
            if not (test.get("ExpectedResult") and isinstance(log, dict) and log_type in known):
                continue
            event = {k: v for k, v in log.items() if not k.startswith("p_")}
            for field in registry.get(log_type).fields:
                if field.get("type") == "timestamp" and field.get("timeFormat") == "rfc3339" and (
                        field.get("isEventTime") or (field.get("required") and field["name"] not in event)):
                    event[field["name"]] = now
                elif field.get("required") and field["name"] not in event and field.get("type") == "string":
                    event[field["name"]] = f"demo-{uuid.uuid4()}"
            samples[log_type].append(json.dumps(event).encode())
    return dict(samples)


def replay(session: Session, spool: Spool, content_root: Path, registry: SchemaRegistry) -> int:
    """Spool the samples, one demo source per log type (so each record has a single candidate)."""
    total = 0
    for log_type, events in sorted(sample_events(content_root, registry).items()):
        name = f"{DEMO_SOURCE}-{log_type.lower().replace('.', '-')}"
        if session.scalars(select(Source).where(Source.name == name)).first() is None:
            session.add(Source(name=name, kind="demo", log_types=[log_type], config={}, enabled=True))
            session.commit()
        spool.append(name, events)
        total += len(events)
    return total
