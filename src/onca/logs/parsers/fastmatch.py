"""The fastmatch parser: `%{field}` patterns, tried in order; the first that matches the whole line wins."""

from __future__ import annotations

from typing import Any

from onca.logs.model import ParseError, RawRecord
from onca.logs.parsers.common import text_of
from onca.logs.parsers.patterns import compile_fastmatch


class FastmatchParser:
    def __init__(self, options: dict[str, Any]) -> None:
        self.patterns = [compile_fastmatch(pattern) for pattern in options["match"]]
        self.empty = frozenset(options.get("emptyValues", ()))
        self.trim = options.get("trimSpace", False)

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        line = text_of(record)
        for regex, fields in self.patterns:
            match = regex.fullmatch(line)
            if match is None:
                continue
            out: dict[str, Any] = {}
            for name, value in zip(fields, match.groups(), strict=True):
                if name is None:
                    continue
                if self.trim:
                    value = value.strip()
                if value not in self.empty:
                    out[name] = value
            return out
        if len(self.patterns) == 1:
            raise ParseError("no match for pattern")
        raise ParseError(f"no match for any of the {len(self.patterns)} patterns")
