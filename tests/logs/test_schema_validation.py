"""Schema YAML validation messages, update compatibility and the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from onca.logs.registry import SchemaRegistry
from onca.logs.schema import SchemaError, check_update, load_schema, parse_schema

HEAD = "version: 0\nschema: Custom.App\n"


def errors_of(text: str, managed: bool = False) -> list[str]:
    with pytest.raises(SchemaError) as info:
        parse_schema(text, origin="app.yml", managed=managed)
    return info.value.errors


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nschema: Custom.App\nfields: [{name: a, type: string}]", "app.yml: version: must be 0, got 1"),
    ("version: 0\nschema: App\nfields: [{name: a, type: string}]",
     "app.yml: schema: 'App': a user schema's name must start with 'Custom.'"),
    ("version: 0\nschema: Custom.my_app\nfields: [{name: a, type: string}]", "is not a valid log type name"),
    (HEAD + "fields: []", "app.yml: fields: must list at least one field"),
    (HEAD + "fields: [{name: a, type: strng}]",
     "app.yml: fields[0].type (field a): 'strng' is not a type (allowed: string, int, smallint, bigint, float, "
     "boolean, timestamp, json, object, array, ref)"),
    (HEAD + "fields: [{name: a, type: string, colour: red}]",
     "app.yml: fields[0]: unknown key 'colour' (allowed: type, description, fields, element, indicators, validate,"
     " timeFormat, isEventTime, target, isEmbeddedJSON, name, required)"),
    (HEAD + "fields: [{name: a, type: string, required: 'yes'}]",
     "app.yml: fields[0].required: expected true or false, got string 'yes'"),
    (HEAD + "fields: [{type: string}]", "app.yml: fields[0]: missing required key 'name'"),
    (HEAD + "fields: [{name: t, type: timestamp}]",
     "app.yml: fields[0] (field t): type timestamp requires 'timeFormat'"),
    (HEAD + "fields: [{name: t, type: timestamp, timeFormat: iso}]",
     "app.yml: fields[0].timeFormat (field t): 'iso' is not one of rfc3339, unix, unix_ms, unix_us, unix_ns, "
     "cloudflare, a strftime pattern"),
    (HEAD + "fields: [{name: s, type: string, isEventTime: true}]",
     "app.yml: fields[0].isEventTime (field s): only allowed for type timestamp, not string"),
    (HEAD + "fields: [{name: o, type: object}]", "app.yml: fields[0] (field o): type object requires 'fields'"),
    (HEAD + "fields: [{name: a, type: array}]", "app.yml: fields[0] (field a): type array requires 'element'"),
    (HEAD + "fields: [{name: o, type: object, fields: [{name: x, type: string, indicators: [ipv4]}]}]",
     "app.yml: fields[0].fields[0].indicators[0] (field o.x): 'ipv4' is not an indicator (allowed: ip, domain,"),
    (HEAD + "fields: [{name: s, type: string, validate: {allow: [a], deny: [b]}}]",
     "app.yml: fields[0].validate (field s): give exactly one of allow or deny"),
    (HEAD + "fields: [{name: a, type: string}, {name: a, type: int}]",
     "app.yml: fields[1].name: duplicate field name 'a'"),
    (HEAD + "fields: [{name: p_event_time, type: string}]", "names starting with p_ are reserved"),
    (HEAD + "fields: [{name: 9lives, type: string}]", "'9lives' is not a valid field name"),
    (HEAD + "fields: [{name: r, type: ref, target: Nope}]",
     "app.yml: fields[0].target (field r): 'Nope' is not a definition (definitions: none are defined)"),
    (HEAD + "definitions:\n  A: {type: object, fields: [{name: b, type: ref, target: B}]}\n"
            "  B: {type: object, fields: [{name: a, type: ref, target: A}]}\nfields: [{name: r, type: ref, target: A}]",
     "definitions refer to each other in a cycle (A -> B -> A)"),
    (HEAD + "fields:\n  - {name: a, type: array, element: {type: timestamp, timeFormat: unix, isEventTime: true}}",
     "an event time cannot be inside an array"),
    (HEAD + "parser: {csv: {columns: [a]}, regex: {match: ['(?P<a>.*)']}}\nfields: [{name: a, type: string}]",
     "app.yml: parser: give exactly one of native, csv, fastmatch, regex (given: csv, regex)"),
    (HEAD + "parser: {native: {name: Windows.EVTX}}\nfields: [{name: a, type: string}]",
     "app.yml: parser.native.name: 'Windows.EVTX' is not a native parser (allowed: AWS.ALB"),
    (HEAD + "parser: {csv: {delimiter: ','}}\nfields: [{name: a, type: string}]",
     "app.yml: parser.csv: give columns, or hasHeader: true"),
    (HEAD + "parser: {regex: {match: ['(?P<a>[a-z']}}\nfields: [{name: a, type: string}]",
     "app.yml: parser.regex.match: invalid regular expression"),
    (HEAD + "parser: {regex: {match: ['%{NOPE:a}']}}\nfields: [{name: a, type: string}]",
     "%{NOPE} is not a defined pattern"),
    (HEAD + "parser: {fastmatch: {match: ['%{a}%{b}']}}\nfields: [{name: a, type: string}]",
     "app.yml: parser.fastmatch.match[0]: %{a} and %{b} need text between them"),
    ("version: 0\nschema: [x\n", "app.yml: not valid YAML (line 3, column 1)"),
    ("- a\n- b\n", "app.yml: expected a mapping with version, schema and fields, got a list"),
])
def test_validation_messages(text: str, message: str) -> None:
    errors = errors_of(text)
    assert any(message in error for error in errors), errors


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(HEAD + "fields:\n  - {name: a, type: strng}\n  - {name: t, type: timestamp}\n"
                              "  - {name: s, type: string, indicators: [nope]}")
    assert len(errors) == 3


def test_managed_names_may_not_be_custom() -> None:
    assert any("are for user schemas" in e for e in errors_of(HEAD + "fields: [{name: a, type: string}]", True))
    parse_schema("version: 0\nschema: AWS.Thing\nfields: [{name: a, type: string}]", managed=True)


OLD = HEAD + """fields:
  - {name: a, type: string}
  - {name: n, type: int}
  - name: o
    type: object
    fields:
      - {name: x, type: string}
  - name: arr
    type: array
    element: {type: object, fields: [{name: y, type: int}]}
"""


def test_update_may_add_fields() -> None:
    new = OLD + "  - {name: added, type: string}\n"
    new = new.replace("      - {name: x, type: string}",
                      "      - {name: x, type: string}\n      - {name: z, type: int}")
    assert check_update(parse_schema(OLD), parse_schema(new)) == []


def test_update_refuses_removed_fields_and_changed_types_with_their_path() -> None:
    new = OLD.replace("  - {name: a, type: string}\n", "").replace("{name: n, type: int}", "{name: n, type: bigint}")
    new = new.replace("      - {name: x, type: string}", "      - {name: x2, type: string}")
    new = new.replace("{name: y, type: int}", "{name: y, type: string}")
    assert check_update(parse_schema(OLD), parse_schema(new)) == [
        "a: field removed (a schema update may only add fields)",
        "n: type changed from int to bigint (a schema update may only add fields)",
        "o.x: field removed (a schema update may only add fields)",
        "arr[].y: type changed from int to string (a schema update may only add fields)",
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_registry_loads_managed_and_custom_and_refuses_duplicates(tmp_path: Path) -> None:
    write(tmp_path / "a" / "app.yml", HEAD + "fields: [{name: a, type: string}]")
    write(tmp_path / "a" / "app_tests.yml", "name: ignored\n")  # test files are not schemas
    registry = SchemaRegistry.load([tmp_path / "a"])
    assert "Custom.App" in registry and registry.get("Custom.App").path == tmp_path / "a" / "app.yml"
    assert not registry.get("Custom.App").managed
    assert "AWS.CloudTrail" in registry and registry.get("AWS.CloudTrail").managed
    with pytest.raises(KeyError, match=r"did you mean Custom.App"):
        registry.get("Custom.Ap")
    write(tmp_path / "b" / "again.yml", HEAD + "fields: [{name: b, type: string}]")
    with pytest.raises(SchemaError) as info:
        SchemaRegistry.load([tmp_path / "a", tmp_path / "b"], include_managed=False)
    assert info.value.errors == [f"{tmp_path / 'b' / 'again.yml'}: duplicate log type Custom.App (already defined "
                                 f"in {tmp_path / 'a' / 'app.yml'})"]


def test_registry_reports_every_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "x.yml", HEAD.replace("Custom.App", "Custom.Xx") + "fields: [{name: a, type: nope}]")
    write(tmp_path / "y.yml", HEAD.replace("Custom.App", "Y") + "fields: [{name: a, type: string}]")
    with pytest.raises(SchemaError) as info:
        SchemaRegistry.load([tmp_path], include_managed=False)
    assert len(info.value.errors) == 2
    assert info.value.errors[0].startswith(str(tmp_path / "x.yml"))


def test_load_schema_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read"):
        load_schema(tmp_path / "none.yml")
