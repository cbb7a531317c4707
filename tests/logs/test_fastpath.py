"""The columnar fast path gives exactly the Python path's rows, and hands back what it cannot do exactly."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
import yaml

from onca.lake.writer import to_arrow
from onca.logs import pipeline, readers
from onca.logs.fastpath import FastPath
from onca.logs.model import LineBlock, ParseError, RawRecord, Source
from onca.logs.pipeline import ingest
from onca.logs.readers import ReadReport, read_records
from onca.logs.registry import SchemaRegistry
from onca.logs.schema import LogSchema, parse_schema

SOURCE = Source(id="src-1", label="fast source", log_types=["AWS.CloudTrail"])
PARSE_TIME = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _event(i: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{i}:ci",
                         "arn": f"arn:aws:sts::123456789012:assumed-role/Deploy/i-0abc1234def56789{i % 10}",
                         "accountId": "123456789012", "accessKeyId": f"ASIAEXAMPLE{i:05d}",
                         "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                              "arn": "arn:aws:iam::123456789012:role/Deploy",
                                                              "accountId": "123456789012", "userName": "Deploy"},
                                            "webIdFederationData": {},
                                            "attributes": {"creationDate": "2024-05-01T11:59:00Z",
                                                           "mfaAuthenticated": "false"}}},
        "eventTime": f"2024-05-01T{(i // 60) % 24:02d}:{i % 60:02d}:07Z",
        "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "eu-west-1",
        "sourceIPAddress": f"10.0.{i % 7}.{i % 200}", "userAgent": "aws-cli/2.15 Python/3.11",
        "requestParameters": {"bucketName": "logs-ü", "key": f"k/{i}.gz", "size": 1.5, "n": i},
        "responseElements": None, "requestID": f"REQ{i:08d}", "eventID": f"00000000-0000-0000-0000-{i:012d}",
        "readOnly": True,
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::logs/k/{i}.gz"},
                      {"accountId": "210987654321", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::logs"}],
        "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": "123456789012",
        "eventCategory": "Data", "tlsDetails": {"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": "S3.Example.com"},
        "extraUnknownField": {"ignored": True},
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _DROP}


_DROP: Any = object()

# Shapes the fast path must reproduce (empty objects, nulls, offsets, fractions) or hand back (drift, refusals).
_SPECIAL: list[Any] = [
    _event(1000, userIdentity={}, tlsDetails={"unknown": 1}),  # objects with no known field are null
    _event(1001, userIdentity={"sessionContext": {"attributes": {}}}, resources=[{}, None, {"type": ""}]),
    _event(1002, eventTime="2024-05-01T10:00:00.123456789+02:00", resources=[]),
    _event(1003, eventTime="2024-05-01 10:00:00", sourceIPAddress="", requestParameters="text value"),
    _event(1004, readOnly="True"),  # text in a boolean: the Python path converts it
    _event(1005, sessionCredentialFromConsole=True),  # a boolean in a string field
    _event(1006, eventTime="yesterday"),  # required, unparseable: quarantined
    _event(1007, eventTime=""),  # required, empty: quarantined
    _event(1008, eventName=_DROP),  # required, missing: quarantined
    _event(1009, resources="arn:aws:s3:::not-a-list"),  # drift: the row lands with p_nonconforming
    _event(1010, userIdentity={"type": "Root", "onBehalfOf": {"userId": "u-1", "identityStoreArn": "arn:x"}},
           addendum={"reason": "DELIVERY_DELAY"}),
    _event(1011, userIdentity="root"),  # not an object: drift
    [1, 2, 3],  # not an object: quarantined
    "not json at all {",
]


def _lines() -> list[bytes]:
    lines = [json.dumps(_event(i)).encode() for i in range(300)]
    for offset, special in enumerate(_SPECIAL):
        line = special.encode() if isinstance(special, str) else json.dumps(special, ensure_ascii=False).encode()
        lines.insert(17 * offset + 5, line)
    return lines


@pytest.fixture(scope="module")
def cloudtrail() -> LogSchema:
    return SchemaRegistry.load().get("AWS.CloudTrail")


def _python_rows(schema: LogSchema, records: list[RawRecord]) -> tuple[list[dict[str, Any]], int]:
    parser, rows, refused = schema.new_parser(), [], 0
    for record in records:
        try:
            row = schema.normalize_record(parser, record, source=SOURCE, parse_time=PARSE_TIME)
        except ParseError:
            refused += 1
            continue
        if row is not None:
            rows.append(row)
    return rows, refused


def _by_row_id(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, [("p_row_id", "ascending")]))


def test_fast_rows_equal_python_rows(cloudtrail: LogSchema) -> None:
    records = [RawRecord(line, "/logs/ct.ndjson", i) for i, line in enumerate(_lines())]
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    table, slow = fast.convert(records)
    assert table is not None
    # Everything the fast path gave back is exactly the odd records, and nothing else.
    assert 8 <= len(slow) <= len(_SPECIAL)
    assert table.num_rows + len(slow) == len(records)
    slow_rows, refused = _python_rows(cloudtrail, slow)
    combined = pa.concat_tables([table, to_arrow(slow_rows, cloudtrail.arrow_schema())])
    expected_rows, expected_refused = _python_rows(cloudtrail, records)
    expected = to_arrow(expected_rows, cloudtrail.arrow_schema())
    assert refused == expected_refused == 5
    assert combined.schema.equals(expected.schema)
    got, want = _by_row_id(combined), _by_row_id(expected)
    for name in want.column_names:
        assert got.column(name).combine_chunks().equals(want.column(name).combine_chunks()), name
    # The fast rows themselves carry indicators and no drift.
    assert table.column("p_nonconforming").null_count == table.num_rows
    assert table.column("p_any_aws_instance_ids").null_count < table.num_rows


def _assert_same_as_python(schema: LogSchema, records: list[RawRecord], table: pa.Table | None,
                           slow: list[RawRecord]) -> None:
    slow_rows, _ = _python_rows(schema, slow)
    parts = ([table] if table is not None else []) + [to_arrow(slow_rows, schema.arrow_schema())]
    expected_rows, _ = _python_rows(schema, records)
    got, want = _by_row_id(pa.concat_tables(parts)), _by_row_id(to_arrow(expected_rows, schema.arrow_schema()))
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        assert got.column(name).combine_chunks().equals(want.column(name).combine_chunks()), name


def test_text_route_reads_clean_batches_exactly(cloudtrail: LogSchema) -> None:
    """Records still as text go through Arrow's JSON reader; json fields keep exactly the Python path's text."""
    tricky = [
        {"policy": "{\"Version\": \"2012-10-17\"}", "path": "a\\b/c", "note": "caf\u00e9 \u2603 \U0001F600"},
        {"size": 1.50, "ratio": 1e3, "tiny": -0.0, "list": [1, 2.5, None, True, {"k": []}]},
        {"big": 18446744073709551615, "neg": -9223372036854775808}, {"huge": 2**70},
        {}, [], "text", 7, None,
    ]
    events = [_event(i, requestParameters=tricky[i % len(tricky)],
                     userIdentity={"type": "Root", "onBehalfOf": {"userId": f"u-{i}"},
                                   "sessionContext": {"webIdFederationData": {"federatedProvider": "x" * (i % 3)}}})
              for i in range(160)]
    lines = [json.dumps(e, ensure_ascii=i % 2 == 0).encode() for i, e in enumerate(events)]
    lines.insert(40, b'{"eventTime": "2024-05-01T00:00:00Z", "eventName": "X", "requestParameters": {"n": 1e999}}')
    lines.insert(80, b'{"eventTime": "2024-05-01T00:00:00Z",\n "eventName": "SpansTwoLines"}')
    records = [RawRecord(line, "/logs/text.ndjson", i) for i, line in enumerate(lines)]
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    table, slow = fast.convert(records)
    # Every event is read as text but those holding 2**70 (orjson refuses it, so both paths do); the two
    # hand-written records lack required fields (the one spanning two lines is not even offered to Arrow) and
    # take the Python path, which quarantines them.
    huge = sum(1 for e in events if e["requestParameters"] == {"huge": 2**70})
    assert fast.routes["text"] == len(events) - huge and fast.routes["python"] == huge + 2
    _assert_same_as_python(cloudtrail, records, table, slow)


def test_a_misfit_costs_a_few_records_not_the_batch(cloudtrail: LogSchema) -> None:
    lines = [json.dumps(_event(i)).encode() for i in range(1200)]
    lines[700] = json.dumps(_event(700, eventName=12345)).encode()  # a number in a string field
    records = [RawRecord(line, "/logs/misfit.ndjson", i) for i, line in enumerate(lines)]
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    table, slow = fast.convert(records)
    # Its block of 500 is halved until the misfit's block of 4 (one more Arrow read a halving): the others stay.
    assert fast.routes["text"] == 1196
    assert fast.routes["dicts"] == 3 and [r.position for r in slow] == [700]
    _assert_same_as_python(cloudtrail, records, table, slow)


def test_records_already_decoded_and_refusals(cloudtrail: LogSchema) -> None:
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    records = [RawRecord(b"", "a.json", 0, value=_event(1)), RawRecord(b"[]", "a.json", 1),
               RawRecord(b"", "a.json", 2, value="text")]
    table, slow = fast.convert(records)
    assert table is not None and table.num_rows == 1
    assert [r.position for r in slow] == [1, 2]
    assert fast.convert([records[1]]) == (None, [records[1]])


def test_schemas_it_cannot_model_keep_the_python_path() -> None:
    text = "version: 0\nschema: Custom.Tee\n"
    csv = parse_schema(text + "parser:\n  csv:\n    hasHeader: true\nfields:\n  - {name: a, type: string}\n")
    json_in_array = parse_schema(text + "fields:\n  - name: a\n    type: array\n    element: {type: json}\n")
    validated = parse_schema(text + "fields:\n  - name: a\n    type: string\n    validate: {allow: [x]}\n")
    for schema in (csv, json_in_array, validated):
        assert FastPath.compile(schema, SOURCE, PARSE_TIME) is None
    numbers = parse_schema(text + "fields:\n  - {name: i, type: smallint}\n  - {name: f, type: float}\n"
                                  "  - {name: t, type: timestamp, timeFormat: rfc3339, isEventTime: true}\n")
    fast = FastPath.compile(numbers, SOURCE, PARSE_TIME)
    assert fast is not None
    events = [{"i": 5, "f": 2}, {"i": 70000}, {"i": 1.5}, {"f": True}, {"f": 2**60}, {"t": "2024-01-01T00:00:00Z"},
              {"i": None, "f": 0.25}]
    records = [RawRecord(json.dumps(e).encode(), "n.json", i) for i, e in enumerate(events)]
    table, slow = fast.convert(records)
    assert table is not None
    assert [r.position for r in slow] == [1, 2, 3, 4]
    rows, _ = _python_rows(numbers, [records[i] for i in (0, 5, 6)])
    assert _by_row_id(table).equals(_by_row_id(to_arrow(rows, numbers.arrow_schema())))


SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "onca" / "content" / "schemas"


def _sample_lines(log_type: str) -> list[bytes]:
    """The inputs of a managed schema's test cases (good and malformed), one JSON text each."""
    lines = []
    for file in sorted(SCHEMAS.rglob("*_tests.yml")):
        for case in yaml.safe_load_all(file.read_text()):
            if case and case["logType"] == log_type:
                raw = case["input"]
                lines.append(raw.encode() if isinstance(raw, str) else json.dumps(raw).encode())
    return lines


def _on_every_route(schema: LogSchema, lines: list[bytes]) -> dict[str, pa.Table | None]:
    """Convert `lines` as text records, as one block and as records a reader decoded: each route must give exactly
    the Python path's rows (and hand back exactly what it quarantines or drifts). Returns each route's table."""
    texts = [RawRecord(line, "/logs/text", i) for i, line in enumerate(lines)]
    block = LineBlock(b"\n".join(lines), "/logs/block", 0, len(lines))
    decoded = []
    for record in texts:
        try:  # decoded as readers decode
            decoded.append(RawRecord(record.data, "/logs/decoded", record.position, orjson.loads(record.data)))
        except orjson.JSONDecodeError:
            decoded.append(RawRecord(record.data, "/logs/decoded", record.position))
    tables = {}
    for route, items, records in (("text", texts, texts), ("block", [block], block.records()),
                                  ("dict", decoded, decoded)):
        fast = FastPath.compile(schema, SOURCE, PARSE_TIME)
        assert fast is not None
        table, slow = fast.convert(items)
        _assert_same_as_python(schema, records, table, slow)
        tables[route] = table
    return tables


@pytest.mark.parametrize("log_type", ["AWS.CloudTrail", "Onca.Audit", "GitHub.Audit", "Osquery.Differential",
                                      "Suricata.EVE", "Okta.SystemLog", "GCP.AuditLog", "AWS.GuardDuty"])
def test_every_fast_schema_gives_the_python_rows_for_its_samples(log_type: str) -> None:
    """Each managed schema the fast path models: its test inputs, as text, as a block and already decoded, give
    exactly the Python path's rows (and hand back exactly what the Python path quarantines or drifts)."""
    schema = SchemaRegistry.load().get(log_type)
    lines = [line for line in _sample_lines(log_type) if b"\n" not in line] * 3  # repeats: cached values too
    assert len(lines) >= 6
    tables = _on_every_route(schema, lines)
    for route in ("text", "block"):  # (decoded events of schemas with json or arrays inside arrays: Python path)
        table = tables[route]
        assert table is not None and table.num_rows >= len(lines) // 3


def test_numeric_timestamps_parse_as_the_python_path_parses_them() -> None:
    """unix, unix_ms, unix_us and unix_ns fields: ints and fractions are read in bulk; numeric text, booleans, floats
    beyond the exact range and nanosecond floats are handed back, and the rows come out the same either way."""
    schema = parse_schema("version: 0\nschema: Custom.Times\nfields:\n"
                          "  - {name: s, type: timestamp, timeFormat: unix, isEventTime: true}\n"
                          "  - {name: ms, type: timestamp, timeFormat: unix_ms}\n"
                          "  - {name: us, type: timestamp, timeFormat: unix_us}\n"
                          "  - {name: ns, type: timestamp, timeFormat: unix_ns}\n"
                          "  - name: o\n    type: object\n    fields:\n"
                          "      - {name: t, type: timestamp, timeFormat: '%d/%b/%Y:%H:%M:%S %z'}\n")
    values: list[dict[str, Any]] = [
        {"s": 1714557600, "ms": 1714557600123, "ns": 1714557600123456789, "o": {"t": "01/May/2024:10:00:00 +0200"}},
        {"s": 1714557600.123456, "ms": 1714557600123.5, "ns": 5},
        {"us": 2**53 + 1}, {"us": -(2**53) - 1},  # read by Arrow as +-2.0**53: only the int parses exactly
        {"s": 1714557600}, {"s": 1714557600.0}, {"s": -1.5}, {"s": 0},
        {"s": "1714557600"}, {"s": ""}, {"s": True}, {"s": 2**60}, {"s": 1e300}, {"ms": 2**53 + 1},
        {"ns": 1714557600123456789.0}, {"ns": "12"}, {"o": {"t": "yesterday"}}, {"o": {"t": ""}}, {"o": {"t": 5}},
        {"s": 1714557600, "o": {"t": "01/May/2024:10:00:00 +0200"}},
    ]
    tables = _on_every_route(schema, [json.dumps(v).encode() for v in values])
    assert all(table is not None and table.num_rows >= 6 for table in tables.values())


def test_numbers_inside_arrays_are_exactly_the_python_paths() -> None:
    """Ints, smallints and floats inside arrays: read in bulk, with what pa.array would coerce (1.0 as an int, true
    as a float, 2**60 as a float) or refuse (a smallint out of range, text) handed back on every route."""
    schema = parse_schema("version: 0\nschema: Custom.Arrays\nfields:\n"
                          "  - {name: t, type: timestamp, timeFormat: rfc3339, isEventTime: true}\n"
                          "  - {name: vlan, type: array, element: {type: int}}\n"
                          "  - {name: small, type: array, element: {type: smallint}}\n"
                          "  - name: hops\n    type: array\n    element:\n      type: object\n      fields:\n"
                          "        - {name: ip, type: string, indicators: [ip]}\n"
                          "        - {name: lat, type: float}\n")
    values: list[dict[str, Any]] = [
        {"t": "2024-05-01T10:00:00Z", "vlan": [1, 2, 3], "small": [7, -7], "hops": [{"ip": "10.0.0.1", "lat": 1.5}]},
        {"vlan": [], "hops": [{"lat": 2}, {}, None, {"ip": "10.0.0.2"}]}, {"vlan": None, "small": None},
        {"vlan": [1.0]}, {"vlan": [True]}, {"vlan": ["5"]}, {"vlan": [2**63]}, {"small": [70000]},
        {"hops": [{"lat": True}]}, {"hops": [{"lat": 2**60}]}, {"hops": [{"lat": "1.5"}]}, {"vlan": 5},
        {"hops": [{"lat": 9007199254740993}]}, {"vlan": [None, 4]},
    ]
    tables = _on_every_route(schema, [json.dumps(v).encode() for v in values] * 2)
    assert all(table is not None and table.num_rows >= 6 for table in tables.values())


def test_json_fields_inside_arrays_line_up_with_their_elements() -> None:
    """json fields of objects inside arrays (Okta's target[].detailEntry, GCP's authorizationInfo[]...) are
    decoded per element, in the order of Arrow's elements, whatever nulls, empty and missing arrays come between;
    a value orjson cannot write back sends just its row to the Python path."""
    schema = parse_schema("version: 0\nschema: Custom.Targets\nfields:\n"
                          "  - {name: t, type: timestamp, timeFormat: rfc3339, isEventTime: true}\n"
                          "  - {name: top, type: json}\n"
                          "  - name: target\n    type: array\n    element:\n      type: object\n      fields:\n"
                          "        - {name: id, type: string}\n        - {name: detail, type: json}\n"
                          "        - name: inner\n          type: object\n          fields:\n"
                          "            - {name: extra, type: json}\n"
                          "  - name: o\n    type: object\n    fields:\n"
                          "      - name: auth\n        type: array\n        element:\n          type: object\n"
                          "          fields:\n            - {name: attrs, type: json}\n")
    values: list[Any] = [
        {"t": "2024-05-01T10:00:00Z", "top": {"a": 1},
         "target": [{"id": "a", "detail": {"k": [1, 2]}}, {"id": "b"}, None, {"detail": "text", "inner": {"extra": 5}}],
         "o": {"auth": [{"attrs": {"x": None}}, {}]}},
        {"target": []}, {"target": None}, {}, {"o": {"auth": None}}, {"o": {}},
        {"target": [{"detail": {"n": 1.5, "s": "é"}}, {"detail": [None, True]}], "o": {"auth": [{"attrs": 0}]}},
        {"target": [{"detail": 2**70}]}, {"target": [{"id": "c", "detail": {"big": -(2**70)}}, {"detail": 1}]},
        {"target": ["not an object"]}, {"target": "not an array"},
    ]
    # A repeated key: Arrow refuses it, the Python path decides.
    lines = [json.dumps(values[0]).encode()] * 8 + [json.dumps(v).encode() for v in values] * 2 + \
        [b'{"target": [{"detail": 1, "detail": 2}]}']
    tables = _on_every_route(schema, lines)
    for route in ("text", "block"):
        table = tables[route]
        assert table is not None and table.num_rows >= 20


def test_arrays_inside_arrays_are_read_in_bulk() -> None:
    """GuardDuty's networkInterfaces[].ipv6Addresses: lists inside lists of objects, with indicators, read by
    Arrow on the text route; a string where the inner list belongs is refused there and, since pa.array would read
    it as a list of characters, decoded records of such schemas take the Python path."""
    schema = parse_schema("version: 0\nschema: Custom.Nested\nfields:\n"
                          "  - name: nics\n    type: array\n    element:\n      type: object\n      fields:\n"
                          "        - {name: id, type: string}\n"
                          "        - name: ips\n          type: array\n"
                          "          element: {type: string, indicators: [ip]}\n"
                          "        - {name: groups, type: json}\n")
    values: list[Any] = [
        {"nics": [{"id": "eni-1", "ips": ["10.0.0.1", "10.0.0.2"], "groups": [{"id": "sg-1"}]},
                  {"id": "eni-2", "ips": []}, None, {"ips": [None, "2001:db8::1"]}]},
        {"nics": []}, {}, {"nics": [{"ips": None}]}, {"nics": [{"ips": ["10.0.0.3"], "groups": 2**70}]},
        {"nics": [{"ips": "10.0.0.4"}]}, {"nics": [{"ips": [["10.0.0.5"]]}]}, {"nics": [{"ips": [5]}]},
    ]
    tables = _on_every_route(schema, [json.dumps(v).encode() for v in values] * 2)
    for route in ("text", "block"):
        table = tables[route]
        assert table is not None and table.num_rows >= 8
        assert table.column("p_any_ip_addresses").to_pylist()[0] == ["10.0.0.1", "10.0.0.2", "2001:db8::1"]


def test_ingest_uses_the_fast_path_and_conserves(tmp_path: Path, cloudtrail: LogSchema) -> None:
    lines = _lines()
    log = tmp_path / "ct.ndjson"
    log.write_bytes(b"\n".join(lines) + b"\n")
    registry = SchemaRegistry.load()
    summary = ingest([str(log)], lake=tmp_path / "lake", registry=registry, log_types=["AWS.CloudTrail"],
                     source=SOURCE)
    records = list(read_records(log, origin=str(log), report=ReadReport()))
    rows, refused = _python_rows(cloudtrail, records)
    assert summary.conserved
    assert summary.records == len(records) >= len(lines)
    assert summary.quarantined == refused >= 5
    stored = ds.dataset(tmp_path / "lake" / "aws_cloudtrail", format="parquet", partitioning="hive").to_table()
    stored = stored.select(cloudtrail.arrow_schema().names)
    expected = to_arrow(rows, cloudtrail.arrow_schema())
    got, want = _by_row_id(stored), _by_row_id(expected)
    assert got.num_rows == want.num_rows == summary.events
    for name in want.column_names:
        if name != "p_parse_time":  # ingest stamps its own parse time
            assert got.column(name).combine_chunks().equals(want.column(name).combine_chunks()), name
    quarantine = ds.dataset(tmp_path / "lake" / "quarantine", format="parquet", partitioning="hive").to_table()
    assert quarantine.num_rows == refused


def test_blocks_give_exactly_the_python_rows(tmp_path: Path, cloudtrail: LogSchema) -> None:
    """Lines read as blocks (never split into per-line objects) give the Python path's rows, row ids included;
    a block holding an odd record hands back exactly the odd records; invalid UTF-8 that only an unknown field
    holds (which Arrow and msgspec skip unchecked) is still refused, as orjson refuses it on the Python path."""
    lines = _lines()
    lines.insert(123, json.dumps(_event(5000)).encode()[:-1] + b', "unknown": "caf\xe9"}')
    log = tmp_path / "ct.ndjson"
    log.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read_records(log, origin=str(log), report=ReadReport(), blocks=True))
    assert any(isinstance(item, LineBlock) for item in items)
    records = [r for item in items for r in (item.records() if isinstance(item, LineBlock) else [item])]
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    table, slow = fast.convert(items)
    _assert_same_as_python(cloudtrail, records, table, slow)
    assert 123 in [r.position for r in slow]
    clean = [json.dumps(_event(i)).encode() for i in range(2000)]
    log.write_bytes(b"\n".join(clean))
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    items = list(read_records(log, origin=str(log), report=ReadReport(), blocks=True))
    table, slow = fast.convert(items)
    # The first line was decoded when the file's shape was sniffed; the last one, with no newline after it,
    # is only known to be complete at the end of the file: both come as records, the rest as blocks.
    assert slow == [] and fast.routes == {"blocks": 1998, "dicts": 1, "text": 1, "python": 0}
    records = [r for item in items for r in (item.records() if isinstance(item, LineBlock) else [item])]
    _assert_same_as_python(cloudtrail, records, table, slow)


def test_s3_envelopes_are_read_as_blocks_with_exactly_the_python_rows(tmp_path: Path, cloudtrail: LogSchema) -> None:
    """A gzip'd `{"Records": [...]}` file, as S3 delivers CloudTrail, goes through the block route whole: the
    same rows as the Python path, row ids included. An element that does not decode (invalid UTF-8) is
    quarantined alone; before, it made the whole file one quarantined record."""
    elements = [json.dumps(e, ensure_ascii=False).encode() for e in [*map(_event, range(400)), *_SPECIAL[:-1]]]
    elements.insert(250, b'{"eventName":"caf\xe9"}')
    log = tmp_path / "123456789012_CloudTrail_eu-west-1_20240501T1000Z_x.json.gz"
    log.write_bytes(gzip.compress(b'{"Records":[' + b",".join(elements) + b"]}"))
    items = list(read_records(log, origin=str(log), report=ReadReport(), blocks=True))
    assert [(type(item), item.count) for item in items] == [(LineBlock, len(elements))]  # type: ignore[union-attr]
    records = items[0].records()  # type: ignore[union-attr]
    assert records == list(read_records(log, origin=str(log), report=ReadReport()))
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    table, slow = fast.convert(items)
    _assert_same_as_python(cloudtrail, records, table, slow)
    assert fast.routes["python"] == len(slow) and 250 in [r.position for r in slow]
    assert fast.routes["blocks"] + fast.routes["text"] + fast.routes["dicts"] + len(slow) == len(elements)
    summary = ingest([str(log)], lake=tmp_path / "lake", registry=SchemaRegistry.load(),
                     log_types=["AWS.CloudTrail"], source=SOURCE)
    _, refused = _python_rows(cloudtrail, records)
    assert summary.conserved and summary.records == len(elements) and summary.quarantined == refused
    quarantine = ds.dataset(tmp_path / "lake" / "quarantine", format="parquet", partitioning="hive").to_table()
    assert b'{"eventName":"caf\xe9"}' in quarantine.column("raw").to_pylist()


def test_a_refused_line_costs_its_block_not_the_batch(tmp_path: Path, cloudtrail: LogSchema,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CHUNK", 64 << 10)
    lines = [json.dumps(_event(i)).encode() for i in range(1500)]
    lines[400] = json.dumps(_event(400, eventName=12345)).encode()  # a number in a string field: Arrow refuses
    lines[1100] = b'{"eventName": "X", "eventName": "Y"}'  # a repeated key: Arrow refuses
    log = tmp_path / "ct.ndjson"
    log.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read_records(log, origin=str(log), report=ReadReport(), blocks=True))
    blocks = [item for item in items if isinstance(item, LineBlock)]
    assert len(blocks) > 20
    fast = FastPath.compile(cloudtrail, SOURCE, PARSE_TIME)
    assert fast is not None
    table, slow = fast.convert(items)
    refused = [b for b in blocks if any(b.position <= line < b.position + b.count for line in (400, 1100))]
    assert fast.routes["blocks"] == sum(b.count for b in blocks) - sum(b.count for b in refused)
    assert [r.position for r in slow] == [400, 1100]
    records = [r for item in items for r in (item.records() if isinstance(item, LineBlock) else [item])]
    _assert_same_as_python(cloudtrail, records, table, slow)


def test_input_spread_over_many_hours_makes_one_file_per_hour(tmp_path: Path, cloudtrail: LogSchema,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch touches all 40 hours; rows are held by partition across batches, so each hour gets one file
    (not one per batch), and every record lands once."""
    monkeypatch.setattr(pipeline, "BATCH_RECORDS", 500)
    events = [_event(i, eventTime=f"2024-05-{1 + (i * 7) % 40 // 24:02d}T{(i * 7) % 40 % 24:02d}:00:00Z")
              for i in range(3000)]
    log = tmp_path / "spread.ndjson"
    log.write_bytes(b"\n".join(json.dumps(e).encode() for e in events) + b"\n")
    summary = ingest([str(log)], lake=tmp_path / "lake", registry=SchemaRegistry.load(), log_types=["AWS.CloudTrail"],
                     source=SOURCE)
    assert summary.conserved and summary.events == 3000
    files = list((tmp_path / "lake" / "aws_cloudtrail").rglob("*.parquet"))
    assert len(files) == 40
    stored = ds.dataset(tmp_path / "lake" / "aws_cloudtrail", format="parquet", partitioning="hive").to_table()
    assert sorted(stored.column("p_row_id").to_pylist()) == sorted(set(stored.column("p_row_id").to_pylist()))
    assert stored.num_rows == 3000
