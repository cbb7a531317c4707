"""Normalisation: type conversion, time formats, required fields, drift into p_nonconforming, standard fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from onca.logs.model import ParseError, RawRecord, Source
from onca.logs.schema import LogSchema, parse_schema

SOURCE = Source(id="src-1", label="test source")
PARSE_TIME = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def schema_of(fields: str, extra: str = "") -> LogSchema:
    return parse_schema(f"version: 0\nschema: Custom.Test\n{extra}fields:\n{fields}")


def norm(schema: LogSchema, event: dict[str, Any], position: int = 0, origin: str = "f.json") -> dict[str, Any]:
    return schema.normalize(event, source=SOURCE, record=RawRecord(b"", origin, position), parse_time=PARSE_TIME)


ALL_TYPES = schema_of("""
  - {name: s, type: string}
  - {name: i, type: int}
  - {name: si, type: smallint}
  - {name: bi, type: bigint}
  - {name: f, type: float}
  - {name: b, type: boolean}
  - {name: t, type: timestamp, timeFormat: rfc3339}
  - {name: j, type: json}
  - name: o
    type: object
    fields:
      - {name: x, type: int}
      - {name: y, type: string}
  - name: a
    type: array
    element: {type: int}
""")


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("s", "text", "text"), ("s", 12, "12"), ("s", 1.5, "1.5"), ("s", True, "true"), ("s", "", ""),
    ("i", 42, 42), ("i", "42", 42), ("i", " -7 ", -7), ("i", 3.0, 3), ("i", "1e3", 1000),
    ("si", 32767, 32767), ("si", "-32768", -32768),
    ("bi", 9007199254740993, 9007199254740993), ("bi", "9223372036854775807", 9223372036854775807),
    ("f", 1, 1.0), ("f", "2.5", 2.5), ("f", 0.1, 0.1),
    ("b", True, True), ("b", "false", False), ("b", "T", True), ("b", "0", False), ("b", 1, True),
    ("t", "2024-05-14T08:15:02Z", datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("j", {"k": [1, 2]}, '{"k":[1,2]}'), ("j", "x", '"x"'), ("j", 5, "5"),
    ("o", {"x": "5", "y": "z", "unknown": 1}, {"x": 5, "y": "z"}),
    ("a", [1, "2", 3.0], [1, 2, 3]),
])
def test_conversions(field: str, value: Any, expected: Any) -> None:
    row = norm(ALL_TYPES, {field: value})
    assert row[field] == expected
    assert type(row[field]) is type(expected)
    assert row["p_nonconforming"] is None


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("s", {"a": 1}, "expected a string, got a JSON object"),
    ("i", "abc", "'abc' is not an integer"),
    ("i", 1.5, "1.5 is not an integer"),
    ("i", True, "expected an integer, got a JSON boolean"),
    ("si", 40000, "40000 is out of the smallint range -32768..32767"),
    ("bi", 2**63, "out of the bigint range"),
    ("f", "fast", "'fast' is not a number"),
    ("b", "yes", "'yes' is not true or false"),
    ("t", "yesterday", "'yesterday' is not an RFC 3339 timestamp"),
    ("o", [1, 2], "expected an object, got a JSON array"),
    ("a", {"k": 1}, "expected an array, got a JSON object"),
])
def test_values_that_do_not_fit_land_in_nonconforming(field: str, value: Any, reason: str) -> None:
    row = norm(ALL_TYPES, {field: value, "s" if field != "s" else "i": "1"})
    assert field not in row
    drift = json.loads(row["p_nonconforming"])
    assert drift[field]["value"] == value
    assert reason in drift[field]["reason"]


def test_nested_drift_keeps_the_rest_of_the_object_and_names_the_path() -> None:
    row = norm(ALL_TYPES, {"o": {"x": "five", "y": "kept"}, "a": [1, "two", 3]})
    assert row["o"] == {"y": "kept"}
    assert row["a"] == [1, None, 3]
    drift = json.loads(row["p_nonconforming"])
    assert drift == {"o.x": {"value": "five", "reason": "'five' is not an integer"},
                     "a[1]": {"value": "two", "reason": "'two' is not an integer"}}


def test_type_drift_within_one_file_lands_every_record() -> None:
    schema = schema_of("  - {name: tags, type: array, element: {type: string}}\n  - {name: id, type: string}")
    first = norm(schema, {"tags": ["a", "b"], "id": "1"}, 0)
    second = norm(schema, {"tags": {"a": "b"}, "id": "2"}, 1)
    assert first["tags"] == ["a", "b"] and first["p_nonconforming"] is None
    assert "tags" not in second and json.loads(second["p_nonconforming"])["tags"]["value"] == {"a": "b"}


def test_nulls_and_empty_text_are_absent() -> None:
    row = norm(ALL_TYPES, {"s": None, "i": "", "t": "", "o": {}, "f": None})
    assert not {"s", "i", "t", "o", "f"} & set(row)


@pytest.mark.parametrize(("time_format", "value", "expected"), [
    ("rfc3339", "2024-05-14T10:15:02.123456789+02:00", datetime(2024, 5, 14, 8, 15, 2, 123456, tzinfo=UTC)),
    ("rfc3339", "2024-05-14 08:15:02", datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("unix", 1715674502, datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("unix", "1715674502.25", datetime(2024, 5, 14, 8, 15, 2, 250000, tzinfo=UTC)),
    ("unix", 1715674502.5, datetime(2024, 5, 14, 8, 15, 2, 500000, tzinfo=UTC)),
    ("unix_ms", 1715674502123, datetime(2024, 5, 14, 8, 15, 2, 123000, tzinfo=UTC)),
    ("unix_us", "1715674502123456", datetime(2024, 5, 14, 8, 15, 2, 123456, tzinfo=UTC)),
    ("unix_ns", 1715674502123456789, datetime(2024, 5, 14, 8, 15, 2, 123456, tzinfo=UTC)),
    ("cloudflare", 1715674502000000000, datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("cloudflare", "2024-05-14T08:15:02Z", datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("'%d/%b/%Y:%H:%M:%S %z'", "14/May/2024:10:15:02 +0200", datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("'%Y-%m-%d %H:%M:%S'", "2024-05-14 08:15:02", datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("'layout=Jan _2 15:04:05 2006'", "May 14 08:15:02 2024", datetime(2024, 5, 14, 8, 15, 2, tzinfo=UTC)),
    ("'layout=2006-01-02T15:04:05.000000000Z07:00'", "2024-05-14T08:15:02.123456789Z",
     datetime(2024, 5, 14, 8, 15, 2, 123456, tzinfo=UTC)),
])
def test_time_formats(time_format: str, value: Any, expected: datetime) -> None:
    schema = schema_of(f"  - {{name: t, type: timestamp, timeFormat: {time_format}, isEventTime: true}}")
    row = norm(schema, {"t": value})
    assert row["t"] == expected
    assert row["t"].tzinfo is UTC
    assert row["p_event_time"] == expected


@pytest.mark.parametrize(("time_format", "value", "reason"), [
    ("unix", "soon", "is not a number of seconds"),
    ("unix_ms", [1], "expected a number of milliseconds, got a JSON array"),
    ("'%Y-%m-%d'", "14.05.2024", "does not match the time format '%Y-%m-%d'"),
])
def test_time_format_misfits(time_format: str, value: Any, reason: str) -> None:
    schema = schema_of(f"  - {{name: t, type: timestamp, timeFormat: {time_format}}}\n  - {{name: s, type: string}}")
    row = norm(schema, {"t": value, "s": "x"})
    assert reason in json.loads(row["p_nonconforming"])["t"]["reason"]


def test_event_time_is_the_first_non_empty_event_time_field_else_parse_time() -> None:
    schema = schema_of("""
  - {name: first, type: timestamp, timeFormat: unix, isEventTime: true}
  - name: nested
    type: object
    fields:
      - {name: second, type: timestamp, timeFormat: rfc3339, isEventTime: true}
  - {name: s, type: string}
""")
    assert norm(schema, {"first": 0, "nested": {"second": "2024-01-01T00:00:00Z"}})["p_event_time"] == \
        datetime(1970, 1, 1, tzinfo=UTC)
    assert norm(schema, {"nested": {"second": "2024-01-01T00:00:00Z"}})["p_event_time"] == \
        datetime(2024, 1, 1, tzinfo=UTC)
    assert norm(schema, {"s": "x"})["p_event_time"] == PARSE_TIME
    assert norm(schema, {"first": "bad", "s": "x"})["p_event_time"] == PARSE_TIME


def test_required_fields_refuse_the_record() -> None:
    schema = schema_of("""
  - {name: id, type: string, required: true}
  - {name: n, type: int, required: true}
  - name: who
    type: object
    fields:
      - {name: name, type: string, required: true}
""")
    with pytest.raises(ParseError, match="required field id is missing"):
        norm(schema, {"n": 1})
    with pytest.raises(ParseError, match="required field n: 'x' is not an integer"):
        norm(schema, {"id": "a", "n": "x"})
    with pytest.raises(ParseError, match=r"required field who.name is missing"):
        norm(schema, {"id": "a", "n": 1, "who": {"other": 1}})
    assert norm(schema, {"id": "a", "n": 1})["n"] == 1  # an absent optional object needs no required children


def test_validate_allow_and_deny_refuse_the_record() -> None:
    schema = schema_of("""
  - {name: action, type: string, validate: {allow: [ACCEPT, REJECT]}}
  - {name: user, type: string, validate: {deny: [root]}}
""")
    assert norm(schema, {"action": "ACCEPT"})["action"] == "ACCEPT"
    with pytest.raises(ParseError, match=r"field action: 'DROP' is not one of the allowed values \(ACCEPT, REJECT\)"):
        norm(schema, {"action": "DROP"})
    with pytest.raises(ParseError, match="field user: 'root' is a denied value"):
        norm(schema, {"user": "root"})


def test_standard_fields_and_indicators() -> None:
    schema = schema_of("""
  - {name: src, type: string, indicators: [ip]}
  - {name: dst, type: string, indicators: [ip]}
  - {name: arn, type: string, indicators: [aws_arn]}
  - {name: hosts, type: array, element: {type: string, indicators: [hostname]}}
  - name: who
    type: object
    fields:
      - {name: email, type: string, indicators: [email, username]}
""")
    row = norm(schema, {"src": "10.0.0.2", "dst": "10.0.0.1", "arn": "arn:aws:iam::123456789012:user/dana",
                        "hosts": ["b.example.com", "a.example.com", "10.0.0.1"],
                        "who": {"email": "dana@example.com"}}, position=7, origin="logs/a.json")
    assert row["p_log_type"] == "Custom.Test"
    assert row["p_parse_time"] == PARSE_TIME and row["p_event_time"] == PARSE_TIME
    assert row["p_source_id"] == "src-1" and row["p_source_label"] == "test source"
    assert row["p_any_ip_addresses"] == ["10.0.0.1", "10.0.0.2"]  # sorted, deduplicated
    assert row["p_any_domain_names"] == ["a.example.com", "b.example.com"]
    assert row["p_any_aws_arns"] == ["arn:aws:iam::123456789012:user/dana"]
    assert row["p_any_aws_account_ids"] == ["123456789012"]
    assert row["p_any_emails"] == ["dana@example.com"] and row["p_any_usernames"] == ["dana@example.com"]
    assert row["p_any_md5_hashes"] is None and row["p_any_trace_ids"] is None
    again = norm(schema, {"src": "1.1.1.1"}, position=7, origin="logs/a.json")
    assert again["p_row_id"] == row["p_row_id"] and len(row["p_row_id"]) == 32
    assert norm(schema, {}, position=8, origin="logs/a.json")["p_row_id"] != row["p_row_id"]
    assert norm(schema, {}, position=7, origin="logs/b.json")["p_row_id"] != row["p_row_id"]


def test_definitions_and_embedded_json() -> None:
    schema = schema_of("""
  - {name: actor, type: ref, target: Actor}
  - {name: data, type: object, isEmbeddedJSON: true, fields: [{name: k, type: int}]}
  - {name: raw, type: json, isEmbeddedJSON: true}
""", extra="""definitions:
  Actor:
    type: object
    fields:
      - {name: ip, type: string, indicators: [ip]}
""")
    row = norm(schema, {"actor": {"ip": "192.0.2.1"}, "data": '{"k": "7"}', "raw": '{"a": 1}'})
    assert row["actor"] == {"ip": "192.0.2.1"} and row["p_any_ip_addresses"] == ["192.0.2.1"]
    assert row["data"] == {"k": 7} and row["raw"] == '{"a": 1}'
    bad = norm(schema, {"data": "{nope", "actor": {"ip": "x"}})
    assert "embedded JSON text does not parse" in json.loads(bad["p_nonconforming"])["data"]["reason"]


def test_arrow_schema_and_table_name() -> None:
    schema = parse_schema("""
version: 0
schema: Custom.My.App
fields:
  - {name: s, type: string}
  - {name: i, type: int}
  - {name: si, type: smallint}
  - {name: f, type: float}
  - {name: b, type: boolean}
  - {name: t, type: timestamp, timeFormat: unix}
  - {name: j, type: json}
  - {name: o, type: object, fields: [{name: x, type: bigint}]}
  - {name: a, type: array, element: {type: string}}
""")
    arrow = schema.arrow_schema()
    assert schema.table_name == "custom_my_app"
    assert arrow.field("s").type == pa.string() and arrow.field("i").type == pa.int64()
    assert arrow.field("si").type == pa.int16() and arrow.field("f").type == pa.float64()
    assert arrow.field("b").type == pa.bool_() and arrow.field("j").type == pa.string()
    assert arrow.field("t").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("o").type == pa.struct([pa.field("x", pa.int64())])
    assert arrow.field("a").type == pa.list_(pa.string())
    assert arrow.field("p_event_time").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("p_any_ip_addresses").type == pa.list_(pa.string())
    assert arrow.field("p_nonconforming").type == pa.string()
    rows = [norm(schema, {"s": "a", "i": "1", "t": 5, "o": {"x": 2}, "a": ["q"], "b": "true"}),
            norm(schema, {"i": "oops", "o": [1]})]
    table = pa.Table.from_pylist(rows, schema=arrow)  # rows fit the declared columns, drift included
    assert table.num_rows == 2 and table.column("i").to_pylist() == [1, None]
