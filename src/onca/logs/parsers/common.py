"""What the text parsers share: decoding a record's bytes into one line, and per-file state."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

from onca.logs.model import NOT_DECODED, ParseError, RawRecord

T = TypeVar("T")
_MAX_ORIGINS = 4096


def text_of(record: RawRecord) -> str:
    """The record as one line of text, without its line ending.

    Invalid UTF-8 is replaced (U+FFFD) instead of refused: text logs carry attack payloads and mixed
    encodings, and a row with a replacement character is worth more than a quarantined line.
    """
    value = record.value
    if value is not NOT_DECODED:
        if type(value) is str:
            return value.rstrip("\r\n")
        raise ParseError(f"a decoded JSON {type(value).__name__}, not a line of text")
    text = record.data.decode("utf-8", "replace").rstrip("\r\n")
    if "\x00" in text:
        raise ParseError("binary data (a NUL byte), not a line of text")
    return text


class PerOrigin(Generic[T]):
    """State kept per origin (e.g. a file's header columns), bounded so a long-lived parser stays small."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, origin: str) -> T | None:
        return self._items.get(origin)

    def set(self, origin: str, value: T) -> None:
        self._items[origin] = value
        self._items.move_to_end(origin)
        while len(self._items) > _MAX_ORIGINS:
            self._items.popitem(last=False)


def clean(values: dict[str, Any], empty: frozenset[str], trim: bool) -> dict[str, Any]:
    """Apply trimSpace and emptyValues to text fields."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if trim:
            value = value.strip()
        if value in empty:
            continue
        out[key] = value
    return out
