"""Match expressions: every condition, combinator and key specifier, the null/missing rules, and errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from onca.detections.errors import ContentError
from onca.detections.match import CONDITIONS, compile_inline_filters, compile_match, parse_key_path


def matches(expressions: list[Any], event: Mapping[str, Any]) -> bool:
    return compile_match(expressions, where="t.yml: Detection")(event)


def one(condition: str, event: Mapping[str, Any], **extra: Any) -> bool:
    return matches([{"Key": "f", "Condition": condition, **extra}], event)


@pytest.mark.parametrize(
    ("condition", "value", "target", "expected"),
    [
        ("Equals", "abc", "abc", True),
        ("Equals", "abc", "ABC", False),
        ("Equals", 403, 403, True),
        ("Equals", 403, "403", False),
        ("DoesNotEqual", "abc", "abd", True),
        ("DoesNotEqual", "abc", "abc", False),
        ("IEquals", "AbC", "aBc", True),
        ("IDoesNotEqual", "AbC", "abc", False),
        ("Contains", "min", "admin-role", True),
        ("Contains", "root", "admin-role", False),
        ("Contains", "-l", ["crontab", "-l"], True),
        ("Contains", "dm", ["admin", "user"], True),
        ("Has", "dm", "admin", True),
        ("DoesNotContain", "x", "admin", True),
        ("DoesNotHave", "ad", "admin", False),
        ("IContains", "ADM", "the Admin", True),
        ("IContains", "ADM", ["x", "ADMIN"], True),
        ("IDoesNotContain", "ADM", "admin", False),
        ("StartsWith", "arn:aws", "arn:aws:iam::1", True),
        ("StartsWith", "arn", "xarn", False),
        ("StartsWith", "1", 12, False),
        ("DoesNotStartWith", "arn", "xarn", True),
        ("DoesNotStartWith", "1", 12, True),
        ("IStartsWith", "ARN", "arn:x", True),
        ("IDoesNotStartWith", "ARN", "arn:x", False),
        ("EndsWith", ".com", "a.example.com", True),
        ("DoesNotEndWith", ".amazonaws.com", "ec2.amazonaws.com", False),
        ("IEndsWith", ".COM", "a.com", True),
        ("IDoesNotEndWith", ".COM", "a.org", True),
        ("IsGreaterThan", 10, 11, True),
        ("IsGreaterThan", 10, 10, False),
        ("IsGreaterThanOrEquals", 10, 10, True),
        ("IsGreaterThanOrEqual", 10, 9, False),
        ("IsLessThan", 10, 9.5, True),
        ("IsLessThan", 10, 10, False),
        ("IsLessThanOrEquals", 10, 10, True),
        ("IsLessThanOrEqual", 10, 11, False),
        ("IsIPAddressInCIDR", "10.0.0.0/8", "10.1.2.3", True),
        ("IsIPAddressInCIDR", "10.0.0.0/8", "11.1.2.3", False),
        ("IsIPAddressInCIDR", "10.0.0.0/8", "not-an-ip", False),
        ("IsIPAddressInCIDR", "2001:db8::/32", "2001:db8::1", True),
        ("IsIPAddressNotInCIDR", "10.0.0.0/8", "11.1.2.3", True),
        ("IsIPAddressNotInCIDR", "10.0.0.0/8", "host.example.com", True),
        ("CIDRContainsIP", "192.168.0.0/16", ["8.8.8.8", "192.168.4.4"], True),
        ("CIDRContainsIP", "192.168.0.0/16", ["8.8.8.8"], False),
        ("CIDRDoesNotContainIP", "192.168.0.0/16", ["8.8.8.8"], True),
    ],
)
def test_binary_conditions(condition: str, value: Any, target: Any, expected: bool) -> None:
    assert one(condition, {"f": target}, Value=value) is expected


@pytest.mark.parametrize(
    ("condition", "target", "expected"),
    [
        ("IsIPAddress", "10.0.0.1", True),
        ("IsIPAddress", "::1", True),
        ("IsIPAddress", "example.com", False),
        ("IsIPAddress", 167772161, False),
        ("IsIPv4Address", "10.0.0.1", True),
        ("IsIPv4Address", "::1", False),
        ("IsIPv6Address", "2001:db8::1", True),
        ("IsIPv6Address", "10.0.0.1", False),
        ("IsIPAddressPublic", "8.8.8.8", True),
        ("IsIPAddressPublic", "10.0.0.1", False),
        ("IsIPAddressPublic", "cloudtrail.amazonaws.com", False),
        ("IsIPAddressPrivate", "192.168.1.1", True),
        ("IsIPAddressPrivate", "8.8.8.8", False),
    ],
)
def test_unary_ip_conditions(condition: str, target: Any, expected: bool) -> None:
    assert one(condition, {"f": target}) is expected


def test_unary_condition_accepts_a_boolean_value_and_false_negates_it() -> None:
    assert one("IsIPAddressPrivate", {"f": "10.0.0.1"}, Value=True) is True
    assert one("IsIPAddressPrivate", {"f": "10.0.0.1"}, Value=False) is False
    assert one("Exists", {}, Value=False) is True


def test_membership_is_in_and_is_not_in() -> None:
    assert one("IsIn", {"f": "b"}, Values=["a", "b"]) is True
    assert one("IsIn", {"f": "c"}, Values=["a", "b"]) is False
    assert one("IsIn", {"f": 2}, Values=[1, 2, 3]) is True
    assert one("IsIn", {"f": ["x", "b"]}, Values=["a", "b"]) is True  # list target: any shared element
    assert one("IsIn", {"f": ["x"]}, Values=["a", "b"]) is False
    assert one("IsNotIn", {"f": "c"}, Values=["a", "b"]) is True
    assert one("IsNotIn", {"f": "a"}, Values=["a", "b"]) is False


def test_ordering_a_string_against_a_number_raises() -> None:
    with pytest.raises(TypeError):
        one("IsGreaterThan", {"f": "12"}, Value=10)


@pytest.mark.parametrize(
    ("condition", "absent", "null", "empty", "filled"),
    [
        ("Exists", False, True, True, True),
        ("DoesNotExist", True, False, False, False),
        ("IsNull", True, True, False, False),
        ("IsNotNull", False, False, True, True),
        ("IsNullOrEmpty", True, True, True, False),
        ("IsNotNullOrEmpty", False, False, False, True),
    ],
)
def test_existence_conditions(condition: str, absent: bool, null: bool, empty: bool, filled: bool) -> None:
    assert one(condition, {}) is absent
    assert one(condition, {"f": None}) is null
    assert one(condition, {"f": ""}) is empty
    assert one(condition, {"f": "x"}) is filled


def test_null_or_empty_follows_python_truthiness() -> None:
    for empty in ([], {}, False, 0):
        assert one("IsNullOrEmpty", {"f": empty}) is True
    assert one("IsNullOrEmpty", {"f": [0]}) is False


@pytest.mark.parametrize(
    ("condition", "value"),
    [
        ("Equals", "x"),
        ("Contains", "x"),
        ("StartsWith", "x"),
        ("EndsWith", "x"),
        ("IEquals", "x"),
        ("IsGreaterThan", 1),
        ("IsLessThan", 1),
        ("IsIPAddressInCIDR", "10.0.0.0/8"),
        ("CIDRContainsIP", "10.0.0.0/8"),
    ],
)
def test_missing_or_null_field_fails_positive_and_passes_negated_conditions(
    condition: str, value: Any
) -> None:
    negated = {
        "Equals": "DoesNotEqual",
        "Contains": "DoesNotContain",
        "StartsWith": "DoesNotStartWith",
        "EndsWith": "DoesNotEndWith",
        "IEquals": "IDoesNotEqual",
        "IsIPAddressInCIDR": "IsIPAddressNotInCIDR",
        "CIDRContainsIP": "CIDRDoesNotContainIP",
    }.get(condition)
    for event in ({}, {"f": None}):
        assert one(condition, event, Value=value) is False
        if negated:
            assert one(negated, event, Value=value) is True
    assert one("IsIn", {"f": None}, Values=["a"]) is False
    assert one("IsNotIn", {}, Values=["a"]) is True
    assert one("IsIPAddressPublic", {"f": None}) is False


def test_implicit_and_of_the_top_level_list() -> None:
    rule = [{"Key": "a", "Condition": "Equals", "Value": 1}, {"Key": "b", "Condition": "Equals", "Value": 2}]
    assert matches(rule, {"a": 1, "b": 2}) is True
    assert matches(rule, {"a": 1, "b": 3}) is False
    assert matches([], {"a": 1}) is True


def _flags(*names: str) -> list[dict[str, Any]]:
    return [{"Key": name, "Condition": "Equals", "Value": True} for name in names]


@pytest.mark.parametrize(
    ("combinator", "truth", "expected"),
    [
        ("All", (True, True, True), True),
        ("All", (True, False, True), False),
        ("Any", (False, False, True), True),
        ("Any", (False, False, False), False),
        ("OnlyOne", (False, True, False), True),
        ("OnlyOne", (True, True, False), False),
        ("OnlyOne", (False, False, False), False),
        ("None", (False, False, False), True),
        ("None", (False, True, False), False),
    ],
)
def test_combinators(combinator: str, truth: tuple[bool, ...], expected: bool) -> None:
    event = dict(zip(("a", "b", "c"), truth, strict=True))
    assert matches([{combinator: _flags("a", "b", "c")}], event) is expected


def test_empty_all_is_true_and_combinators_nest() -> None:
    assert matches([{"All": []}], {}) is True
    nested = [{"Any": [{"All": _flags("a", "b")}, {"None": _flags("c")}]}]
    assert matches(nested, {"a": True, "b": False, "c": True}) is False
    assert matches(nested, {"a": True, "b": True, "c": True}) is True
    assert matches(nested, {"c": False}) is True


def test_absolute_conditions() -> None:
    assert matches([{"Condition": "AlwaysTrue"}], {}) is True
    assert matches([{"Condition": "AlwaysFalse"}], {"a": 1}) is False


EVENT = {
    "user": {"name": "ana", "roles": ["admin", "dev"]},
    "records": [{"id": 1, "tags": ["x"]}, {"id": 2, "tags": ["y", "z"]}, {"id": 3}],
    "p_enrichment": {"geo": {"srcIp": {"country": {"code": "NZ"}}}},
    "odd-key": {"v": 7},
}


def test_key_specifiers() -> None:
    assert matches([{"DeepKey": ["user", "name"], "Condition": "Equals", "Value": "ana"}], EVENT)
    assert matches([{"DeepKey": ["user", "roles", 1], "Condition": "Equals", "Value": "dev"}], EVENT)
    assert matches([{"DeepKey": ["user", "roles", -1], "Condition": "Equals", "Value": "dev"}], EVENT)
    assert matches([{"DeepKey": ["user", "roles", 5], "Condition": "DoesNotExist"}], EVENT)
    assert matches([{"KeyPath": "records[1].tags[0]", "Condition": "Equals", "Value": "y"}], EVENT)
    assert matches([{"KeyPath": '"odd-key".v', "Condition": "Equals", "Value": 7}], EVENT)
    enrichment = {"Table": "geo", "Selector": "srcIp", "FieldPath": "country.code"}
    assert matches([{"Enrichment": enrichment, "Condition": "Equals", "Value": "NZ"}], EVENT)


def test_key_path_wildcard_projects_a_list_and_drops_missing_elements() -> None:
    assert matches([{"KeyPath": "records[*].id", "Condition": "IsIn", "Values": [3, 9]}], EVENT)
    assert not matches([{"KeyPath": "records[*].id", "Condition": "IsIn", "Values": [9]}], EVENT)
    assert matches([{"KeyPath": "records[*].tags", "Condition": "Exists"}], EVENT)
    assert matches([{"KeyPath": "user[*].name", "Condition": "DoesNotExist"}], EVENT)
    assert matches([{"KeyPath": "records[*].tags[0]", "Condition": "Contains", "Value": "y"}], EVENT)


def test_key_and_deep_key_fall_back_to_case_insensitive_names_but_key_path_does_not() -> None:
    event = {"Request": {"enableFlowLogs": False}}
    assert matches([{"DeepKey": ["request", "enableflowlogs"], "Condition": "Equals", "Value": False}], event)
    assert matches([{"Key": "REQUEST", "Condition": "Exists"}], event)
    assert matches([{"KeyPath": "request.enableFlowLogs", "Condition": "DoesNotExist"}], event)


def test_multi_key_comparison_of_two_fields() -> None:
    rule = [{"Condition": "IsGreaterThan", "Values": [{"Key": "errors"}, {"DeepKey": ["history", "errors"]}]}]
    assert matches(rule, {"errors": 5, "history": {"errors": 2}}) is True
    assert matches(rule, {"errors": 1, "history": {"errors": 2}}) is False
    assert matches(rule, {"errors": 5}) is False
    differs = [{"Condition": "DoesNotEqual", "Values": [{"Key": "a"}, {"KeyPath": "b.c"}]}]
    assert matches(differs, {"a": 1, "b": {"c": 2}}) is True
    assert matches(differs, {"a": 2, "b": {"c": 2}}) is False
    prefix = [{"Condition": "StartsWith", "Values": [{"Key": "arn"}, {"Key": "account"}]}]
    assert matches(prefix, {"arn": "123:role/x", "account": "123"}) is True


def _members(condition: str) -> list[dict[str, Any]]:
    return [
        {
            "Key": "members",
            "Condition": condition,
            "Expressions": [
                {"Key": "action", "Condition": "Equals", "Value": "ADD"},
                {"DeepKey": ["who", "kind"], "Condition": "IsIn", "Values": ["public", "anyone"]},
            ],
        }
    ]


def _element(action: str, kind: str) -> dict[str, Any]:
    return {"action": action, "who": {"kind": kind}}


@pytest.mark.parametrize(
    ("condition", "elements", "expected"),
    [
        ("AnyElement", [_element("ADD", "user"), _element("ADD", "public")], True),
        ("AnyElement", [_element("ADD", "user"), _element("DEL", "public")], False),
        ("AllElements", [_element("ADD", "public"), _element("ADD", "anyone")], True),
        ("AllElements", [_element("ADD", "public"), _element("ADD", "user")], False),
        ("OnlyOneElement", [_element("ADD", "public"), _element("ADD", "user")], True),
        ("OnlyOneElement", [_element("ADD", "public"), _element("ADD", "anyone")], False),
        ("NoElement", [_element("ADD", "user"), _element("DEL", "public")], True),
        ("NoElement", [_element("ADD", "anyone")], False),
    ],
)
def test_list_comprehension_evaluates_inner_keys_per_element(
    condition: str, elements: list[Any], expected: bool
) -> None:
    assert matches(_members(condition), {"members": elements}) is expected


def test_list_comprehension_on_a_missing_or_non_list_field() -> None:
    assert matches(_members("AnyElement"), {}) is False
    assert matches(_members("AllElements"), {"members": "ADD"}) is False
    assert matches(_members("NoElement"), {}) is True
    assert matches(_members("AllElements"), {"members": []}) is True
    assert matches(_members("AnyElement"), {"members": []}) is False
    assert matches(_members("AnyElement"), {"members": ["not a mapping"]}) is False


def test_accepts_any_mapping_as_the_event() -> None:
    class Event(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data

        def __getitem__(self, key: str) -> Any:
            return self.data[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self.data)

        def __len__(self) -> int:
            return len(self.data)

    event = Event({"a": {"b": "c"}})
    assert matches([{"KeyPath": "a.b", "Condition": "Equals", "Value": "c"}], event) is True
    assert matches([{"Key": "a", "Condition": "Exists"}], event) is True


def test_parse_key_path() -> None:
    assert parse_key_path("a.b[0].c") == ["a", "b", 0, "c"]
    assert parse_key_path('"x.y".z') == ["x.y", "z"]
    for bad in ("", "a..b", "a.", "a[x]", "a b[0]c"):
        with pytest.raises(ValueError):
            parse_key_path(bad)


@pytest.mark.parametrize(
    ("expressions", "message"),
    [
        ([{"Key": "a", "Condition": "Matches", "Value": 1}], "Detection[0]: unknown Condition 'Matches'"),
        ([{"Key": "a", "Condition": "IsIn", "Values": "abc"}], "Values must be a list"),
        ([{"Key": "a", "Condition": "IsIn", "Value": "abc"}], "needs Values (a list)"),
        ([{"Key": "a", "Condition": "IsIn", "Values": ["a", 1]}], "all strings, all numbers or all booleans"),
        ([{"Key": "a", "Condition": "Equals"}], "needs a single Value"),
        (
            [{"Key": "a", "Condition": "Equals", "Value": [1]}],
            "needs Value to be a string, number or boolean",
        ),
        ([{"Key": "a", "Condition": "StartsWith", "Value": 1}], "needs Value to be a string"),
        ([{"Key": "a", "Condition": "Exists", "Value": "yes"}], "at most a boolean Value"),
        (
            [{"Key": "a", "Condition": "IsIPAddressInCIDR", "Value": "10.0.0/33"}],
            "is not an IP address or CIDR",
        ),
        ([{"Key": "a", "KeyPath": "b", "Condition": "Exists"}], "exactly one key specifier"),
        ([{"Key": "a", "Condition": "Equals", "Value": 1, "Note": "x"}], "unexpected key(s) ['Note']"),
        ([{"DeepKey": ["a", 1.5], "Condition": "Exists"}], "neither a string nor an integer"),
        ([{"KeyPath": "a..b", "Condition": "Exists"}], "empty segment"),
        ([{"Enrichment": {"Table": "t"}, "Condition": "Exists"}], "Table, Selector and FieldPath"),
        ([{"All": [{"Key": "a", "Condition": "Nope"}]}], "Detection[0].All[0]: unknown Condition 'Nope'"),
        ([{"All": [], "Any": []}], "must be the only key"),
        ([{"Any": {"Key": "a"}}], "Any must hold a list"),
        ([{"Condition": "AlwaysTrue", "Key": "a"}], "takes no other keys"),
        ([{"Key": "l", "Condition": "AnyElement"}], "needs Expressions"),
        ([{"Condition": "Equals", "Values": [{"Key": "a"}]}], "exactly two key specifiers"),
        ([{"Condition": "IsNull", "Values": [{"Key": "a"}, {"Key": "b"}]}], "cannot compare two fields"),
        ([{"Key": "a"}], "needs a Condition or a combinator"),
        ("Key: a", "must be a list"),
        (["Key: a"], "must be a mapping"),
    ],
)
def test_compile_errors_name_the_location_and_element(expressions: Any, message: str) -> None:
    with pytest.raises(ContentError) as caught:
        compile_match(expressions, where="rules/x.yml: Detection")
    assert str(caught.value).startswith("rules/x.yml: Detection")
    assert message in str(caught.value)


def test_every_documented_condition_is_accepted() -> None:
    documented = {
        "Equals",
        "DoesNotEqual",
        "IEquals",
        "IDoesNotEqual",
        "Contains",
        "DoesNotContain",
        "IContains",
        "IDoesNotContain",
        "StartsWith",
        "DoesNotStartWith",
        "IStartsWith",
        "IDoesNotStartWith",
        "EndsWith",
        "DoesNotEndWith",
        "IEndsWith",
        "IDoesNotEndWith",
        "IsGreaterThan",
        "IsGreaterThanOrEquals",
        "IsLessThan",
        "IsLessThanOrEquals",
        "IsGreaterThanOrEqual",
        "IsLessThanOrEqual",
        "IsIPAddress",
        "IsIPv4Address",
        "IsIPv6Address",
        "IsIPAddressPublic",
        "IsIPAddressPrivate",
        "IsIPAddressInCIDR",
        "IsIPAddressNotInCIDR",
        "CIDRContainsIP",
        "CIDRDoesNotContainIP",
        "Exists",
        "DoesNotExist",
        "IsNull",
        "IsNotNull",
        "IsNullOrEmpty",
        "IsNotNullOrEmpty",
        "IsIn",
        "IsNotIn",
        "AnyElement",
        "AllElements",
        "OnlyOneElement",
        "NoElement",
        "AlwaysTrue",
        "AlwaysFalse",
        "Has",
        "DoesNotHave",
    }
    assert documented <= CONDITIONS


class TestInlineFilters:
    def compile(self, filters: Any) -> Any:
        return compile_inline_filters(filters, "rules/x.yml")

    def test_empty_all_is_a_no_op(self) -> None:
        assert self.compile([{"All": []}])({}) is True
        assert self.compile([{"Any": []}])({"a": 1}) is True

    def test_missing_field_passes_and_null_fails_positive_conditions(self) -> None:
        equals = self.compile([{"KeyPath": "user.name", "Condition": "Equals", "Value": "ana"}])
        assert equals({}) is True
        assert equals({"user": {"name": None}}) is False
        assert equals({"user": {"name": "bob"}}) is False
        assert equals({"user": {"name": "ana"}}) is True
        differs = self.compile([{"KeyPath": "user.name", "Condition": "DoesNotEqual", "Value": "ana"}])
        assert differs({"user": {"name": None}}) is True

    def test_existence_conditions_still_see_missing_fields(self) -> None:
        assert self.compile([{"KeyPath": "a", "Condition": "Exists"}])({}) is False
        assert self.compile([{"KeyPath": "a", "Condition": "DoesNotExist"}])({}) is True

    def test_all_and_any_combine(self) -> None:
        allow = self.compile(
            [
                {
                    "Any": [
                        {"KeyPath": "src", "Condition": "IsIPAddressInCIDR", "Value": "10.0.0.0/8"},
                        {"KeyPath": "user", "Condition": "IsIn", "Values": ["svc-a", "svc-b"]},
                    ]
                }
            ]
        )
        assert allow({"src": "10.2.3.4", "user": "x"}) is True
        assert allow({"src": "8.8.8.8", "user": "svc-b"}) is True
        assert allow({"src": "8.8.8.8", "user": "x"}) is False

    def test_enrichment_specifier_is_allowed(self) -> None:
        spec = {
            "Enrichment": {"Table": "geo", "Selector": "srcIp", "FieldPath": "country.code"},
            "Condition": "Equals",
            "Value": "NZ",
        }
        assert self.compile([spec])(EVENT) is True

    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            ([{"Key": "a", "Condition": "Exists"}], "key specifier Key is not allowed here"),
            ([{"DeepKey": ["a"], "Condition": "Exists"}], "key specifier DeepKey is not allowed here"),
            ([{"OnlyOne": []}], "combinator OnlyOne is not allowed here"),
            ([{"None": []}], "combinator None is not allowed here"),
            (
                [{"KeyPath": "l", "Condition": "AnyElement", "Expressions": []}],
                "list comprehension AnyElement",
            ),
            ([{"Condition": "AlwaysTrue"}], "AlwaysTrue is not allowed in InlineFilters"),
            ([{"Condition": "Equals", "Values": [{"KeyPath": "a"}, {"KeyPath": "b"}]}], "multi-key"),
            ([{"Any": [{"KeyPath": "a", "Condition": "Bogus", "Value": 1}]}], "InlineFilters[0].Any[0]"),
        ],
    )
    def test_restrictions_are_enforced(self, filters: Any, message: str) -> None:
        with pytest.raises(ContentError) as caught:
            self.compile(filters)
        assert str(caught.value).startswith("rules/x.yml: InlineFilters[0]")
        assert message in str(caught.value)
