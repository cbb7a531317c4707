"""The regex parser: named groups fill fields; `patternDefinitions` name reusable %{PATTERN} pieces."""

from __future__ import annotations

from typing import Any

from onca.logs.model import ParseError, RawRecord
from onca.logs.parsers.common import text_of
from onca.logs.parsers.patterns import compile_regex


class RegexParser:
    def __init__(self, options: dict[str, Any]) -> None:
        self.regex = compile_regex(options["match"], options.get("patternDefinitions", {}))
        self.empty = frozenset(options.get("emptyValues", ()))
        self.trim = options.get("trimSpace", False)

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        line = text_of(record)
        match = self.regex.search(line)
        if match is None:
            raise ParseError("no match for pattern")
        out: dict[str, Any] = {}
        for name, value in match.groupdict().items():
            if value is None:
                continue
            if self.trim:
                value = value.strip()
            if value not in self.empty:
                out[name] = value
        return out
