"""A log type's schema: loaded from YAML, validated, compiled once; it makes parsers and normalises rows.

    schema = load_schema(path, managed=False)       # SchemaError lists every problem, with file and key path
    parser = schema.new_parser()                     # one per (schema, source): parsers keep per-file state
    event = parser.parse(record)                     # dict, None (header/comment) or ParseError
    row = schema.normalize(event, source=..., record=..., parse_time=...)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from onca.detections.yaml_dialect import load_yaml
from onca.logs.indicators import INDICATOR_FIELDS
from onca.logs.model import Parser, RawRecord, Source
from onca.logs.normalize import Compiler, Normalizer
from onca.logs.schema_model import SchemaError, validate_document

__all__ = ["LogSchema", "SchemaError", "check_update", "load_schema", "parse_schema", "table_name"]

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_SCALAR_ARROW = {
    "string": pa.string(),
    "int": pa.int64(),
    "smallint": pa.int16(),
    "bigint": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": _TIMESTAMP,
    "json": pa.string(),
}
STANDARD_FIELDS: tuple[pa.Field, ...] = (
    pa.field("p_log_type", pa.string()),
    pa.field("p_event_time", _TIMESTAMP),
    pa.field("p_parse_time", _TIMESTAMP),
    pa.field("p_row_id", pa.string()),
    pa.field("p_source_id", pa.string()),
    pa.field("p_source_label", pa.string()),
    *(pa.field(name, pa.list_(pa.string())) for name in INDICATOR_FIELDS),
    pa.field("p_nonconforming", pa.string()),
)


def table_name(log_type: str) -> str:
    """AWS.CloudTrail -> aws_cloudtrail."""
    return log_type.lower().replace(".", "_")


class LogSchema:
    """One validated log type schema. `document` is the validated YAML mapping."""

    def __init__(self, document: dict[str, Any], *, path: Path | None = None, managed: bool = False) -> None:
        self.document = document
        self.path = path
        self.managed = managed
        self.name: str = document["schema"]
        self.table_name = table_name(self.name)
        self.description: str = document.get("description", "")
        self.reference_url: str = document.get("referenceURL", "")
        self.fields: list[dict[str, Any]] = document["fields"]
        self.definitions: dict[str, Any] = document.get("definitions", {})
        self.parser_spec: dict[str, Any] = document.get("parser", {})
        self._normalizer = Normalizer(self.name, self.fields, self.definitions)
        self.normalize = self._normalizer.normalize  # bound once: this is on the per-record path
        self._arrow: pa.Schema | None = None

    def __repr__(self) -> str:
        return f"LogSchema({self.name!r})"

    @property
    def parser_kind(self) -> str:
        """json, csv, fastmatch, regex or native:<name>."""
        if not self.parser_spec:
            return "json"
        kind, options = next(iter(self.parser_spec.items()))
        return f"native:{options['name']}" if kind == "native" else kind

    def new_parser(self) -> Parser:
        """A fresh parser; make one per (schema, source) since text parsers remember each file's header."""
        from onca.logs.parsers import build_parser

        return build_parser(self.parser_spec, self.name)

    def normalize_record(self, parser: Parser, record: RawRecord, *, source: Source,
                         parse_time: datetime) -> dict[str, Any] | None:
        """Parse then normalise one record (None for a header or comment line); ParseError if refused."""
        event = parser.parse(record)
        if event is None:
            return None
        return self.normalize(event, source=source, record=record, parse_time=parse_time)

    def arrow_schema(self) -> pa.Schema:
        """The table's columns: the schema's fields, then the standard p_ fields."""
        if self._arrow is None:
            compiler = Compiler(self.definitions)
            columns = [pa.field(field["name"], _arrow_type(field, compiler)) for field in self.fields]
            self._arrow = pa.schema([*columns, *STANDARD_FIELDS])
        return self._arrow


def _arrow_type(spec: dict[str, Any], compiler: Compiler) -> pa.DataType:
    spec = compiler.resolve(spec)
    kind = spec["type"]
    if kind == "object":
        return pa.struct([pa.field(field["name"], _arrow_type(field, compiler)) for field in spec["fields"]])
    if kind == "array":
        return pa.list_(_arrow_type(spec["element"], compiler))
    return _SCALAR_ARROW[kind]


def parse_schema(text: str | bytes, *, origin: str = "<schema>", managed: bool = False,
                 path: Path | None = None) -> LogSchema:
    """A schema from YAML text; SchemaError with every problem (each line starts with `origin`)."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SchemaError([f"{origin}: not valid YAML{where}: {problem}"]) from None
    document = validate_document(data, origin=origin, managed=managed)
    return LogSchema(document, path=path, managed=managed)


def load_schema(path: Path, *, managed: bool = False) -> LogSchema:
    try:
        text = path.read_bytes()
    except OSError as err:
        raise SchemaError([f"{path}: cannot read: {err.strerror or err}"]) from None
    return parse_schema(text, origin=str(path), managed=managed, path=path)


def check_update(old: LogSchema, new: LogSchema) -> list[str]:
    """Why `new` cannot replace `old` (empty when it may): updates may only add fields, as in Panther.

    Each problem names the field's path; a removed (or renamed) field and a changed type are refused, at
    any depth, including array elements and fields reached through `ref`.
    """
    problems: list[str] = []
    if old.name != new.name:
        problems.append(f"schema: the name changed from {old.name} to {new.name}")
    _compare_fields(old.fields, new.fields, "", Compiler(old.definitions), Compiler(new.definitions), problems)
    return problems


def _compare_fields(old: list[dict[str, Any]], new: list[dict[str, Any]], prefix: str, old_c: Compiler,
                    new_c: Compiler, problems: list[str]) -> None:
    after = {field["name"]: field for field in new}
    for field in old:
        path = f"{prefix}{field['name']}"
        if field["name"] not in after:
            problems.append(f"{path}: field removed (a schema update may only add fields)")
            continue
        _compare_values(field, after[field["name"]], path, old_c, new_c, problems)


def _compare_values(old: dict[str, Any], new: dict[str, Any], path: str, old_c: Compiler, new_c: Compiler,
                    problems: list[str]) -> None:
    old, new = old_c.resolve(old), new_c.resolve(new)
    if old["type"] != new["type"]:
        problems.append(f"{path}: type changed from {old['type']} to {new['type']} (a schema update may only "
                        "add fields)")
        return
    if old["type"] == "object":
        _compare_fields(old["fields"], new["fields"], f"{path}.", old_c, new_c, problems)
    elif old["type"] == "array":
        _compare_values(old["element"], new["element"], f"{path}[]", old_c, new_c, problems)
