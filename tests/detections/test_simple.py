"""Simple (`Detection:`) rules compiled into the functions a Python rule would define."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from onca.detections.errors import ContentError
from onca.detections.simple import DEDUP_SEPARATOR, build_simple_detection
from onca.detections.yaml_dialect import load_yaml

SPEC = load_yaml("""
AnalysisType: rule
RuleID: Test.Bucket.MadePublic
Enabled: true
LogTypes: [Test.Storage]
Severity: Medium
Detection:
  - Key: action
    Condition: Equals
    Value: bucket.acl_changed
  - KeyPath: grants[*].grantee
    Condition: IsIn
    Values: [allUsers, allAuthenticatedUsers]
AlertTitle: "Bucket [{bucket.name}] made public by {actor.email} ({{acl}})"
AlertContext:
  - KeyName: bucket
    KeyValue:
      KeyPath: bucket.name
  - KeyName: grantees
    KeyValue:
      KeyPath: grants[*].grantee
  - KeyName: region
    KeyValue:
      Key: region
GroupBy:
  - KeyPath: bucket.name
  - DeepKey: [actor, email]
DynamicSeverities:
  - ChangeTo: Critical
    Conditions:
      - KeyPath: bucket.tags.data
        Condition: Equals
        Value: sensitive
  - ChangeTo: low
    Conditions:
      - Key: env
        Condition: IEquals
        Value: DEV
""")

PUBLIC = {
    "action": "bucket.acl_changed",
    "bucket": {"name": "payroll", "tags": {"data": "sensitive"}},
    "actor": {"email": "ana@example.com"},
    "grants": [{"grantee": "ana"}, {"grantee": "allUsers"}],
}


class Event(Mapping[str, Any]):
    """Stands in for the runtime's event: a mapping whose raw dict comes from raw_view()."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.raw_views = 0

    def raw_view(self) -> dict[str, Any]:
        self.raw_views += 1
        return self.raw

    def __getitem__(self, key: str) -> Any:
        raise AssertionError("simple detections must read the raw dict")

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


@pytest.fixture
def module() -> Any:
    return build_simple_detection(SPEC, "rules/bucket.yml")


def test_rule_returns_a_bool_from_the_detection(module: Any) -> None:
    assert module.rule(PUBLIC) is True
    assert module.rule({**PUBLIC, "grants": [{"grantee": "bob"}]}) is False
    assert module.rule({"action": "bucket.created"}) is False
    assert module.__name__ == "Test.Bucket.MadePublic"


def test_functions_read_the_raw_view_of_an_event_object(module: Any) -> None:
    event = Event(PUBLIC)
    assert module.rule(event) is True
    assert module.title(event).startswith("Bucket [payroll]")
    assert event.raw_views == 2


def test_title_fills_placeholders_and_keeps_escaped_braces(module: Any) -> None:
    assert module.title(PUBLIC) == "Bucket [payroll] made public by ana@example.com ({acl})"


def test_title_renders_missing_and_null_fields_as_empty(module: Any) -> None:
    assert module.title({"bucket": {"name": None}}) == "Bucket [] made public by  ({acl})"


def test_title_renders_non_string_values() -> None:
    spec = {"RuleID": "T", "Detection": [], "AlertTitle": "{n} {ok} {tags} {obj}"}
    title = build_simple_detection(spec, "t.yml").title
    assert title({"n": 3, "ok": True, "tags": ["a", "b"], "obj": {"k": 1}}) == '3 true ["a","b"] {"k":1}'


def test_alert_context_maps_key_names_to_values(module: Any) -> None:
    context = module.alert_context(PUBLIC)
    assert context == {"bucket": "payroll", "grantees": ["ana", "allUsers"], "region": None}
    assert type(context) is dict


def test_dedup_joins_group_by_values(module: Any) -> None:
    assert module.dedup(PUBLIC) == f"payroll{DEDUP_SEPARATOR}ana@example.com"
    assert module.dedup({"bucket": {"name": "logs"}}) == f"logs{DEDUP_SEPARATOR}"


def test_dedup_is_empty_when_every_group_by_value_is_missing(module: Any) -> None:
    assert module.dedup({"action": "x"}) == ""


def test_dynamic_severities_pick_the_first_matching_entry(module: Any) -> None:
    assert module.severity(PUBLIC) == "CRITICAL"
    assert module.severity({**PUBLIC, "bucket": {"name": "x"}, "env": "dev"}) == "LOW"
    assert module.severity({"env": "prod"}) == "DEFAULT"


def test_only_the_functions_the_spec_asks_for_are_defined() -> None:
    module = build_simple_detection(
        {"RuleID": "T", "Detection": [{"Key": "a", "Condition": "Exists"}]}, "t.yml"
    )
    assert module.rule({"a": 1}) is True
    for name in ("title", "alert_context", "dedup", "severity"):
        assert not hasattr(module, name)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"Detection": None}, "needs a Detection list"),
        ({"Detection": [{"Key": "a", "Condition": "Nope"}]}, "t.yml: Detection[0]: unknown Condition"),
        ({"AlertTitle": 5}, "AlertTitle must be a string"),
        ({"AlertTitle": "a {b"}, "unbalanced '{'"),
        ({"AlertTitle": "a {b..c}"}, "empty segment"),
        ({"AlertContext": {"KeyName": "a"}}, "AlertContext must be a list"),
        ({"AlertContext": [{"KeyName": "a"}]}, "AlertContext[0]: an entry must have exactly the keys"),
        (
            {"AlertContext": [{"KeyName": "a", "KeyValue": {"Key": "a", "Value": 1}}]},
            "unexpected key(s) ['Value']",
        ),
        ({"GroupBy": []}, "GroupBy must be a non-empty list"),
        ({"GroupBy": [{"Keys": "a"}]}, "GroupBy[0]: unexpected key(s)"),
        ({"DynamicSeverities": [{"ChangeTo": "Severe", "Conditions": []}]}, "ChangeTo must be Info"),
        ({"DynamicSeverities": [{"ChangeTo": "High"}]}, "exactly the keys ChangeTo and Conditions"),
        (
            {"DynamicSeverities": [{"ChangeTo": "High", "Conditions": [{"Key": "a"}]}]},
            "DynamicSeverities[0].Conditions[0]",
        ),
    ],
)
def test_invalid_specs_raise_content_errors(extra: dict[str, Any], message: str) -> None:
    spec = {"RuleID": "T", "Detection": [{"Key": "a", "Condition": "Exists"}], **extra}
    with pytest.raises(ContentError) as caught:
        build_simple_detection(spec, "t.yml")
    assert message in str(caught.value)
