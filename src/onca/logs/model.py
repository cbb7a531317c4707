"""The contracts between log readers, parsers, schemas, the classifier and the lake writer.

A reader turns input (files, archives, streams) into RawRecords; a schema's parser turns one RawRecord
into an event (a dict) or refuses it with a ParseError naming why; the schema normalises the event
into a typed row with the standard p_ fields; the lake writer stores rows, and quarantines what no
parser accepted, raw bytes and every parser's reason included. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

NOT_DECODED: Any = object()
"""RawRecord.value when the reader did not decode the record (it holds bytes to parse)."""


class ParseError(ValueError):
    """A parser does not accept a record; the message is the reason kept in quarantine."""


@dataclass(slots=True)
class RawRecord:
    """One record as read: its bytes, where it came from, and its position there (0-based, deterministic)."""

    data: bytes
    origin: str  # the file path (or archive member, or "-" for stdin) the record was read from
    position: int  # ordinal of the record within origin; with origin and source, identifies it for p_row_id
    value: Any = NOT_DECODED  # the decoded JSON value, when the container already decoded it (e.g. Records[])


@dataclass(slots=True)
class LineBlock:
    """Consecutive records of one origin that are each one line of JSON-lines text, kept as the text itself.

    A reader asked for blocks hands these out instead of one RawRecord per line where that changes nothing:
    record i of the block is line i of `data` (lines joined by b"\\n"; no CR, no blank or whitespace-led line,
    no array or envelope line, none over the record limit) at position `position + i`, exactly the RawRecord the
    line-by-line reading would give. The elements of a one-line array or envelope come as a block too, one
    element's text a line, as the RawRecords reading without blocks gives them. Bulk parsers take the text
    whole; `records()` gives the RawRecords.
    """

    data: bytes
    origin: str
    position: int
    count: int

    def records(self) -> list[RawRecord]:
        origin, start = self.origin, self.position
        return [RawRecord(line, origin, start + i) for i, line in enumerate(self.data.split(b"\n"))]


@dataclass(slots=True)
class Source:
    """Where records come from: a configured source, or the one `onca ingest` names."""

    id: str
    label: str
    log_types: list[str] = field(default_factory=list)


class Parser(Protocol):
    """Turns one record into an event dict, or None for a line that is not an event (a header, a comment)."""

    def parse(self, record: RawRecord) -> dict[str, Any] | None: ...


@dataclass(slots=True)
class QuarantinedRecord:
    """A record no candidate parser accepted, kept whole with each parser's reason."""

    source: Source
    record: RawRecord
    reasons: dict[str, str]  # log type -> why its parser refused the record
