"""Timestamp parsing for the `timeFormat` of timestamp fields: every result is a tz-aware UTC datetime.

Built-in formats: rfc3339, unix, unix_ms, unix_us, unix_ns (seconds/ms/µs/ns since the epoch, as a number
or numeric text, fractions allowed) and cloudflare (RFC 3339 text or an integer of nanoseconds); otherwise
a strftime pattern (it must hold a %-directive) or a Go reference layout written `layout=2006-01-02 ...`,
translated once into strftime. Time is kept to the microsecond (Arrow's timestamp[us]); finer digits are cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUILTIN_FORMATS = ("rfc3339", "unix", "unix_ms", "unix_us", "unix_ns", "cloudflare")
_UNIX_SCALE = {"unix": 1_000_000, "unix_ms": 1_000, "unix_us": 1, "unix_ns": 0}  # 0: divide by 1000
_FRACTION = re.compile(r"(\.\d{6})\d+")
_STRFTIME_DIRECTIVE = re.compile(r"%[a-zA-Z]")

TimeParser = Callable[[Any], datetime]


class TimeFormatError(ValueError):
    """A timeFormat that cannot be used (raised while compiling a schema)."""


def parse_rfc3339(value: Any) -> datetime:
    if type(value) is not str:
        raise ValueError(f"expected RFC 3339 text, got a JSON {json_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # a timestamp without an offset is taken as UTC
    return parsed.astimezone(UTC)


def _unix(scale: int, name: str) -> TimeParser:
    def parse(value: Any) -> datetime:
        kind = type(value)
        try:
            if kind is int:
                micros = value * scale if scale else value // 1000
            elif kind is float:
                micros = round(value * scale) if scale else round(value / 1000)
            elif kind is str:
                number = Decimal(value.strip())
                micros = int(number * scale) if scale else int(number / 1000)
            else:
                raise ValueError(f"expected a number of {_UNIT[name]}, got a JSON {json_kind(value)}")
            return EPOCH + timedelta(microseconds=micros)
        except (InvalidOperation, ArithmeticError):
            raise ValueError(f"{value!r} is not a number of {_UNIT[name]}") from None
        except OverflowError:
            raise ValueError(f"{value!r} {_UNIT[name]} is out of the datetime range") from None

    return parse


_UNIT = {"unix": "seconds", "unix_ms": "milliseconds", "unix_us": "microseconds", "unix_ns": "nanoseconds"}


def _cloudflare() -> TimeParser:
    nanos = _unix(0, "unix_ns")

    def parse(value: Any) -> datetime:
        if type(value) is str and not value.strip().lstrip("-").isdigit():
            return parse_rfc3339(value)
        return nanos(value)

    return parse


def _strptime(pattern: str, trim_fraction: bool) -> TimeParser:
    def parse(value: Any) -> datetime:
        if type(value) is not str:
            raise ValueError(f"expected text in the format {pattern!r}, got a JSON {json_kind(value)}")
        text = _FRACTION.sub(r"\1", value) if trim_fraction else value
        try:
            parsed = datetime.strptime(text.strip(), pattern)
        except ValueError:
            raise ValueError(f"{value!r} does not match the time format {pattern!r}") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)

    return parse


# Go reference-time tokens, longest first where one is a prefix of another.
_GO_TOKENS: tuple[tuple[str, str], ...] = (
    ("January", "%B"), ("Jan", "%b"), ("Monday", "%A"), ("Mon", "%a"), ("MST", "%Z"),
    ("2006", "%Y"), ("Z07:00", "%z"), ("Z0700", "%z"), ("-07:00", "%z"), ("-0700", "%z"), ("-07", "%z"),
    ("002", "%j"), ("06", "%y"), ("01", "%m"), ("02", "%d"), ("_2", "%d"), ("15", "%H"), ("03", "%I"),
    ("04", "%M"), ("05", "%S"), ("PM", "%p"), ("pm", "%p"), ("1", "%m"), ("2", "%d"), ("3", "%I"),
    ("4", "%M"), ("5", "%S"),
)
_GO_FRACTION = re.compile(r"[.,](0+|9+)")


def go_layout_to_strftime(layout: str) -> str:
    """Translate a Go time layout (reference time Mon Jan 2 15:04:05 MST 2006) into a strptime pattern."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        fraction = _GO_FRACTION.match(layout, i)
        if fraction and i > 0 and layout[i - 1].isdigit():
            out.append(".%f")
            i = fraction.end()
            continue
        for token, directive in _GO_TOKENS:
            if layout.startswith(token, i):
                out.append(directive)
                i += len(token)
                break
        else:
            out.append("%%" if layout[i] == "%" else layout[i])
            i += 1
    return "".join(out)


def time_parser(time_format: str) -> TimeParser:
    """The parser for one timeFormat; TimeFormatError if the format itself is unusable."""
    if time_format == "rfc3339":
        return parse_rfc3339
    if time_format in _UNIX_SCALE:
        return _unix(_UNIX_SCALE[time_format], time_format)
    if time_format == "cloudflare":
        return _cloudflare()
    if time_format.startswith("layout="):
        layout = time_format[len("layout="):]
        pattern = go_layout_to_strftime(layout)
        if not _STRFTIME_DIRECTIVE.search(pattern):
            raise TimeFormatError(f"layout {layout!r} holds no element of Go's reference time "
                                  "(Mon Jan 2 15:04:05 MST 2006)")
        return _strptime(pattern, trim_fraction=True)
    if not _STRFTIME_DIRECTIVE.search(time_format):
        raise TimeFormatError(f"{time_format!r} is not one of {', '.join(BUILTIN_FORMATS)}, a strftime pattern "
                              "(with %-directives such as %Y-%m-%d %H:%M:%S) or layout=<Go layout>")
    try:
        datetime.now(UTC).strftime(time_format)
    except ValueError as err:
        raise TimeFormatError(f"{time_format!r} is not a valid strftime pattern: {err}") from None
    return _strptime(time_format, trim_fraction="%f" in time_format)


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if type(value) in (int, float):
        return "number"
    if type(value) is str:
        return "string"
    if type(value) is list:
        return "array"
    if type(value) is dict:
        return "object"
    return type(value).__name__

