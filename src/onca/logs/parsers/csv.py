"""The csv parser: delimited text with columns from the schema or from each file's header line."""

from __future__ import annotations

import csv
from typing import Any

from onca.logs.model import ParseError, RawRecord
from onca.logs.parsers.common import PerOrigin, clean, text_of

_DELIMITERS = {"tab": "\t", "\\t": "\t", "space": " "}


class CsvParser:
    def __init__(self, options: dict[str, Any]) -> None:
        delimiter = options.get("delimiter", ",")
        self.delimiter = _DELIMITERS.get(delimiter, delimiter)
        self.has_header = options.get("hasHeader", False)
        self.columns: tuple[str, ...] | None = tuple(options["columns"]) if options.get("columns") else None
        self.skip_prefix: str = options.get("skipPrefix", "")
        self.empty = frozenset(options.get("emptyValues", ()))
        self.trim = options.get("trimSpace", False)
        self.headers: PerOrigin[tuple[str, ...]] = PerOrigin()

    def _split(self, line: str) -> list[str]:
        try:
            return next(csv.reader([line], delimiter=self.delimiter, strict=True))
        except (csv.Error, StopIteration) as err:
            raise ParseError(f"not {self._name()} text: {err}") from None

    def _name(self) -> str:
        return {",": "comma-separated", "\t": "tab-separated", " ": "space-separated"}.get(
            self.delimiter, f"{self.delimiter!r}-separated")

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        line = text_of(record)
        if self.skip_prefix and line.startswith(self.skip_prefix):
            return None
        if self.has_header and record.position == 0:
            header = tuple(name.strip() for name in self._split(line))
            if self.columns is None:
                self.headers.set(record.origin, header)
            return None
        columns = self.columns or self.headers.get(record.origin)
        if columns is None:
            raise ParseError("no header line was read for this file (hasHeader: its first line names the columns)")
        if not line.strip():
            raise ParseError("empty line")
        values = self._split(line)
        if len(values) != len(columns):
            raise ParseError(f"field count {len(values)}, expected {len(columns)}")
        return clean(dict(zip(columns, values, strict=True)), self.empty, self.trim)
