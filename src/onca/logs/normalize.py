"""Normalisation: one parsed event (a dict) into a typed row with the standard p_ fields.

A schema is compiled once into converter closures: for each object, a dict from field name to
(converter, nested?) so one pass over the event's own keys converts what the schema declares and skips
the rest. A converter returns the typed value, None for "absent" (null, or "" where the type is not
string), raises Drift when the value does not fit (the row keeps going and p_nonconforming records the
original value and why), or ParseError when the record cannot be this log type (a required field is
missing or unusable, a `validate` rule refuses a value) so the classifier tries the next type or
quarantines the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from onca.logs.indicators import INDICATOR_FIELDS, combined_scanner
from onca.logs.model import ParseError, RawRecord, Source
from onca.logs.timeformats import json_kind, time_parser

_INT_RANGES = {"int": (-(2**63), 2**63 - 1), "bigint": (-(2**63), 2**63 - 1), "smallint": (-(2**15), 2**15 - 1)}
# Go's strconv.ParseBool spellings, which Panther accepts for boolean fields given as text.
_BOOL_TEXT = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
              "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}
_EMPTY_INDICATORS = dict.fromkeys(INDICATOR_FIELDS)


class Drift(Exception):
    """A value that does not fit its declared type; the reason ends up in p_nonconforming."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Context:
    """What one row's conversion collects besides the values: indicator pairs and misfits."""

    __slots__ = ("drift", "found")

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []
        self.drift: dict[str, dict[str, Any]] | None = None

    def misfit(self, path: str, value: Any, reason: str) -> None:
        if self.drift is None:
            self.drift = {}
        self.drift[path] = {"value": value, "reason": reason}


Converter = Callable[[Any, Context, str], Any]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    return f"a JSON {json_kind(value)}"


# ---- scalar converters -------------------------------------------------------------------------------


def _string_from(value: Any) -> str:
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return orjson.dumps(value).decode()
    raise Drift(f"expected a string, got {_kind(value)}")


def _plain_string(value: Any, ctx: Context, path: str) -> Any:
    return value if type(value) is str else _string_from(value)


_STR: Any = object()
"""Table marker for a string field without indicators or validation: the object converter stores str values
inline, saving a call per field on the hot path."""


_SCAN: Any = object()
"""Table marker for a string field with indicators, handled inline by the object converter."""


def _string(name: str, spec: dict[str, Any]) -> Converter:
    indicators = spec.get("indicators")
    rules = spec.get("validate")
    if not indicators and rules is None:
        return _STR
    allow = frozenset(rules["allow"]) if rules and "allow" in rules else None
    deny = frozenset(rules["deny"]) if rules and "deny" in rules else None
    scan = combined_scanner(indicators or [])
    cache = scan.cache  # type: ignore[attr-defined]  # read directly: one dict lookup per value seen before

    if rules is None:
        def scanned(value: Any, ctx: Context, path: str) -> Any:
            if type(value) is not str:
                value = _string_from(value)
            if value:
                found = cache.get(value)
                if found is None:
                    found = scan(value)
                if found:
                    ctx.found.extend(found)
            return value

        return scanned

    def convert(value: Any, ctx: Context, path: str) -> Any:
        if type(value) is not str:
            value = _string_from(value)
        if allow is not None and value not in allow:
            raise ParseError(f"field {_join(path, name)}: {value!r} is not one of the allowed values "
                             f"({', '.join(sorted(allow))})")
        if deny is not None and value in deny:
            raise ParseError(f"field {_join(path, name)}: {value!r} is a denied value")
        if indicators and value:
            found = scan(value)
            if found:
                ctx.found.extend(found)
        return value

    return convert


def _integer(kind_name: str) -> Converter:
    low, high = _INT_RANGES[kind_name]

    def convert(value: Any, ctx: Context, path: str) -> Any:
        kind = type(value)
        if kind is int:
            number = value
        elif kind is str:
            text = value.strip()
            if not text:
                return None
            try:
                number = int(text, 10)
            except ValueError:
                try:
                    real = float(text)
                except ValueError:
                    raise Drift(f"{value!r} is not an integer") from None
                if not real.is_integer():
                    raise Drift(f"{value!r} is not an integer") from None
                number = int(real)
        elif kind is float:
            if not value.is_integer():
                raise Drift(f"{value!r} is not an integer")
            number = int(value)
        else:
            raise Drift(f"expected an integer, got {_kind(value)}")
        if number < low or number > high:
            raise Drift(f"{number} is out of the {kind_name} range {low}..{high}")
        return number

    return convert


def _float(value: Any, ctx: Context, path: str) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    if kind is str:
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise Drift(f"{value!r} is not a number") from None
    raise Drift(f"expected a number, got {_kind(value)}")


def _boolean(value: Any, ctx: Context, path: str) -> Any:
    kind = type(value)
    if kind is bool:
        return value
    if kind is str:
        text = value.strip()
        if not text:
            return None
        if text in _BOOL_TEXT:
            return _BOOL_TEXT[text]
        raise Drift(f"{value!r} is not true or false")
    if kind is int and value in (0, 1):
        return value == 1
    raise Drift(f"expected true or false, got {_kind(value)}")


def _timestamp(spec: dict[str, Any]) -> Converter:
    parse = time_parser(spec["timeFormat"])

    def convert(value: Any, ctx: Context, path: str) -> Any:
        if value == "":
            return None
        try:
            return parse(value)
        except ValueError as err:
            raise Drift(str(err)) from None

    return convert


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as err:
        raise Drift(f"not representable as JSON: {err}") from None


def _embedded(value: Any) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as err:
        raise Drift(f"embedded JSON text does not parse: {err.msg} at byte {err.pos}") from None


def _json(spec: dict[str, Any]) -> Converter:
    embedded = spec.get("isEmbeddedJSON", False)

    def convert(value: Any, ctx: Context, path: str) -> Any:
        if embedded and type(value) is str:
            if not value.strip():
                return None
            _embedded(value)
            return value
        return _dumps(value)

    return convert


# ---- containers ---------------------------------------------------------------------------------------


class Compiler:
    """Turns validated field specs into converters, resolving `ref`s against the schema's definitions."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    def resolve(self, spec: dict[str, Any]) -> dict[str, Any]:
        while spec["type"] == "ref":
            spec = self.definitions[spec["target"]]
        return spec

    def value(self, name: str, spec: dict[str, Any]) -> tuple[Converter, bool]:
        """(converter, whether it needs its own path: objects and arrays report misfits below themselves)."""
        spec = self.resolve(spec)
        kind = spec["type"]
        if kind == "string":
            return _string(name, spec), False
        if kind in _INT_RANGES:
            return _integer(kind), False
        if kind == "float":
            return _float, False
        if kind == "boolean":
            return _boolean, False
        if kind == "timestamp":
            return _timestamp(spec), False
        if kind == "json":
            return _json(spec), False
        if kind == "object":
            return self.object(spec["fields"], embedded=spec.get("isEmbeddedJSON", False)), True
        if kind == "array":
            return self.array(name, spec), True
        raise AssertionError(f"unvalidated type {kind!r}")

    def object(self, fields: list[dict[str, Any]], *, embedded: bool = False, root: bool = False) -> Converter:
        table: dict[str, Converter] = {}
        nested: set[str] = set()
        # String fields with indicators (and no validation) are handled inline too: the converter is kept for
        # non-string values, the scanner's cache is read directly.
        scanned: dict[str, tuple[dict[str, Any], Callable[[str], Any], Converter]] = {}
        for field in fields:
            table[field["name"]], needs_path = self.value(field["name"], field)
            if needs_path:
                nested.add(field["name"])
            spec = self.resolve(field)
            if spec["type"] == "string" and spec.get("indicators") and "validate" not in spec:
                scan = combined_scanner(spec["indicators"])
                scanned[field["name"]] = (scan.cache, scan, table[field["name"]])  # type: ignore[attr-defined]
                table[field["name"]] = _SCAN
        required = tuple(field["name"] for field in fields if field.get("required"))
        required_set = frozenset(required)

        def convert(value: Any, ctx: Context, path: str) -> Any:
            if type(value) is not dict:
                if embedded and type(value) is str:
                    if not value.strip():
                        return None
                    value = _embedded(value)
                if type(value) is not dict:
                    raise Drift(f"expected an object, got {_kind(value)}")
            out: dict[str, Any] = {}
            for key, item in value.items():
                conv = table.get(key)
                if conv is None:
                    continue
                if conv is _STR:
                    if type(item) is str:
                        out[key] = item
                        continue
                    conv = _plain_string
                elif conv is _SCAN:
                    cache, scan, conv = scanned[key]
                    if type(item) is str:
                        out[key] = item
                        if item:
                            found = cache.get(item)
                            if found is None:
                                found = scan(item)
                            if found:
                                ctx.found.extend(found)
                        continue
                if item is None:
                    continue
                try:
                    converted = conv(item, ctx, (f"{path}.{key}" if path else key) if key in nested else path)
                except Drift as drift:
                    if key in required_set:
                        raise ParseError(f"required field {_join(path, key)}: {drift.reason}") from None
                    ctx.misfit(_join(path, key), item, drift.reason)
                    continue
                if converted is not None:
                    out[key] = converted
            if required:
                for key in required:
                    if key not in out:
                        raise ParseError(f"required field {_join(path, key)} is missing")
            if root or out:
                return out
            return None

        return convert

    def array(self, name: str, spec: dict[str, Any]) -> Converter:
        element, nested = self.value(name, spec["element"])
        if element is _STR:
            element = _plain_string
        embedded = spec.get("isEmbeddedJSON", False)

        def convert(value: Any, ctx: Context, path: str) -> Any:
            if type(value) is not list:
                if embedded and type(value) is str:
                    if not value.strip():
                        return None
                    value = _embedded(value)
                if type(value) is not list:
                    raise Drift(f"expected an array, got {_kind(value)}")
            out: list[Any] = []
            for index, item in enumerate(value):
                if item is None:
                    out.append(None)
                    continue
                try:
                    out.append(element(item, ctx, f"{path}[{index}]" if nested else path))
                except Drift as drift:
                    ctx.misfit(f"{path}[{index}]", item, drift.reason)
                    out.append(None)
            return out

        return convert


def event_time_paths(fields: list[dict[str, Any]], compiler: Compiler,
                     prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the isEventTime fields in declaration order (arrays excluded by validation)."""
    paths: list[tuple[str, ...]] = []
    for field in fields:
        spec = compiler.resolve(field)
        if spec["type"] == "timestamp" and spec.get("isEventTime"):
            paths.append((*prefix, field["name"]))
        elif spec["type"] == "object":
            paths.extend(event_time_paths(spec["fields"], compiler, (*prefix, field["name"])))
    return paths


def row_id_prefix(source_id: str, origin: str) -> str:
    """The first half of the p_row_id of every record of (source, origin): 64 bits of BLAKE2b."""
    key = f"{source_id}\x00{origin}".encode("utf-8", "surrogateescape")
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def row_id(source_id: str, origin: str, position: int) -> str:
    """32 hex digits: a digest of (source, origin) and the record's position in its origin. The same record
    always gets the same id; records of one origin never collide, and the digest is computed once per origin."""
    return f"{row_id_prefix(source_id, origin)}{position:016x}"


class Normalizer:
    """A compiled schema: `normalize(event, ...)` returns the row or raises ParseError."""

    def __init__(self, log_type: str, fields: list[dict[str, Any]], definitions: dict[str, Any]) -> None:
        compiler = Compiler(definitions)
        self.log_type = log_type
        self._root = compiler.object(fields, root=True)
        self._event_times = event_time_paths(fields, compiler)

    def normalize(self, event: dict[str, Any], *, source: Source, record: RawRecord,
                  parse_time: datetime) -> dict[str, Any]:
        ctx = Context()
        try:
            row: dict[str, Any] = self._root(event, ctx, "")
        except Drift as drift:
            raise ParseError(drift.reason) from None
        event_time = None
        for path in self._event_times:
            if len(path) == 1:
                event_time = row.get(path[0])
            else:
                node: Any = row
                for key in path:
                    node = node.get(key) if type(node) is dict else None
                event_time = node
            if event_time is not None:
                break
        row["p_log_type"] = self.log_type
        row["p_event_time"] = event_time or parse_time
        row["p_parse_time"] = parse_time
        row["p_row_id"] = row_id(source.id, record.origin, record.position)
        row["p_source_id"] = source.id
        row["p_source_label"] = source.label
        row.update(_EMPTY_INDICATORS)
        if ctx.found:
            grouped: dict[str, list[str]] = {}
            for column, value in dict.fromkeys(ctx.found):  # pairs deduplicated, first-seen order
                values = grouped.get(column)
                if values is None:
                    grouped[column] = [value]
                else:
                    values.append(value)
                    values.sort()
            row.update(grouped)
        row["p_nonconforming"] = (orjson.dumps(ctx.drift, default=repr, option=orjson.OPT_SORT_KEYS).decode()
                                  if ctx.drift else None)
        return row
