"""Rules see json fields decoded and timestamps as Panther prints them at any depth; the row is not changed."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from onca.logs.registry import SchemaRegistry
from onca.logs.schema import parse_schema
from onca.pipeline.rule_events import compile_plan, rule_event

SCHEMA = parse_schema("""
version: 0
schema: Custom.Nested
fields:
  - {name: at, type: timestamp, timeFormat: rfc3339, isEventTime: true}
  - {name: top, type: json}
  - name: payload
    type: object
    fields:
      - {name: request, type: json}
      - {name: name, type: string}
      - name: steps
        type: array
        element:
          type: object
          fields:
            - {name: when, type: timestamp, timeFormat: rfc3339}
            - {name: detail, type: json}
""")
WHEN = datetime(2024, 5, 1, 12, 0, 1, 5, tzinfo=UTC)


def test_json_and_timestamps_are_converted_at_every_depth_and_the_row_stays_as_it_was() -> None:
    row = {"at": WHEN, "top": '{"a": [1, 2]}', "p_log_type": "Custom.Nested", "p_any_ip_addresses": None,
           "payload": {"request": '{"allowed": [{"ports": ["22"]}]}', "name": "fw",
                       "steps": [{"when": WHEN, "detail": '"x"'}, {"when": None, "detail": None}]}}
    before = copy.deepcopy(row)
    event = rule_event(row, compile_plan(SCHEMA))
    assert row == before  # the lake's rule_matches tables keep json as text
    assert event["at"] == "2024-05-01 12:00:01.000005"
    assert event["top"] == {"a": [1, 2]}
    assert event["payload"]["request"] == {"allowed": [{"ports": ["22"]}]}
    assert event["payload"]["steps"] == [{"when": "2024-05-01 12:00:01.000005", "detail": "x"},
                                         {"when": None, "detail": None}]
    assert "p_any_ip_addresses" not in event


def test_gcp_audit_request_reaches_rules_as_an_object() -> None:
    schema = SchemaRegistry.load().get("GCP.AuditLog")
    plan = compile_plan(schema)
    event = rule_event({"protoPayload": {"request": '{"alloweds": [{"IPProtocol": "tcp"}]}'}}, plan)
    assert event["protoPayload"]["request"]["alloweds"][0]["IPProtocol"] == "tcp"
