"""The classifier with small parsers of its own (the Parser protocol), fed by read_records over real files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from onca.logs.classifier import Classifier
from onca.logs.model import NOT_DECODED, ParseError, RawRecord, Source
from onca.logs.readers import ReadReport, read_records

SOURCE = Source(id="src-1", label="mixed bucket", log_types=["Test.Trail", "Test.Flow", "Test.Access"])


class TrailParser:
    """JSON objects with an eventName."""

    def __init__(self) -> None:
        self.calls = 0

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        self.calls += 1
        value = record.value
        if value is NOT_DECODED:
            try:
                value = orjson.loads(record.data)
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ParseError(f"a JSON {type(value).__name__}, not an object")
        if "eventName" not in value:
            raise ParseError("no eventName")
        return value


class FlowParser:
    """Space-separated flow lines, with a `version ...` header that is not an event."""

    FIELDS = ("version", "account", "src", "dst", "action")

    def __init__(self) -> None:
        self.calls = 0

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        self.calls += 1
        if record.data.startswith(b"version "):
            return None
        parts = record.data.split(b" ")
        if len(parts) != len(self.FIELDS) or not parts[0].isdigit():
            raise ParseError(f"expected {len(self.FIELDS)} space-separated fields, got {len(parts)}")
        return dict(zip(self.FIELDS, (p.decode() for p in parts), strict=True))


class AccessParser:
    LINE = re.compile(rb'^(\S+) - - \[([^\]]+)\] "(\S+) (\S+)')

    def __init__(self) -> None:
        self.calls = 0

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        self.calls += 1
        match = self.LINE.match(record.data)
        if match is None:
            raise ParseError("does not match the access log pattern")
        return {"ip": match[1].decode(), "method": match[3].decode()}


class BuggyParser:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        raise self.exc


class ListParser:
    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        return [1, 2]  # type: ignore[return-value]


def trail(i: int) -> bytes:
    return orjson.dumps({"eventName": "GetObject", "requestID": f"r{i}"})


def flow(i: int) -> bytes:
    return b"2 123456789012 10.0.0.%d 10.0.1.1 ACCEPT" % (i % 250)


def access(i: int) -> bytes:
    return b'192.0.2.%d - - [01/May/2024:10:00:00 +0000] "GET /index.html HTTP/1.1" 200 512' % (i % 250)


def record(data: bytes, position: int = 0) -> RawRecord:
    return RawRecord(data, "test.log", position)


def test_single_candidate_match_refusal_and_header() -> None:
    parser = FlowParser()
    classifier = Classifier({"Test.Flow": parser}, SOURCE)
    assert classifier.classify(record(flow(1))) == ("Test.Flow", {
        "version": "2", "account": "123456789012", "src": "10.0.0.1", "dst": "10.0.1.1", "action": "ACCEPT"})
    assert classifier.classify(record(b"version account src dst action")) is None
    assert classifier.last_quarantined is None  # a header: skipped, not quarantined
    garbage = record(b"\x00\xffnot a flow", 2)
    assert classifier.classify(garbage) is None
    (quarantined,) = classifier.take_quarantined()
    assert quarantined is classifier.last_quarantined
    assert quarantined.record is garbage and quarantined.source is SOURCE
    assert quarantined.reasons == {"Test.Flow": "expected 5 space-separated fields, got 3"}
    assert classifier.take_quarantined() == []
    assert classifier.stats() == {"Test.Flow": {"tried": 3, "matched": 1, "headers": 1, "failed": 1, "errors": 0}}
    assert classifier.counts() == {"records": 3, "events": 1, "headers": 1, "quarantined": 1}


def test_single_candidate_never_reorders(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sorting(*_: object) -> None:
        raise AssertionError("a single candidate has no order to keep")

    classifier = Classifier({"Test.Flow": FlowParser()})
    monkeypatch.setattr(classifier, "_promote", no_sorting)
    for i in range(50):
        classifier.classify(record(flow(i) if i % 3 else b"junk", i))
    assert classifier.counts()["events"] == 33


def test_quarantine_keeps_every_candidates_reason_and_survives_parser_bugs() -> None:
    classifier = Classifier({
        "Test.Trail": TrailParser(),
        "Test.Broken": BuggyParser(ValueError("unexpected token at 3")),
        "Test.Worse": BuggyParser(ZeroDivisionError()),
        "Test.Flow": FlowParser(),
        "Test.List": ListParser(),
    }, SOURCE)
    assert classifier.classify(record(b"42")) is None
    (quarantined,) = classifier.take_quarantined()
    assert quarantined.reasons == {
        "Test.Trail": "a JSON int, not an object",
        "Test.Broken": "ValueError: unexpected token at 3",
        "Test.Worse": "ZeroDivisionError",
        "Test.Flow": "expected 5 space-separated fields, got 1",
        "Test.List": "parser returned list, not a dict (an event) or None (not an event)",
    }
    stats = classifier.stats()
    assert stats["Test.Broken"] == {"tried": 1, "matched": 0, "headers": 0, "failed": 1, "errors": 1}
    assert stats["Test.List"]["errors"] == 1 and stats["Test.Trail"]["errors"] == 0
    # The bugs do not stop a record another parser accepts.
    assert classifier.classify(record(flow(3))) == ("Test.Flow", classifier.classify(record(flow(3)))[1])


def test_adaptive_order_follows_the_dominant_type() -> None:
    trail_parser, flow_parser = TrailParser(), FlowParser()
    classifier = Classifier({"Test.Trail": trail_parser, "Test.Flow": flow_parser})
    results = [classifier.classify(record(trail(i), i)) for i in range(100)]
    assert classifier.order == ["Test.Trail", "Test.Flow"] and flow_parser.calls == 0
    results += [classifier.classify(record(flow(i), i)) for i in range(100)]
    assert classifier.order == ["Test.Flow", "Test.Trail"]
    assert (trail_parser.calls, flow_parser.calls) == (101, 100)  # one miss when the type changed, then none
    results += [classifier.classify(record(trail(i), i)) for i in range(100)]
    assert classifier.order == ["Test.Trail", "Test.Flow"]
    assert (trail_parser.calls, flow_parser.calls) == (201, 101)
    assert [r[0] for r in results if r] == ["Test.Trail"] * 100 + ["Test.Flow"] * 100 + ["Test.Trail"] * 100
    assert classifier.stats() == {
        "Test.Trail": {"tried": 201, "matched": 200, "headers": 0, "failed": 1, "errors": 0},
        "Test.Flow": {"tried": 101, "matched": 100, "headers": 0, "failed": 1, "errors": 0},
    }


def test_failures_sink_a_parser_and_success_resets_it() -> None:
    classifier = Classifier({"Test.Trail": TrailParser(), "Test.Flow": FlowParser(), "Test.Access": AccessParser()})
    classifier.classify(record(access(1)))  # trail and flow fail (penalty 1 each), access wins and goes first
    assert classifier.order == ["Test.Access", "Test.Trail", "Test.Flow"]
    classifier.classify(record(flow(1)))  # access and trail fail: access 1, trail 2; flow wins
    assert classifier.order == ["Test.Flow", "Test.Access", "Test.Trail"]
    classifier.classify(record(b"matches nothing"))  # every one sinks by one: the order stays
    assert classifier.order == ["Test.Flow", "Test.Access", "Test.Trail"]
    classifier.classify(record(trail(1)))  # the most penalised one matches: reset, first
    assert classifier.order == ["Test.Trail", "Test.Flow", "Test.Access"]


def test_a_header_counts_as_a_match_for_the_order() -> None:
    classifier = Classifier({"Test.Trail": TrailParser(), "Test.Flow": FlowParser()})
    assert classifier.classify(record(b"version account src dst action")) is None
    assert classifier.last_quarantined is None and classifier.headers == 1
    assert classifier.order == ["Test.Flow", "Test.Trail"]
    assert classifier.stats()["Test.Flow"]["headers"] == 1


def test_oversized_records_are_quarantined_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(flow(1) + b"\n" + b"Z" * 5000 + b"\n" + flow(2) + b"\n")
    trail_parser, flow_parser = TrailParser(), FlowParser()
    classifier = Classifier({"Test.Trail": trail_parser, "Test.Flow": flow_parser}, SOURCE)
    results = [classifier.classify(r) for r in read_records(path, max_record_bytes=1000)]
    assert [r is not None for r in results] == [True, False, True]
    assert flow_parser.calls == 2  # the parsers never saw the oversized record
    (quarantined,) = classifier.take_quarantined()
    reason = "not parsed: record of 5000 bytes exceeds the 1000-byte record limit; its first 1000 bytes are kept"
    assert quarantined.reasons == {"Test.Trail": reason, "Test.Flow": reason}
    assert quarantined.record.data == b"Z" * 1000


def test_mixed_input_conserves_every_record(tmp_path: Path) -> None:
    """Records read = events + skipped headers + quarantined, over a directory of real-shaped mixed files."""
    (tmp_path / "flow.log").write_bytes(b"version account src dst action\n" + b"\n".join(flow(i) for i in range(30)))
    (tmp_path / "trail.json").write_bytes(orjson.dumps({"Records": [orjson.loads(trail(i)) for i in range(20)]}))
    (tmp_path / "mixed.log").write_bytes(b"\n".join(
        [trail(1), flow(1), access(1), b"\xff\xfe\x00garbage", access(2), b"42", trail(2)]))
    (tmp_path / "number.json").write_bytes(b"3.5")
    (tmp_path / "empty.log").write_bytes(b"")
    parsers = {"Test.Trail": TrailParser(), "Test.Flow": FlowParser(), "Test.Access": AccessParser()}
    classifier = Classifier(parsers, SOURCE)
    report = ReadReport()
    by_type: dict[str, int] = {}
    for raw in read_records(tmp_path, report=report):
        result = classifier.classify(raw)
        if result is not None:
            by_type[result[0]] = by_type.get(result[0], 0) + 1
    quarantined = classifier.take_quarantined()
    assert by_type == {"Test.Flow": 31, "Test.Trail": 22, "Test.Access": 2}
    assert [q.record.data for q in quarantined] == [b"\xff\xfe\x00garbage", b"42", b"3.5"]
    assert all(set(q.reasons) == set(parsers) for q in quarantined)
    assert report.records == 31 + 20 + 7 + 1 == sum(by_type.values()) + classifier.headers + len(quarantined)
    assert classifier.counts() == {"records": report.records, "events": 55, "headers": 1, "quarantined": 3}
    stats = classifier.stats()
    assert sum(s["matched"] for s in stats.values()) == 55
    assert all(s["tried"] == s["matched"] + s["headers"] + s["failed"] for s in stats.values())


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        Classifier({})
