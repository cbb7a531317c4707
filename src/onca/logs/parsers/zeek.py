"""The native Zeek parser: Zeek logs in their tab-separated form (with # headers) or as JSON lines.

TSV files start with directives: `#separator \\x09`, `#set_separator ,`, `#empty_field (empty)`,
`#unset_field -`, `#path dns`, `#fields ts uid id.orig_h ...`, `#types time string addr ...`. They are
remembered per origin and returned as None (not events). On data lines the unset marker (`-`) is absent,
the empty marker (`(empty)`) an empty set, and set/vector columns become lists. When the file's `#path`
(or a JSON line's `_path`) is known, it must match the log type (Zeek.DNS reads dns logs only), so the
classifier can tell a conn.log from a dns.log by its header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onca.logs.model import NOT_DECODED, ParseError, RawRecord
from onca.logs.parsers.common import PerOrigin, text_of
from onca.logs.parsers.json import JsonParser


@dataclass(slots=True)
class _Header:
    separator: str = "\t"
    set_separator: str = ","
    empty: str = "(empty)"
    unset: str = "-"
    path: str | None = None
    fields: tuple[str, ...] = ()
    containers: frozenset[str] = field(default_factory=frozenset)  # set[...] / vector[...] columns


def _unescape(text: str) -> str:
    if text.startswith("\\x") and len(text) == 4:
        return chr(int(text[2:], 16))
    return text


class ZeekParser:
    def __init__(self, log_type: str = "") -> None:
        # Zeek.DNS -> dns, Zeek.Conn -> conn; empty when the log type does not name a Zeek path.
        self.path = log_type.split(".", 1)[1].lower() if log_type.startswith("Zeek.") else ""
        self.headers: PerOrigin[_Header] = PerOrigin()
        self.json = JsonParser()

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        if record.value is not NOT_DECODED or record.data[:1] == b"{":
            event = self.json.parse(record)
            logged = event.get("_path") if event is not None else None
            if self.path and type(logged) is str and logged != self.path:
                raise ParseError(f"a Zeek {logged} record, not {self.path}")
            return event
        line = text_of(record)
        if line.startswith("#"):
            self._directive(record.origin, line)
            return None
        header = self.headers.get(record.origin)
        if header is None or not header.fields:
            raise ParseError("a Zeek TSV line before any #fields header in this file")
        if self.path and header.path and header.path != self.path:
            raise ParseError(f"a Zeek {header.path} log (#path {header.path}), not {self.path}")
        values = line.split(header.separator)
        if len(values) != len(header.fields):
            raise ParseError(f"field count {len(values)}, expected {len(header.fields)}")
        out: dict[str, Any] = {}
        for name, value in zip(header.fields, values, strict=True):
            if value == header.unset:
                continue
            if name in header.containers:
                out[name] = [] if value == header.empty else value.split(header.set_separator)
            elif value != header.empty:
                out[name] = value
        return out

    def _directive(self, origin: str, line: str) -> None:
        header = self.headers.get(origin)
        if header is None:
            header = _Header()
            self.headers.set(origin, header)
        if line.startswith("#separator "):
            header.separator = _unescape(line[len("#separator "):].strip())
            return
        name, _, value = line[1:].partition(header.separator)
        if name == "set_separator":
            header.set_separator = value
        elif name == "empty_field":
            header.empty = value
        elif name == "unset_field":
            header.unset = value
        elif name == "path":
            header.path = value
        elif name == "fields":
            header.fields = tuple(value.split(header.separator))
        elif name == "types":
            types = value.split(header.separator)
            header.containers = frozenset(
                column for column, kind in zip(header.fields, types, strict=False)
                if kind.startswith(("set[", "vector["))
            )
