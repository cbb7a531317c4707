"""Reading input into RawRecords: files, directories, stdin; plain, gzip, bzip2, xz and zip; NDJSON, JSON
documents (arrays, the S3 `{"Records": [...]}` envelope), CloudTrail digest files, and text lines.

Memory stays flat with input size: content is read in 1 MiB chunks and split into lines; a whole JSON
document is decoded only when it is pretty-printed (its first line is not complete JSON) and smaller than
`max_document_bytes`. Nothing stops the read of the next input: every problem (truncated gzip, an
unreadable file, an oversized record, a digest file) becomes a message in the ReadReport, and whatever was
read before it is delivered. A record the parsers cannot use (NUL bytes, invalid UTF-8, a JSON number) is
still a record: the classifier quarantines it with its raw bytes.

A caller that parses JSON lines in bulk can ask for blocks (`blocks=True`): where a chunk's lines are plain
JSON-lines records, they come as one LineBlock instead of one RawRecord each, with the same positions; so do
the elements of a one-line array or envelope.

A one-line array or `{"Records": [...]}` envelope (how S3 delivers CloudTrail) is split into its elements'
own text by msgspec without decoding them (~0.5 µs an element, where a whole decode with orjson costs ~7):
each element is then a record of its own, and one element that does not decode (invalid UTF-8, a number
beyond a double) is quarantined alone while the others land. A line msgspec cannot split is decoded whole by
orjson as before: if that fails too, the line is one record, which the parsers refuse with their reason.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import itertools
import lzma
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np
import orjson

from onca.logs.model import NOT_DECODED, LineBlock, RawRecord

CHUNK = 1 << 20  # read size; lines are split out of chunks, so a file is never read whole
MAX_RECORD_BYTES = 64 << 20  # a longer record is quarantined as oversized, its first bytes kept
MAX_DOCUMENT_BYTES = 64 << 20  # a pretty-printed JSON document larger than this is read as lines
OVERSIZED_KEEP = 64 << 10  # bytes of an oversized record kept for the quarantine
_BINARY_SNIFF = 8 << 10

_GZIP_MAGIC = b"\x1f\x8b\x08"  # with the deflate method byte, the only one gzip defines
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip
_DIGEST_KEYS = ("digestPublicKeyFingerprint", "digestS3Bucket", "digestSignatureAlgorithm")
_SPACE = frozenset(b" \t\r\n\x0b\x0c")
# First bytes that keep a line out of a LineBlock: blank or whitespace-led lines (maybe not records), arrays
# (maybe expanded into their elements).
_NOT_BLOCK_START = np.zeros(256, dtype=bool)
_NOT_BLOCK_START[list(_SPACE | {0x5B})] = True
_ARRAY_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """The S3 envelope and nothing else: another key (or none) is not an envelope, as in `_expanded`."""

    Records: list[msgspec.Raw]


_ENVELOPE_ELEMENTS = msgspec.json.Decoder(_Envelope)
_MAX_NESTING = 4  # zip in zip, gzip in zip ...: deeper than this is refused, not recursed into


class ReaderRefusal:
    """RawRecord.value of a record the reader could not deliver whole (it is longer than the record limit).

    The classifier quarantines such a record without trying the parsers; `reason` says why.
    """

    __slots__ = ("reason", "size")

    def __init__(self, reason: str, size: int) -> None:
        self.reason = reason
        self.size = size

    def __repr__(self) -> str:
        return f"ReaderRefusal({self.reason!r})"


@dataclass(slots=True)
class ReadMessage:
    origin: str
    level: str  # "error": part of the input could not be read; "skipped": a whole input was set aside; "note"
    message: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.level}: {self.message}"


@dataclass(slots=True)
class OriginRead:
    """What one origin (a file, an archive member, stdin) gave."""

    origin: str
    container: str  # plain, gzip, bzip2, xz, zip
    shape: str = ""  # lines, json-lines, json-array, json-object, json-envelope, digest, empty, unreadable
    records: int = 0
    bytes: int = 0  # content bytes read (after decompression)


@dataclass
class ReadReport:
    """Accumulates what reading did, across every call that is given the same report."""

    inputs: int = 0  # files and streams opened (a zip counts once; its members are origins)
    bytes_in: int = 0  # bytes of the inputs as stored (compressed size for compressed inputs)
    origins: list[OriginRead] = field(default_factory=list)
    messages: list[ReadMessage] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(o.records for o in self.origins)

    @property
    def bytes_decoded(self) -> int:
        return sum(o.bytes for o in self.origins)

    @property
    def errors(self) -> list[ReadMessage]:
        return [m for m in self.messages if m.level == "error"]

    @property
    def skipped(self) -> list[ReadMessage]:
        return [m for m in self.messages if m.level == "skipped"]

    @property
    def notes(self) -> list[ReadMessage]:
        return [m for m in self.messages if m.level == "note"]

    def error(self, origin: str, message: str) -> None:
        self.messages.append(ReadMessage(origin, "error", message))

    def skip(self, origin: str, message: str) -> None:
        self.messages.append(ReadMessage(origin, "skipped", message))

    def note(self, origin: str, message: str) -> None:
        self.messages.append(ReadMessage(origin, "note", message))


@dataclass(frozen=True, slots=True)
class _Limits:
    record: int
    document: int
    blocks: bool = False  # JSON lines may be delivered as LineBlocks


class _StreamBroken(Exception):
    """The content stream failed after `nbytes` bytes of content; what came before was delivered."""

    def __init__(self, nbytes: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.nbytes = nbytes
        self.cause = cause


class _Replay:
    """A readable stream that serves buffered chunks first, then the rest of `stream`.

    Sniffing reads ahead; this gives those bytes back without seeking (stdin and gzip cannot seek). If reading
    ahead hit an error, it is raised again once the buffered bytes are consumed, where it happened.
    """

    __slots__ = ("_chunks", "_failure", "_stream")

    def __init__(self, chunks: list[bytes], stream: Any, failure: BaseException | None = None) -> None:
        self._chunks = chunks[::-1]  # popped from the end
        self._stream = stream
        self._failure = failure

    def read(self, size: int = -1) -> bytes:
        if self._chunks:
            chunk = self._chunks.pop()
            if 0 <= size < len(chunk):
                self._chunks.append(chunk[size:])
                chunk = chunk[:size]
            return chunk
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self._stream is None:
            return b""
        return self._stream.read(size)


class _Counting:
    """Counts the bytes read from a stream whose size is not known up front (stdin, a caller's stream)."""

    __slots__ = ("_stream", "count")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


def read_records(
    path_or_stream: str | os.PathLike[str] | IO[bytes],
    *,
    origin: str | None = None,
    report: ReadReport | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
    max_document_bytes: int = MAX_DOCUMENT_BYTES,
    blocks: bool = False,
) -> Iterator[RawRecord | LineBlock]:
    """Yield every record of a file, a directory (recursively, sorted, hidden entries skipped), "-" (stdin)
    or a binary stream. Problems go to `report` (pass one to see them; it accumulates across calls).
    With `blocks`, runs of plain JSON lines come as LineBlocks (see onca.logs.model.LineBlock).

    `origin` names the input in RawRecord.origin (default: the path as given; "-" for stdin; the stream's
    name, else "<stream>"); files found in a directory are named `<origin>/<relative path>`, zip members
    `<origin>!<member>`. Positions count the records of each origin from 0, so a re-read gives the same ones.
    """
    report = report if report is not None else ReadReport()
    limits = _Limits(max_record_bytes, max_document_bytes, blocks)
    if isinstance(path_or_stream, str | os.PathLike):
        text = os.fspath(path_or_stream)
        if text == "-":
            yield from _read_stream(sys.stdin.buffer, origin or "-", report, limits)
            return
        path = Path(text)
        name = origin if origin is not None else text
        if path.is_dir():
            name = name.rstrip("/") or "/"
            for file, relative in _walk(path, name, report):
                yield from _read_file(file, f"{name}/{relative}" if relative else name, report, limits)
        else:
            yield from _read_file(path, name, report, limits)
        return
    name = origin if origin is not None else str(getattr(path_or_stream, "name", "") or "<stream>")
    yield from _read_stream(path_or_stream, name, report, limits)


def expand_paths(paths: list[str | os.PathLike[str]], report: ReadReport | None = None) -> Iterator[Path]:
    """The files `read_records` would read for these paths, in the same order ("-" is yielded as Path("-"))."""
    for given in paths:
        text = os.fspath(given)
        path = Path(text)
        if text != "-" and path.is_dir():
            for file, _relative in _walk(path, text, report if report is not None else ReadReport()):
                yield file
        else:
            yield path


def content_hash(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes as stored, read in chunks (the re-ingest check)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Inputs and containers


def _walk(root: Path, name: str, report: ReadReport, prefix: str = "") -> Iterator[tuple[Path, str]]:
    """(file, path relative to root) for every non-hidden file under root, depth first with each directory's
    entries in name order (files and directories interleaved): the sorted order of the paths."""
    try:
        with os.scandir(root) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        report.error(f"{name}/{prefix}".rstrip("/"), f"cannot list directory: {_describe(exc)}")
        return
    for entry in entries:
        relative = prefix + entry.name
        try:
            is_dir = entry.is_dir()  # follows a symlink, as reading a named path does
        except OSError:
            is_dir = False
        if entry.name.startswith("."):
            report.skip(f"{name}/{relative}", "hidden directory" if is_dir else "hidden file")
        elif is_dir:
            yield from _walk(Path(entry.path), name, report, relative + "/")
        else:
            yield Path(entry.path), relative


def _read_file(path: Path, name: str, report: ReadReport, limits: _Limits) -> Iterator[RawRecord]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below, after the generator is done
    except OSError as exc:
        report.error(name, f"cannot read: {_describe(exc)}")
        report.origins.append(OriginRead(name, "plain", "unreadable"))
        return
    try:
        report.inputs += 1
        with contextlib.suppress(OSError):
            report.bytes_in += os.fstat(handle.fileno()).st_size
        yield from _read_container(handle, name, report, limits, depth=0)
    finally:
        handle.close()


def _read_stream(stream: Any, name: str, report: ReadReport, limits: _Limits) -> Iterator[RawRecord]:
    counting = _Counting(stream)
    report.inputs += 1
    try:
        yield from _read_container(counting, name, report, limits, depth=0)
    finally:
        report.bytes_in += counting.count


def _read_container(stream: Any, name: str, report: ReadReport, limits: _Limits, depth: int,
                    plain: str = "plain") -> Iterator[RawRecord]:
    """Detect the container by its first bytes (never by the name) and read its content. `plain` names an
    uncompressed container (a zip member is "zip")."""
    try:
        head = _read_some(stream, 8)
    except Exception as exc:  # an unreadable input is reported, the next one is read
        report.error(name, f"cannot read: {_describe(exc)}")
        report.origins.append(OriginRead(name, plain, "unreadable"))
        return
    if head.startswith(_ZIP_MAGICS):
        if depth >= _MAX_NESTING:
            report.error(name, f"archive nested more than {_MAX_NESTING} levels deep: not read")
            return
        yield from _read_zip(stream, head, name, report, limits, depth)
        return
    replay = _Replay([head], stream)
    container = _compression(head) or plain
    if container == "zstd":
        report.error(name, "zstd-compressed input is not supported: decompress it first (zstd -d)")
        report.origins.append(OriginRead(name, "zstd", "unreadable"))
        return
    read = OriginRead(name, container)
    report.origins.append(read)
    content = _decompressor(container, replay)
    try:
        yield from _read_content(content, read, report, limits)
    except _StreamBroken as broken:
        report.error(name, _describe_failure(container, broken))
    finally:
        if content is not replay:
            content.close()


def _compression(head: bytes) -> str | None:
    """The compression named by the magic bytes; the checks go past the bare magic so text is never mistaken."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_BZIP2_MAGIC) and head[3:4].isdigit() and head[4:8] in (b"1AY&", b"\x17rE8"):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def _decompressor(container: str, stream: _Replay) -> Any:
    if container == "gzip":
        return _ReadOnce(gzip.GzipFile(fileobj=stream, mode="rb"))
    if container == "bzip2":
        return _ReadOnce(bz2.BZ2File(stream, mode="rb"))
    if container == "xz":
        return _ReadOnce(lzma.LZMAFile(stream, mode="rb"))
    return stream


class _ReadOnce:
    """A decompressing file read with read1: its read(n) loops over several decompression steps and, when one
    fails (a truncated stream), drops what the earlier steps of that call produced; read1 makes one step."""

    __slots__ = ("close", "read")

    def __init__(self, file: Any) -> None:
        self.read = file.read1
        self.close = file.close


def _describe_failure(container: str, broken: _StreamBroken) -> str:
    cause = broken.cause
    if isinstance(cause, EOFError) and container in ("gzip", "bzip2", "xz"):
        return f"{container} stream truncated after {broken.nbytes} bytes; the records before it were read"
    if container in ("gzip", "bzip2", "xz"):
        return (f"{container} stream corrupt after {broken.nbytes} bytes ({_describe(cause)});"
                " the records before it were read")
    return f"read failed after {broken.nbytes} bytes ({_describe(cause)}); the records before it were read"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    kind = type(exc)
    label = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"{label}: {exc}" if str(exc) else label


def _read_zip(stream: Any, head: bytes, name: str, report: ReadReport, limits: _Limits,
              depth: int) -> Iterator[RawRecord]:
    """Each member is an origin `archive!member`, read in the archive's order; zipfile needs to seek, so a
    stream that cannot (stdin) is first copied to a temporary file on disk, not into memory."""
    spool: IO[bytes] | None = None
    seekable = getattr(stream, "seekable", None)
    try:
        if seekable is not None and seekable():
            stream.seek(0)
            archive_file = stream
        else:
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
            spool.write(head)
            shutil.copyfileobj(stream, spool, CHUNK)
            spool.seek(0)
            archive_file = spool
        try:
            archive = zipfile.ZipFile(archive_file)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            report.error(name, f"not a readable zip archive: {exc}")
            report.origins.append(OriginRead(name, "zip", "unreadable"))
            return
        with archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if not members:
                report.skip(name, "zip archive without files: no records")
            for info in members:
                member_name = f"{name}!{info.filename}"
                base = info.filename.rstrip("/").rsplit("/", 1)[-1]
                if base.startswith(".") or info.filename.startswith("__MACOSX/"):
                    report.skip(member_name, "hidden archive member")
                    continue
                try:
                    member = archive.open(info)
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, ValueError) as exc:
                    report.error(member_name, f"cannot open archive member: {_describe(exc)}")
                    continue
                with member:
                    yield from _read_member(member, member_name, report, limits, depth)
    finally:
        if spool is not None:
            spool.close()


def _read_member(member: Any, name: str, report: ReadReport, limits: _Limits, depth: int) -> Iterator[RawRecord]:
    yield from _read_container(member, name, report, limits, depth + 1, plain="zip")


def _read_some(stream: Any, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of the stream (a pipe may hand out fewer per read)."""
    data = stream.read(size)
    while data and len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


# ---------------------------------------------------------------------------------------------------------
# Content: which shape, then records


def _read_content(stream: Any, read: OriginRead, report: ReadReport, limits: _Limits) -> Iterator[RawRecord]:
    """Sniff the shape from the first non-whitespace byte and the first line, then read records.

    `{` or `[` starting a first line that is complete JSON: JSON lines (an envelope or array line is expanded;
    a digest file is skipped). A first line that is the start of a longer JSON value: a pretty-printed
    document, decoded whole if small enough. Anything else: text lines.
    """
    name = read.origin
    chunks: list[bytes] = []
    failure: BaseException | None = None
    total = 0
    start = -1  # offset of the first non-whitespace byte in the joined chunks
    try:
        while start < 0:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            stripped = len(chunk) - len(chunk.lstrip())
            if stripped < len(chunk):
                start = total + stripped
            total += len(chunk)
    except Exception as exc:  # any decompression or I/O error ends this origin, reported
        failure = exc
    if start < 0:
        read.bytes = total
        if failure is not None:
            raise _StreamBroken(total, failure)
        read.shape = "empty"
        report.skip(name, "empty file: no records" if total == 0 else f"only whitespace ({total} bytes): no records")
        return
    if b"\0" in chunks[0][:_BINARY_SNIFF]:
        report.note(name, "looks binary (NUL bytes near the start); its lines are still read as records")
    first_byte = _byte_at(chunks, start)
    if first_byte not in (0x7B, 0x5B) or failure is not None:  # not `{` / `[`, or the stream already broke
        read.shape = "lines"
        yield from _lines_records(_Replay(chunks, stream, failure), read, limits, json_lines=False)
        return

    # The first line: from the first non-whitespace byte to the next newline, read ahead as needed.
    newline = _find_newline(chunks, start)
    try:
        while newline < 0 and total - start <= limits.record:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            found = chunk.find(b"\n")
            if found >= 0:
                newline = total + found
            total += len(chunk)
    except Exception as exc:
        failure = exc
    line_end = newline if newline >= 0 else total
    if line_end - start > limits.record or failure is not None:
        read.shape = "json-lines"
        yield from _lines_records(_Replay(chunks, stream, failure), read, limits, json_lines=True)
        return
    first_line = _slice(chunks, start, line_end).rstrip()
    elements = _split_container(first_line)
    if elements is not None:  # not a digest (which has other keys): no need to decode it whole
        read.shape = "json-lines"
        # An envelope written with other spacing than `{"Records"`: every `{` line of this file is checked.
        envelopes = first_line[0] == 0x7B and not first_line.startswith(b'{"Records"')
        yield from _lines_records(_Replay(chunks, stream, None), read, limits, json_lines=True, envelopes=envelopes,
                                  first_value=elements)
        return
    try:
        first_value = orjson.loads(first_line)
    except orjson.JSONDecodeError as exc:
        incomplete = exc.pos >= len(first_line)  # a valid start cut by the newline: a multi-line document
        if not incomplete or newline < 0:
            read.shape = "json-lines"
            yield from _lines_records(_Replay(chunks, stream, None), read, limits, json_lines=True)
            return
        yield from _document_records(stream, chunks, total, start, read, report, limits)
        return
    if isinstance(first_value, dict) and _is_digest(first_value):
        _skip_digest(stream, chunks, read, report)
        return
    # An envelope written with other spacing than `{"Records"`: every `{` line of this file is checked.
    envelope = (isinstance(first_value, dict) and _expanded(first_value) is not None
                and not first_line.startswith(b'{"Records"'))
    read.shape = "json-lines"
    yield from _lines_records(_Replay(chunks, stream, None), read, limits, json_lines=True, envelopes=envelope,
                              first_value=first_value)


def _document_records(stream: Any, chunks: list[bytes], total: int, start: int, read: OriginRead,
                      report: ReadReport, limits: _Limits) -> Iterator[RawRecord]:
    """A pretty-printed JSON document: decode it whole when it fits in `limits.document`, else read lines."""
    name = read.origin
    failure: BaseException | None = None
    try:
        while total <= limits.document:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except Exception as exc:
        failure = exc
    if total > limits.document or failure is not None:
        if failure is None:
            report.note(name, f"JSON document larger than {limits.document} bytes: read as lines, not decoded whole")
        read.shape = "lines"
        yield from _lines_records(_Replay(chunks, stream, failure), read, limits, json_lines=False)
        return
    document = b"".join(chunks)
    chunks.clear()
    read.bytes = len(document)
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        report.note(name, f"not one JSON document ({exc}): read as lines")
        read.shape = "lines"
        read.bytes = 0
        yield from _lines_records(_Replay([document], None), read, limits, json_lines=False)
        return
    if isinstance(value, dict) and _is_digest(value):
        read.shape = "digest"
        report.skip(name, "CloudTrail digest file (integrity metadata, not events)")
        return
    elements = _expanded(value)
    if elements is None:
        read.shape = "json-object" if isinstance(value, dict) else "json-value"
        read.records = 1
        yield RawRecord(document[start:].rstrip(), name, 0, value)
        return
    read.shape = "json-array" if isinstance(value, list) else "json-envelope"
    if not elements:
        report.skip(name, f"{read.shape} with no elements: no records")
    dumps = orjson.dumps
    position = 0
    try:
        for element in elements:
            yield RawRecord(dumps(element), name, position, element)
            position += 1
    finally:
        read.records = position


def _skip_digest(stream: Any, chunks: list[bytes], read: OriginRead, report: ReadReport) -> None:
    """Skip a digest file whole; its bytes are still counted (drained in chunks)."""
    read.shape = "digest"
    size = sum(len(c) for c in chunks)
    try:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
    except Exception as exc:
        report.error(read.origin, f"digest file unreadable after {size} bytes: {exc}")
    read.bytes = size
    report.skip(read.origin, "CloudTrail digest file (integrity metadata, not events)")


def _is_digest(value: dict[str, Any]) -> bool:
    return any(key in value for key in _DIGEST_KEYS)


def _expanded(value: Any) -> list[Any] | None:
    """The elements a container value stands for (a JSON array; the S3 `{"Records": [...]}` envelope)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and len(value) == 1:
        records = value.get("Records")
        if isinstance(records, list):
            return records
    return None


def _lines_records(stream: Any, read: OriginRead, limits: _Limits, *, json_lines: bool, envelopes: bool = False,
                   first_value: Any = NOT_DECODED) -> Iterator[RawRecord]:
    """One record per line (CRLF or LF; blank lines are not records). With json_lines, a line holding a JSON
    array or a `{"Records": [...]}` envelope is expanded into its elements; the envelope test is a prefix
    check, or (envelopes=True, a file whose first line is an oddly spaced envelope) a decode of each `{` line.
    `first_value` is the first line already decoded by the sniffing (a single-line envelope is not decoded twice),
    or already split into its elements (_Elements).
    """
    name = read.origin
    position = 0
    maxlen = limits.record
    dumps, loads = orjson.dumps, orjson.loads
    keep = min(OVERSIZED_KEEP, maxlen)
    blocks = limits.blocks and json_lines and not envelopes
    lines = _split_lines(stream, maxlen, read, blocks=blocks)
    try:
        if first_value is not NOT_DECODED:
            for line, size in lines:  # the first line only; the loop below goes on with the same iterator
                if size < 0:  # a block starting with the first line: that line is taken apart
                    end = line.find(b"\n")
                    if end >= 0:
                        lines = itertools.chain([(line[end + 1:], size + 1)], lines)
                        line = line[:end]
                    size = 0
                if size:
                    yield _oversized(line[:keep], name, position, size, maxlen)
                    position += 1
                    break
                if first_value.__class__ is _Elements:
                    yield from _element_records(first_value, line, name, position, limits.blocks)
                    position += len(first_value.raws)
                    break
                elements = _expanded(first_value)
                if elements is None:
                    yield RawRecord(line, name, position, first_value)
                    position += 1
                    break
                for element in elements:
                    yield RawRecord(dumps(element), name, position, element)
                    position += 1
                break
        for line, size in lines:
            if size:
                if size < 0:
                    yield LineBlock(line, name, position, -size)
                    position -= size
                    continue
                yield _oversized(line[:keep], name, position, size, maxlen)
                position += 1
                continue
            if json_lines and (line[0] == 0x5B or line.startswith(b'{"Records"') or (envelopes and line[0] == 0x7B)):
                split = _split_container(line)
                if split is not None:
                    yield from _element_records(split, line, name, position, limits.blocks)
                    position += len(split.raws)
                    continue
                try:
                    elements = _expanded(loads(line))
                except orjson.JSONDecodeError:
                    elements = None  # the parsers will refuse it, with their own reason
                if elements is not None:
                    for element in elements:
                        yield RawRecord(dumps(element), name, position, element)
                        position += 1
                    continue
            yield RawRecord(line, name, position)
            position += 1
    finally:
        read.records += position


@dataclass(slots=True)
class _Elements:
    """The elements of a one-line array or envelope, each as its own JSON text (slices of the line)."""

    raws: list[msgspec.Raw]


def _split_container(line: bytes) -> _Elements | None:
    """A JSON array or S3 envelope line split into its elements' text, or None when msgspec cannot split it
    (not valid JSON, another shape): the caller then decodes it whole, as orjson judges it."""
    try:
        raws = _ARRAY_ELEMENTS.decode(line) if line[0] == 0x5B else _ENVELOPE_ELEMENTS.decode(line).Records
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return _Elements(raws)


def _element_records(elements: _Elements, line: bytes, name: str, position: int,
                     blocks: bool) -> Iterator[RawRecord | LineBlock]:
    """The records of a split container: one RawRecord per element, or with `blocks` one LineBlock of them all
    (an element is one line of JSON text: the line it came from had no newline, and no CR is let through)."""
    raws = elements.raws
    if not raws:
        return
    if blocks and b"\r" not in line:
        yield LineBlock(b"\n".join(raws), name, position, len(raws))
        return
    for offset, raw in enumerate(raws):
        yield RawRecord(bytes(raw), name, position + offset)


def _oversized(start: bytes, origin: str, position: int, size: int, maxlen: int) -> RawRecord:
    reason = f"record of {size} bytes exceeds the {maxlen}-byte record limit; its first {len(start)} bytes are kept"
    return RawRecord(start, origin, position, ReaderRefusal(reason, size))


def _split_lines(stream: Any, maxlen: int, read: OriginRead, *, blocks: bool = False) -> Iterator[tuple[bytes, int]]:
    """(line, 0) for each non-blank line, or (its first bytes, its size) for a line longer than maxlen; with
    `blocks`, (lines, -count) for runs of a chunk's complete lines that qualify as a LineBlock (_blocks_and_lines).

    Lines are cut out of 1 MiB chunks with bytes.split (C speed); a line spanning chunks is gathered in parts
    (no quadratic re-copying), and a line beyond maxlen is not gathered at all, only measured. Sizes do not
    count the line's CR.
    """
    read_chunk = stream.read
    gather = maxlen + 1  # a line's CR is dropped after it is gathered, so gather one byte more than the limit
    parts: list[bytes] = []  # the unfinished line, across chunks (only its first bytes once it is oversized)
    pending = 0  # the unfinished line's full length so far; 0 when there is none
    ends_cr = False  # the unfinished line's last byte is a CR
    nbytes = 0
    space = _SPACE
    while True:
        try:
            chunk = read_chunk(CHUNK)
        except Exception as exc:  # deliver what came before; the container reports the failure
            read.bytes += nbytes
            if pending:
                yield from _finish(parts, pending, ends_cr, maxlen, space)
            raise _StreamBroken(read.bytes, exc) from exc
        if not chunk:
            break
        nbytes += len(chunk)
        last = chunk.rfind(b"\n") if blocks else -1
        if last >= 0:
            if not pending:
                body = chunk[:last]
            else:  # the chunk's first line ends the unfinished one
                first = chunk.find(b"\n")
                head = chunk[:first]
                pending = _extend(parts, pending, head, gather)
                if head:
                    ends_cr = head.endswith(b"\r")
                if pending <= maxlen:  # gathered whole: it leads the block (one copy: join takes a view)
                    parts.append(memoryview(chunk)[first:last])
                    body = b"".join(parts)
                else:
                    yield from _finish(parts, pending, ends_cr, maxlen, space)
                    body = chunk[first + 1:last]
                parts = []
                pending = 0
            if body:
                yield from _blocks_and_lines(body, maxlen, space)
            tail = chunk[last + 1:]
            if tail:
                pending = _extend(parts, 0, tail, gather)
                ends_cr = tail.endswith(b"\r")
            continue
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if pending:
            if not lines:  # no newline in this chunk: the unfinished line goes on
                pending = _extend(parts, pending, tail, gather)
                ends_cr = tail.endswith(b"\r")
                continue
            head = lines[0]
            pending = _extend(parts, pending, head, gather)
            if head:
                ends_cr = head.endswith(b"\r")
            yield from _finish(parts, pending, ends_cr, maxlen, space)
            parts = []
            pending = 0
            lines[0] = b""
        yield from _each_line(lines, b"\r" in chunk, maxlen, space)
        if tail:
            pending = _extend(parts, 0, tail, gather)
            ends_cr = tail.endswith(b"\r")
    read.bytes += nbytes
    if pending:
        yield from _finish(parts, pending, ends_cr, maxlen, space)


def _each_line(lines: list[bytes], crlf: bool, maxlen: int, space: frozenset[int]) -> Iterator[tuple[bytes, int]]:
    """_split_lines' items for complete lines (CR dropped, blank lines skipped, oversized ones measured)."""
    for line in lines:
        if crlf and line.endswith(b"\r"):
            line = line[:-1]
        if not line or (line[0] in space and line.isspace()):
            continue
        if len(line) > maxlen:
            yield line[:OVERSIZED_KEEP], len(line)
            continue
        yield line, 0


def _blocks_and_lines(body: bytes, maxlen: int, space: frozenset[int]) -> Iterator[tuple[bytes, int]]:
    """_split_lines' items for `body` (complete lines, without the last newline): each run of lines that are
    plain JSON-lines records as one (lines, -count) item, the other lines one by one as _each_line gives them
    (blank or whitespace-led lines, arrays and `{"Records"` envelopes to expand, lines longer than maxlen).
    CRLF line ends are dropped first, as line-by-line reading drops them. Vectorised: ~0.2 µs a line."""
    if b"\r" in body:
        plain = body.replace(b"\r\n", b"\n")
        if b"\r" in plain:  # a CR inside a line: line by line, which keeps it
            yield from _each_line(body.split(b"\n"), True, maxlen, space)
            return
        body = plain
    text = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(text == 0x0A)
    starts = np.concatenate((np.zeros(1, dtype=newlines.dtype), newlines + 1))
    ends = np.append(newlines, len(text))
    first = text[np.minimum(starts, len(text) - 1)]
    odd = (starts == ends) | _NOT_BLOCK_START[first]
    if len(body) > maxlen:
        odd |= ends - starts > maxlen
    # `{"R...` lines, then the exact prefix of the few that are
    near = np.minimum(starts + 2, len(text) - 1)
    for line in np.flatnonzero((first == 0x7B) & (text[near] == 0x52) & (text[near - 1] == 0x22)).tolist():
        if body.startswith(b'{"Records"', int(starts[line])):
            odd[line] = True
    run = 0  # the first line of the current run of plain lines
    for line in [*np.flatnonzero(odd).tolist(), len(starts)]:
        if line > run:
            yield body[starts[run]:ends[line - 1]], run - line
        if line < len(starts):
            yield from _each_line([body[starts[line]:ends[line]]], False, maxlen, space)
        run = line + 1


def _extend(parts: list[bytes], pending: int, more: bytes, gather: int) -> int:
    """Add `more` to an unfinished line; past `gather` bytes only its first OVERSIZED_KEEP bytes are kept."""
    size = pending + len(more)
    if size <= gather:
        parts.append(more)
    elif pending <= gather:  # it just became oversized: keep the start, drop the rest as it comes
        kept = b"".join(parts) + more[: max(0, OVERSIZED_KEEP - pending)]
        parts[:] = [kept[:OVERSIZED_KEEP]]
    return size


def _finish(parts: list[bytes], size: int, ends_cr: bool, maxlen: int,
            space: frozenset[int]) -> Iterator[tuple[bytes, int]]:
    """The line gathered across chunks, as _split_lines yields it."""
    line = b"".join(parts)
    if size > maxlen + 1:  # only its start was kept
        yield line[:OVERSIZED_KEEP], size - ends_cr
        return
    yield from _each_line([line], ends_cr, maxlen, space)


def _byte_at(chunks: list[bytes], offset: int) -> int:
    for chunk in chunks:
        if offset < len(chunk):
            return chunk[offset]
        offset -= len(chunk)
    raise IndexError(offset)


def _find_newline(chunks: list[bytes], start: int) -> int:
    """Offset (in the joined chunks) of the first newline at or after start, or -1."""
    base = 0
    for chunk in chunks:
        if start < base + len(chunk):
            found = chunk.find(b"\n", max(0, start - base))
            if found >= 0:
                return base + found
        base += len(chunk)
    return -1


def _slice(chunks: list[bytes], start: int, end: int) -> bytes:
    if len(chunks) == 1:
        return chunks[0][start:end]
    return b"".join(chunks)[start:end]
