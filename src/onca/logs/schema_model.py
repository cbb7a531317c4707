"""The log schema YAML format (Panther's custom-schema format) and its validation.

Validation has two passes. Pydantic checks the structure in strict mode with unknown keys refused, so a
typo or a quoted boolean is reported at its key path with the keys allowed there. A second pass checks
what a TypedDict cannot express: which keys belong to which field type, names, time formats, indicator
names, references, parser options. Every message names the file, the key path (with the field's dotted
name) and what is allowed.
"""

from __future__ import annotations

import re
from typing import Any, NotRequired, Required

from pydantic import ConfigDict, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from onca.detections.schemas_messages import path_text, show, validation_messages
from onca.logs.indicators import SCANNERS
from onca.logs.timeformats import TimeFormatError, time_parser

_FORBID = ConfigDict(extra="forbid", strict=True)

SCALAR_TYPES = ("string", "int", "smallint", "bigint", "float", "boolean", "timestamp", "json")
TYPES = (*SCALAR_TYPES, "object", "array", "ref")
SCHEMA_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+(\.[A-Z][A-Za-z0-9]+)*\Z")
DEFINITION_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+\Z")
# Field names become column names: JSON keys as logs spell them (Zeek's id.orig_h, Logstash's @timestamp).
FIELD_NAME = re.compile(r"^[A-Za-z_@$][A-Za-z0-9_.@$:-]*\Z")
NATIVE_PARSERS: tuple[str, ...] = ("AWS.ALB", "AWS.S3ServerAccess", "AWS.VPCFlow", "Syslog.RFC3164", "Syslog.RFC5424",
                                   "Zeek")
_TYPE_KEYS = {
    "object": {"fields", "isEmbeddedJSON"},
    "array": {"element", "isEmbeddedJSON"},
    "json": {"isEmbeddedJSON"},
    "timestamp": {"timeFormat", "isEventTime"},
    "string": {"indicators", "validate"},
    "ref": {"target"},
}
_TYPE_REQUIRES = {"object": "fields", "array": "element", "timestamp": "timeFormat", "ref": "target"}
_OPTIONAL_KEYS = ("fields", "element", "indicators", "validate", "timeFormat", "isEventTime", "target",
                  "isEmbeddedJSON")


@with_config(_FORBID)
class Validate(TypedDict, total=False):
    allow: list[StrictStr]
    deny: list[StrictStr]


@with_config(_FORBID)
class ValueSchema(TypedDict, total=False):
    type: Required[StrictStr]
    description: StrictStr
    fields: list[FieldSchema]
    element: ValueSchema
    indicators: list[StrictStr]
    validate: Validate
    timeFormat: StrictStr
    isEventTime: StrictBool
    target: StrictStr
    isEmbeddedJSON: StrictBool


@with_config(_FORBID)
class FieldSchema(ValueSchema, total=False):
    name: Required[StrictStr]
    required: StrictBool


@with_config(_FORBID)
class CsvParser(TypedDict, total=False):
    delimiter: StrictStr
    hasHeader: StrictBool
    columns: list[StrictStr]
    skipPrefix: StrictStr
    emptyValues: list[StrictStr]
    trimSpace: StrictBool


@with_config(_FORBID)
class FastmatchParser(TypedDict, total=False):
    match: Required[list[StrictStr]]
    emptyValues: list[StrictStr]
    trimSpace: StrictBool


@with_config(_FORBID)
class RegexParser(TypedDict, total=False):
    match: Required[list[StrictStr]]
    patternDefinitions: dict[StrictStr, StrictStr]
    emptyValues: list[StrictStr]
    trimSpace: StrictBool


@with_config(_FORBID)
class NativeParser(TypedDict):
    name: StrictStr


@with_config(_FORBID)
class ParserSpec(TypedDict, total=False):
    native: NativeParser
    csv: CsvParser
    fastmatch: FastmatchParser
    regex: RegexParser


@with_config(_FORBID)
class SchemaDocument(TypedDict):
    version: StrictInt
    schema: StrictStr
    description: NotRequired[StrictStr]
    referenceURL: NotRequired[StrictStr]
    parser: NotRequired[ParserSpec]
    definitions: NotRequired[dict[StrictStr, ValueSchema]]
    fields: list[FieldSchema]


_ADAPTER = TypeAdapter(SchemaDocument)


class SchemaError(ValueError):
    """A schema file that cannot be used; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def validate_document(data: Any, *, origin: str, managed: bool) -> dict[str, Any]:
    """The document if it is a valid schema, else SchemaError with every problem found."""
    if not isinstance(data, dict):
        raise SchemaError([f"{origin}: expected a mapping with version, schema and fields, got {_kind(data)}"])
    try:
        document: dict[str, Any] = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise SchemaError([f"{origin}: {message}" for _, message in validation_messages(exc, SchemaDocument)]) from None
    problems: list[str] = []
    _Checker(document, problems, managed).run()
    if problems:
        raise SchemaError([f"{origin}: {message}" for message in problems])
    return document


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "an empty document"}.get(
        type(value), f"a {type(value).__name__}")


class _Checker:
    def __init__(self, document: dict[str, Any], problems: list[str], managed: bool) -> None:
        self.document = document
        self.problems = problems
        self.managed = managed
        self.definitions: dict[str, Any] = document.get("definitions", {})

    def error(self, loc: tuple[Any, ...], text: str, name: str | None = None) -> None:
        where = path_text(loc)
        if name:
            where += f" (field {name})"
        self.problems.append(f"{where}: {text}" if where else text)

    def run(self) -> None:
        doc = self.document
        if doc["version"] != 0:
            self.error(("version",), f"must be 0, got {doc['version']}")
        name = doc["schema"]
        if not SCHEMA_NAME.match(name):
            self.error(("schema",), f"{show(name)} is not a valid log type name (dot-separated words, each a capital "
                                    "letter then letters or digits, e.g. Custom.MyApp.Access)")
        elif not self.managed and not name.startswith("Custom."):
            self.error(("schema",), f"{show(name)}: a user schema's name must start with 'Custom.'")
        elif self.managed and name.startswith("Custom."):
            self.error(("schema",), f"{show(name)}: 'Custom.' names are for user schemas, not managed ones")
        for key, value in self.definitions.items():
            if not DEFINITION_NAME.match(key):
                self.error(("definitions", key), "a definition name must be a capital letter then letters or digits")
            self.value(("definitions", key), value, key, in_array=False, refs=(key,))
        self.cycles()
        if not doc["fields"]:
            self.error(("fields",), "must list at least one field")
        self.fields(("fields",), doc["fields"], "", in_array=False, refs=())
        if "parser" in doc:
            self.parser(doc["parser"])

    def cycles(self) -> None:
        def targets(spec: dict[str, Any]) -> list[str]:
            found = [spec["target"]] if spec.get("type") == "ref" and "target" in spec else []
            for child in spec.get("fields", []) if type(spec.get("fields")) is list else []:
                found += targets(child)
            if type(spec.get("element")) is dict:
                found += targets(spec["element"])
            return found

        def visit(name: str, trail: tuple[str, ...]) -> None:
            for target in targets(self.definitions.get(name, {})):
                if target in trail:
                    if len(trail) > 1 and target == trail[0]:
                        cycle = " -> ".join((*trail, target))
                        self.error(("definitions", trail[0]), f"definitions refer to each other in a cycle ({cycle})")
                    continue
                visit(target, (*trail, target))

        for name in self.definitions:
            visit(name, (name,))

    def fields(self, loc: tuple[Any, ...], fields: list[dict[str, Any]], prefix: str, *, in_array: bool,
               refs: tuple[str, ...]) -> None:
        seen: set[str] = set()
        for index, field in enumerate(fields):
            name = field["name"]
            dotted = f"{prefix}{name}"
            if not FIELD_NAME.match(name):
                self.error((*loc, index, "name"), f"{show(name)} is not a valid field name (letters, digits and "
                           "_ . @ $ : -, not starting with a digit)")
            elif not prefix and name.startswith("p_"):
                self.error((*loc, index, "name"), f"{show(name)}: names starting with p_ are reserved for the "
                           "standard fields")
            elif name in seen:
                self.error((*loc, index, "name"), f"duplicate field name {show(name)}")
            seen.add(name)
            self.value((*loc, index), field, dotted, in_array=in_array, refs=refs)

    def value(self, loc: tuple[Any, ...], spec: dict[str, Any], dotted: str, *, in_array: bool,
              refs: tuple[str, ...]) -> None:
        kind = spec["type"]
        if kind not in TYPES:
            self.error((*loc, "type"), f"{show(kind)} is not a type (allowed: {', '.join(TYPES)})", dotted)
            return
        allowed = _TYPE_KEYS.get(kind, set())
        for key in _OPTIONAL_KEYS:
            if key in spec and key not in allowed:
                owners = [t for t, keys in _TYPE_KEYS.items() if key in keys]
                self.error((*loc, key), f"only allowed for type {' or '.join(owners)}, not {kind}", dotted)
        required_key = _TYPE_REQUIRES.get(kind)
        if required_key and required_key not in spec:
            self.error(loc, f"type {kind} requires {required_key!r}", dotted)
            return
        if kind == "object":
            if not spec["fields"]:
                self.error((*loc, "fields"), "an object must list at least one field", dotted)
            self.fields((*loc, "fields"), spec["fields"], f"{dotted}.", in_array=in_array, refs=refs)
        elif kind == "array":
            self.value((*loc, "element"), spec["element"], f"{dotted}[]", in_array=True, refs=refs)
        elif kind == "timestamp":
            try:
                time_parser(spec["timeFormat"])
            except TimeFormatError as err:
                self.error((*loc, "timeFormat"), str(err), dotted)
            if spec.get("isEventTime") and in_array:
                self.error((*loc, "isEventTime"), "an event time cannot be inside an array", dotted)
        elif kind == "string":
            for index, indicator in enumerate(spec.get("indicators", [])):
                if indicator not in SCANNERS:
                    self.error((*loc, "indicators", index), f"{show(indicator)} is not an indicator "
                               f"(allowed: {', '.join(SCANNERS)})", dotted)
            if "validate" in spec:
                rules = spec["validate"]
                if len(rules) != 1:
                    self.error((*loc, "validate"), "give exactly one of allow or deny", dotted)
                elif not next(iter(rules.values())):
                    self.error((*loc, "validate", next(iter(rules))), "must list at least one value", dotted)
        elif kind == "ref":
            target = spec["target"]
            if target not in self.definitions:
                known = ", ".join(self.definitions) or "none are defined"
                self.error((*loc, "target"), f"{show(target)} is not a definition (definitions: {known})", dotted)
            elif target in refs:
                self.error((*loc, "target"), f"{show(target)} refers to itself (recursive definitions are not "
                           "supported)", dotted)
            elif in_array:
                # Definitions are checked once on their own; inside an array an event time becomes an error.
                self.value(loc, self.definitions[target], dotted, in_array=True, refs=(*refs, target))

    def parser(self, parser: dict[str, Any]) -> None:
        if len(parser) != 1:
            given = ", ".join(parser) or "none"
            self.error(("parser",), f"give exactly one of native, csv, fastmatch, regex (given: {given}); "
                                    "leave parser out for JSON")
            return
        kind, options = next(iter(parser.items()))
        loc = ("parser", kind)
        if kind == "native":
            if options["name"] not in NATIVE_PARSERS:
                self.error((*loc, "name"), f"{show(options['name'])} is not a native parser "
                           f"(allowed: {', '.join(NATIVE_PARSERS)})")
        elif kind == "csv":
            delimiter = options.get("delimiter", ",")
            if len(delimiter) != 1 and delimiter not in ("tab", "space", "\\t"):
                self.error((*loc, "delimiter"), f"{show(delimiter)} must be one character (or tab, space)")
            if not options.get("hasHeader") and not options.get("columns"):
                self.error(loc, "give columns, or hasHeader: true to read them from each file's first line")
        else:
            from onca.logs.parsers.patterns import PatternError, compile_fastmatch, compile_regex

            for index, pattern in enumerate(options["match"]):
                try:
                    if kind == "fastmatch":
                        compile_fastmatch(pattern)
                except PatternError as err:
                    self.error((*loc, "match", index), str(err))
            if kind == "regex":
                if not options["match"]:
                    self.error((*loc, "match"), "must list at least one pattern")
                    return
                try:
                    compile_regex(options["match"], options.get("patternDefinitions", {}))
                except PatternError as err:
                    self.error((*loc, "match"), str(err))
            elif not options["match"]:
                self.error((*loc, "match"), "must list at least one pattern")
