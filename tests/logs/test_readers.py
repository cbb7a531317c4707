"""read_records over real files in tmp_path: every container and shape, and the inputs that must not stop a read."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import sys
import tracemalloc
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from onca.logs import readers
from onca.logs.model import NOT_DECODED, LineBlock, RawRecord
from onca.logs.readers import ReaderRefusal, ReadReport, content_hash, expand_paths, read_records

EVENT_A = {"eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
           "sourceIPAddress": "198.51.100.7", "eventTime": "2024-05-01T10:00:00Z"}
EVENT_B = {"eventVersion": "1.09", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
           "sourceIPAddress": "203.0.113.9", "eventTime": "2024-05-01T10:00:05Z"}
VPC_LINES = [
    b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action",
    b"2 123456789012 eni-0a1b2c3d 10.0.1.5 10.0.2.9 44321 443 6 12 3400 1714557600 1714557660 ACCEPT",
    b"2 123456789012 eni-0a1b2c3d 10.0.1.7 192.0.2.10 51000 22 6 3 180 1714557600 1714557660 REJECT",
]


def read(path: object, **kwargs: object) -> tuple[list[RawRecord], ReadReport]:
    report = ReadReport()
    records = list(read_records(path, report=report, **kwargs))  # type: ignore[arg-type]
    return records, report


def datas(records: list[RawRecord]) -> list[bytes]:
    return [r.data for r in records]


def values(records: list[RawRecord]) -> list[Any]:
    """What each record stands for: its value if the reader decoded it, else its text decoded."""
    return [orjson.loads(r.data) if r.value is NOT_DECODED else r.value for r in records]


def messages(report: ReadReport) -> list[str]:
    return [str(m) for m in report.messages]


# -- shapes ---------------------------------------------------------------------------------------------


def test_ndjson_lines_are_records_with_origin_and_positions(tmp_path: Path) -> None:
    path = tmp_path / "cloudtrail.json"
    path.write_bytes(orjson.dumps(EVENT_A) + b"\n" + orjson.dumps(EVENT_B) + b"\r\n\n   \n" + orjson.dumps(EVENT_A))
    records, report = read(path)
    assert datas(records) == [orjson.dumps(EVENT_A), orjson.dumps(EVENT_B), orjson.dumps(EVENT_A)]
    assert [(r.origin, r.position) for r in records] == [(str(path), 0), (str(path), 1), (str(path), 2)]
    # NDJSON lines are left for the parser to decode; the first was decoded by the sniffing and keeps its value.
    assert records[0].value == EVENT_A and all(r.value is NOT_DECODED for r in records[1:])
    assert report.origins[0].shape == "json-lines"
    assert report.records == 3 and report.messages == []
    assert report.bytes_in == path.stat().st_size == report.bytes_decoded


def test_pretty_printed_json_array_elements_are_records_with_decoded_values(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(orjson.dumps([EVENT_A, EVENT_B], option=orjson.OPT_INDENT_2))
    records, report = read(path)
    assert [r.value for r in records] == [EVENT_A, EVENT_B]
    assert [orjson.loads(r.data) for r in records] == [EVENT_A, EVENT_B]  # raw bytes kept for the quarantine
    assert [r.position for r in records] == [0, 1]
    assert report.origins[0].shape == "json-array"


def test_single_line_json_array_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(orjson.dumps([EVENT_A, EVENT_B]))
    records, _ = read(path)
    assert values(records) == [EVENT_A, EVENT_B]


@pytest.mark.parametrize("pretty", [False, True])
def test_s3_records_envelope_is_expanded(tmp_path: Path, pretty: bool) -> None:
    path = tmp_path / "123456789012_CloudTrail_us-east-1_20240501T1000Z_abc.json"
    option = orjson.OPT_INDENT_2 if pretty else 0
    path.write_bytes(orjson.dumps({"Records": [EVENT_A, EVENT_B, EVENT_A]}, option=option))
    records, report = read(path)
    assert values(records) == [EVENT_A, EVENT_B, EVENT_A]
    assert [r.position for r in records] == [0, 1, 2]
    assert report.origins[0].shape == ("json-envelope" if pretty else "json-lines")


def test_an_envelope_element_that_does_not_decode_is_a_record_of_its_own(tmp_path: Path) -> None:
    """One bad element (invalid UTF-8, a number beyond a double) does not make the whole S3 file one record:
    the other elements keep their positions and their exact text, and only the bad ones will be refused."""
    path = tmp_path / "trail.json"
    good = [orjson.dumps(EVENT_A), b'{ "eventName" : "Spaced" }', orjson.dumps(EVENT_B)]
    bad = [b'{"eventName":"caf\xe9"}', b'{"eventName":"x","n":1e400}']
    path.write_bytes(b'{"Records":[' + b",".join([good[0], bad[0], good[1], bad[1], good[2]]) + b"]}")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(path.read_bytes())  # as a whole, the file does not decode
    records, report = read(path)
    assert datas(records) == [good[0], bad[0], good[1], bad[1], good[2]]
    assert [r.position for r in records] == [0, 1, 2, 3, 4]
    assert report.origins[0].records == 5
    blocks, _ = read(path, blocks=True)
    assert [(b.data, b.position, b.count) for b in blocks] == [(b"\n".join(datas(records)), 0, 5)]


def test_a_line_msgspec_cannot_split_is_decoded_whole_or_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(b'{"Records":[{"a":1}],"other":2}\n[{"b":1},]\n{"Records":[{"c":1}]}\n')
    records, _ = read(path)
    assert values(records[:1]) == [{"Records": [{"a": 1}], "other": 2}]  # not an envelope: one event
    assert datas(records)[1:] == [b'[{"b":1},]', b'{"c":1}']  # invalid JSON: one record, which parsers refuse
    assert [r.position for r in records] == [0, 1, 2]


def test_envelope_lines_spaced_differently_are_expanded(tmp_path: Path) -> None:
    path = tmp_path / "envelopes.json"
    path.write_text('{ "Records" : [{"a": 1}] }\n{ "Records" : [{"a": 2}, {"a": 3}] }\n')
    records, _ = read(path)
    assert values(records) == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert [r.position for r in records] == [0, 1, 2]


def test_cloudtrail_digest_file_is_skipped_whole(tmp_path: Path) -> None:
    digest = {"awsAccountId": "123456789012", "digestStartTime": "2024-05-01T09:00:00Z",
              "digestEndTime": "2024-05-01T10:00:00Z", "digestS3Bucket": "trail-bucket",
              "digestS3Object": "AWSLogs/123456789012/CloudTrail-Digest/x.json.gz",
              "digestPublicKeyFingerprint": "0f2a6e1b7c", "digestSignatureAlgorithm": "SHA256withRSA",
              "logFiles": [{"s3Bucket": "trail-bucket", "s3Object": "AWSLogs/a.json.gz"}]}
    for name, option in (("digest.json", 0), ("digest-pretty.json", orjson.OPT_INDENT_2)):
        path = tmp_path / name
        path.write_bytes(gzip.compress(orjson.dumps(digest, option=option)))
        records, report = read(path)
        assert records == []
        assert [m.level for m in report.messages] == ["skipped"]
        assert "CloudTrail digest file" in report.messages[0].message
        assert report.origins[0].shape == "digest"


def test_text_lines_with_crlf(tmp_path: Path) -> None:
    path = tmp_path / "vpcflow.log"
    path.write_bytes(b"\r\n".join(VPC_LINES) + b"\r\n")
    records, report = read(path)
    assert datas(records) == VPC_LINES
    assert report.origins[0].shape == "lines"


def test_crlf_split_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CHUNK", 7)
    path = tmp_path / "access.log"
    lines = [b"10.0.0.%d - - [01/May/2024:10:00:00 +0000] \"GET /a HTTP/1.1\" 200 12" % i for i in range(20)]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    records, _ = read(path)
    assert datas(records) == lines


def test_json_number_and_string_documents_are_one_record_each(tmp_path: Path) -> None:
    number, string = tmp_path / "number.json", tmp_path / "string.json"
    number.write_bytes(b"42\n")
    string.write_bytes(b'"just a string"')
    records, report = read(number)
    assert datas(records) == [b"42"] and report.errors == []  # the JSON parser refuses it: quarantined, not lost
    records, _ = read(string)
    assert datas(records) == [b'"just a string"']


def test_broken_json_document_falls_back_to_lines(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "eventName": "GetObject",\n  "oops" 1\n}\n')
    records, report = read(path)
    assert len(records) == 4  # every line a record, for the parsers to refuse and the quarantine to keep
    assert any("not one JSON document" in m.message for m in report.notes)


def test_json_document_over_the_document_limit_is_streamed_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(orjson.dumps([EVENT_A] * 500, option=orjson.OPT_INDENT_2))
    records, report = read(path, max_document_bytes=10_000)
    assert len(records) > 500  # lines, not elements: the document was not decoded whole
    assert any("larger than 10000 bytes" in m.message for m in report.notes)


# -- containers -----------------------------------------------------------------------------------------


def test_gzip_is_detected_by_magic_bytes_not_the_name(tmp_path: Path) -> None:
    disguised = tmp_path / "events.log"
    disguised.write_bytes(gzip.compress(b"\n".join(VPC_LINES)))
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"\n".join(VPC_LINES))
    for path in (disguised, not_gzip):
        records, _ = read(path)
        assert datas(records) == VPC_LINES, path
    assert read(disguised)[1].origins[0].container == "gzip"
    assert read(not_gzip)[1].origins[0].container == "plain"


def test_multi_member_gzip(tmp_path: Path) -> None:
    path = tmp_path / "concatenated.gz"
    path.write_bytes(gzip.compress(VPC_LINES[0] + b"\n") + gzip.compress(b"\n".join(VPC_LINES[1:])))
    assert datas(read(path)[0]) == VPC_LINES


def test_bzip2_and_xz(tmp_path: Path) -> None:
    (tmp_path / "a.bz2").write_bytes(bz2.compress(b"\n".join(VPC_LINES)))
    (tmp_path / "a.xz").write_bytes(lzma.compress(b"\n".join(VPC_LINES)))
    for name, kind in (("a.bz2", "bzip2"), ("a.xz", "xz")):
        records, report = read(tmp_path / name)
        assert datas(records) == VPC_LINES
        assert report.origins[0].container == kind


def test_zip_members_are_origins(tmp_path: Path) -> None:
    path = tmp_path / "logs.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("vpc/flow.log", b"\n".join(VPC_LINES))
        archive.writestr("vpc/", b"")  # a directory entry
        archive.writestr("trail/ct.json.gz", gzip.compress(orjson.dumps({"Records": [EVENT_A, EVENT_B]})))
        archive.writestr(".DS_Store", b"\x00\x00\x00\x01Bud1")
        archive.writestr("__MACOSX/vpc/._flow.log", b"\x00\x05\x16\x07")
    records, report = read(path)
    by_origin: dict[str, list[RawRecord]] = {}
    for record in records:
        by_origin.setdefault(record.origin, []).append(record)
    assert list(by_origin) == [f"{path}!vpc/flow.log", f"{path}!trail/ct.json.gz"]
    assert datas(by_origin[f"{path}!vpc/flow.log"]) == VPC_LINES
    assert values(by_origin[f"{path}!trail/ct.json.gz"]) == [EVENT_A, EVENT_B]
    assert [r.position for r in by_origin[f"{path}!trail/ct.json.gz"]] == [0, 1]
    assert sorted(m.message for m in report.skipped) == ["hidden archive member", "hidden archive member"]
    assert report.inputs == 1 and report.bytes_in == path.stat().st_size


def test_zip_from_stdin_and_gzip_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("flow.log", b"\n".join(VPC_LINES))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=_Unseekable(buffer.getvalue())))
    records, report = read("-")
    assert datas(records) == VPC_LINES
    assert {r.origin for r in records} == {"-!flow.log"}
    assert report.bytes_in == len(buffer.getvalue())

    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=_Unseekable(gzip.compress(b"\n".join(VPC_LINES)))))
    records, _ = read("-")
    assert datas(records) == VPC_LINES and {r.origin for r in records} == {"-"}


class _Unseekable(io.RawIOBase):
    """A pipe: readable, not seekable, handing out at most 3 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 3 if size < 0 else min(size, 3)
        out, self._data = bytes(self._data[:size]), self._data[size:]
        return out


def test_a_stream_with_an_origin(tmp_path: Path) -> None:
    records, _ = read(io.BytesIO(b"\n".join(VPC_LINES)), origin="s3://bucket/flow.log")
    assert {r.origin for r in records} == {"s3://bucket/flow.log"}


def test_directory_recursive_sorted_hidden_skipped_and_mixed(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".hidden.log").write_text("secret\n")
    (root / "a.log").write_bytes(b"\n".join(VPC_LINES))
    (root / "b" / "ct.json.gz").write_bytes(gzip.compress(orjson.dumps([EVENT_A, EVENT_B])))
    (root / "b" / "deeper" / "empty.log").write_bytes(b"")
    (root / "b" / "deeper" / "number.json").write_bytes(b"7")
    (root / "c.bin").write_bytes(b"\x00\x01binary\xff\xfe\nsecond\n")
    with zipfile.ZipFile(root / "d.zip", "w") as archive:
        archive.writestr("x.log", "one\ntwo\n")
    records, report = read(root, origin="in")
    origins = []
    for record in records:
        if not origins or origins[-1] != record.origin:
            origins.append(record.origin)
    assert origins == ["in/a.log", "in/b/ct.json.gz", "in/b/deeper/number.json", "in/c.bin", "in/d.zip!x.log"]
    assert len(records) == 3 + 2 + 1 + 2 + 2
    assert ("in/b/deeper/empty.log", "skipped", "empty file: no records") in [
        (m.origin, m.level, m.message) for m in report.messages]
    skipped = {m.origin: m.message for m in report.skipped}
    assert skipped["in/.git"] == "hidden directory" and skipped["in/.hidden.log"] == "hidden file"
    assert report.errors == []
    assert [str(p.relative_to(root)) for p in expand_paths([root])] == [
        "a.log", "b/ct.json.gz", "b/deeper/empty.log", "b/deeper/number.json", "c.bin", "d.zip"]


def test_positions_are_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_bytes(orjson.dumps(EVENT_A) + b"\n" + orjson.dumps({"Records": [EVENT_B, EVENT_A]}) + b"\n[1, 2]\n")
    first = [(r.origin, r.position, r.data) for r in read(path)[0]]
    second = [(r.origin, r.position, r.data) for r in read(path)[0]]
    assert first == second and [p for _, p, _ in first] == [0, 1, 2, 3, 4]


# -- bad input never stops the read ---------------------------------------------------------------------


def test_binary_and_invalid_utf8_records_are_delivered_raw(tmp_path: Path) -> None:
    path = tmp_path / "weird.log"
    raw = [b"\x00\x00\x7fELF\x02\x01", b"caf\xe9 latin-1 not utf-8", b"\xff\xfe{\"a\":1}", VPC_LINES[1]]
    path.write_bytes(b"\n".join(raw))
    records, report = read(path)
    assert datas(records) == raw
    assert any("looks binary" in m.message for m in report.notes)


def test_truncated_gzip_delivers_the_records_before_the_cut(tmp_path: Path) -> None:
    lines = [orjson.dumps({**EVENT_A, "requestID": f"req-{i:06d}", "n": random.Random(i).random()})
             for i in range(20000)]
    compressed = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "cut.json.gz"
    path.write_bytes(compressed[: len(compressed) * 2 // 3])
    after = tmp_path / "next.log"
    after.write_bytes(b"\n".join(VPC_LINES))
    report = ReadReport()
    records = [r for p in (path, after) for r in read_records(p, report=report)]
    cut = [r for r in records if r.origin == str(path)]
    assert 5000 < len(cut) < 20000
    whole = [r.data for r in cut[:-1]]
    assert whole == lines[: len(whole)]  # every whole record before the cut, in order
    assert lines[len(whole)].startswith(cut[-1].data)  # and the cut one, raw, for the quarantine
    assert datas([r for r in records if r.origin == str(after)]) == VPC_LINES  # the next input still read
    (error,) = report.errors
    delivered = report.origins[0].bytes
    assert error.origin == str(path)
    assert error.message == f"gzip stream truncated after {delivered} bytes; the records before it were read"
    assert delivered == sum(len(x) + 1 for x in whole) + len(cut[-1].data)


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(os.urandom(1000).hex().encode() + b"\n" + b"\n".join(VPC_LINES)))
    data[40:60] = b"\x00" * 20
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(data))
    _, report = read(path)
    (error,) = report.errors
    assert "gzip stream corrupt after" in error.message


def test_a_ten_megabyte_line_is_one_record(tmp_path: Path) -> None:
    big = b'{"blob": "' + b"x" * (10 << 20) + b'"}'
    path = tmp_path / "big.json"
    path.write_bytes(orjson.dumps(EVENT_A) + b"\n" + big + b"\n" + orjson.dumps(EVENT_B) + b"\n")
    records, report = read(path)
    assert [len(r.data) for r in records] == [len(orjson.dumps(EVENT_A)), len(big), len(orjson.dumps(EVENT_B))]
    assert records[1].data == big and report.messages == []


def test_a_ten_megabyte_first_line(tmp_path: Path) -> None:
    big = b"x" * (10 << 20)
    path = tmp_path / "big.log"
    path.write_bytes(big + b"\r\nnext")
    assert datas(read(path)[0]) == [big, b"next"]


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_oversized_record_keeps_its_first_bytes_and_the_rest_lands(tmp_path: Path, chunk: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CHUNK", chunk)
    monkeypatch.setattr(readers, "OVERSIZED_KEEP", 16)
    long = b"A" * 5000
    path = tmp_path / "long.log"
    path.write_bytes(b"first\n" + long + b"\r\nlast\n")
    records, _ = read(path, max_record_bytes=1000)
    assert datas(records) == [b"first", b"A" * 16, b"last"]
    refusal = records[1].value
    assert isinstance(refusal, ReaderRefusal) and refusal.size == 5000
    assert refusal.reason == "record of 5000 bytes exceeds the 1000-byte record limit; its first 16 bytes are kept"
    assert [r.position for r in records] == [0, 1, 2]


def test_empty_file_is_reported_with_zero_records(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    for name in ("empty.log", "empty.gz"):
        records, report = read(tmp_path / name)
        assert records == []
        assert messages(report) == [f"{tmp_path / name}: skipped: empty file: no records"]


def test_missing_and_unreadable_files_are_reported_and_the_rest_read(tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_bytes(b"\n".join(VPC_LINES))
    report = ReadReport()
    records = [r for p in (tmp_path / "missing.log", good) for r in read_records(p, report=report)]
    assert datas(records) == VPC_LINES
    assert messages(report) == [f"{tmp_path / 'missing.log'}: error: cannot read: No such file or directory"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked.log"
    locked.write_text("x\n")
    locked.chmod(0)
    records, report = read(locked)
    assert records == [] and messages(report) == [f"{locked}: error: cannot read: Permission denied"]


def test_permission_denied_while_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as above for a root test run: open() fails with EACCES."""
    locked = tmp_path / "locked.log"
    locked.write_text("x\n")
    real_open = open

    def guarded_open(file: object, *args: object, **kwargs: object) -> object:
        if file == locked:
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", guarded_open)
    records, report = read(tmp_path)
    assert records == []
    assert messages(report) == [f"{tmp_path}/locked.log: error: cannot read: Permission denied"]


def test_zstd_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "x.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    records, report = read(path)
    assert records == [] and "zstd-compressed input is not supported" in report.errors[0].message


def test_bad_zip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cut.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.log", "a\n" * 1000)
    path.write_bytes(buffer.getvalue()[:200])
    records, report = read(path)
    assert records == [] and "not a readable zip archive" in report.errors[0].message


# -- memory and the line splitter -----------------------------------------------------------------------


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.json"
    block = b"".join(orjson.dumps({**EVENT_A, "requestID": f"r{i}"}) + b"\n" for i in range(1000))
    with open(path, "wb") as handle:
        for _ in range((128 << 20) // len(block)):
            handle.write(block)
    size = path.stat().st_size
    assert size > 120 << 20
    tracemalloc.start()
    try:
        count = 0
        report = ReadReport()
        for _record in read_records(path, report=report):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == size // len(block) * 1000
    assert report.bytes_decoded == size
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB while reading {size / 2**20:.0f} MiB"


def test_line_splitting_matches_a_reference_at_every_chunk_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    for _ in range(1500):
        monkeypatch.setattr(readers, "CHUNK", rng.choice([1, 2, 3, 5, 8, 64]))
        monkeypatch.setattr(readers, "OVERSIZED_KEEP", rng.choice([2, 5]))
        maxlen = rng.choice([4, 12, 1000])
        data = b"x" + bytes(rng.choice(b"ab\r\n\t") for _ in range(rng.randint(0, 80)))
        got = [(r.data, r.value.size if isinstance(r.value, ReaderRefusal) else 0)
               for r in read_records(io.BytesIO(data), max_record_bytes=maxlen)]
        expected = []
        for line in data.split(b"\n"):
            line = line[:-1] if line.endswith(b"\r") else line
            if not line or line.isspace():
                continue
            keep = min(readers.OVERSIZED_KEEP, maxlen)
            expected.append((line[:keep], len(line)) if len(line) > maxlen else (line, 0))
        # A whitespace-only line too long to gather is kept as oversized rather than checked: leave those out.
        assert [g for g in got if not (g[1] and g[0].isspace())] == [
            e for e in expected if not (e[1] and e[0].isspace())], (readers.CHUNK, maxlen, data)


def test_json_shapes_do_not_depend_on_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    documents = [
        b"  \n" + orjson.dumps(EVENT_A) + b"\n" + orjson.dumps(EVENT_B) + b"\n",
        orjson.dumps({"Records": [EVENT_A, EVENT_B]}, option=orjson.OPT_INDENT_2),
        orjson.dumps([EVENT_A, 3, "x"], option=orjson.OPT_INDENT_2),
        b'{"eventName" 1}\n' + orjson.dumps(EVENT_B),
        b'{\n"eventName" 1}\n' + orjson.dumps(EVENT_B),
        b"   \n\n ",
    ]
    for document in documents:
        seen = []
        for chunk in (1, 2, 3, 7, 1 << 20):
            monkeypatch.setattr(readers, "CHUNK", chunk)
            report = ReadReport()
            records = [(r.data, r.position) for r in read_records(io.BytesIO(document), report=report)]
            seen.append((records, messages(report), report.origins[0].shape, report.bytes_decoded))
        assert all(s == seen[0] for s in seen), document


# -- hashes and counts ----------------------------------------------------------------------------------


def test_content_hash_streams_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CHUNK", 1000)
    path = tmp_path / "x.log"
    data = os.urandom(12345)
    path.write_bytes(data)
    assert content_hash(path) == hashlib.sha256(data).hexdigest()


def test_byte_counts(tmp_path: Path) -> None:
    text = b"\n".join(VPC_LINES) + b"\n"
    (tmp_path / "a.log").write_bytes(text)
    (tmp_path / "b.gz").write_bytes(gzip.compress(text))
    _, report = read(tmp_path)
    assert report.inputs == 2
    assert report.bytes_in == (tmp_path / "a.log").stat().st_size + (tmp_path / "b.gz").stat().st_size
    assert report.bytes_decoded == 2 * len(text)
    assert [(o.container, o.records, o.bytes) for o in report.origins] == [
        ("plain", 3, len(text)), ("gzip", 3, len(text))]


_BLOCK_PIECES = [b'{"a":1}', b'{"b":"x y"}', b"", b"   ", b'\t{"c":2}', b'[{"d":1},{"d":2}]', b'{"Records":[{"e":1}]}',
                 b'{"Records":[{"e":2},{"e":"\xff"},[3],{"e":1e400}]}', b'{ "Records" : [{"s": 1}, {"s": 2}] }',
                 b'{"Records":[{"e":3},\r{"e":4}]}', b'{"Records":[]}', b'[]',
                 b'{"f":"' + b"z" * 300 + b'"}', b'{"g":1}\r', b'{"R":1}', b"not json", b'{"Recordsx":1}',
                 b'{"h":"\xff"}', b"\x0b", b'{"i":"a\rb"}', b"\r"]


def _flattened(items: list[Any]) -> list[tuple[bytes, str, int, str | None]]:
    records = [r for item in items for r in (item.records() if isinstance(item, LineBlock) else [item])]
    return [(r.data, r.origin, r.position, None if r.value is NOT_DECODED else repr(r.value)) for r in records]


@pytest.mark.parametrize("chunk", [64, 256, 4096])
def test_blocks_are_exactly_the_records_read_line_by_line(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a chunk holds (blank and whitespace lines, CRs, arrays and envelopes to expand, oversized lines,
    lines spanning chunks), the blocks' records are the line-by-line records, position for position."""
    monkeypatch.setattr(readers, "CHUNK", chunk)
    rng = random.Random(chunk)
    blocks_seen = 0
    for _trial in range(60):
        first = rng.choice([b'{"first":true}', b'{"Records":[{"x":1}]}', b"[1]", b'{"a":2}'])
        lines = [first] + [rng.choice(_BLOCK_PIECES[:1] * 20 + _BLOCK_PIECES) for _ in range(rng.randint(1, 300))]
        data = rng.choice([b"", b"\n", b"  "]) + b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n"])
        for limit in (100, 1 << 20):
            by_line = list(read_records(io.BytesIO(data), report=ReadReport(), max_record_bytes=limit))
            by_block = list(read_records(io.BytesIO(data), report=ReadReport(), max_record_bytes=limit, blocks=True))
            assert _flattened(by_block) == _flattened(by_line)
            assert not any(isinstance(item, LineBlock) for item in by_line)
            blocks_seen += sum(isinstance(item, LineBlock) for item in by_block)
    assert blocks_seen > 100  # plain runs of lines did come as blocks
