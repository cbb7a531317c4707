"""Match expressions: the YAML condition language of `Detection`, `InlineFilters` and `DynamicSeverities`.

A list of expressions is compiled once into a closure over the raw event mapping, so evaluating a simple
detection costs a few dict lookups and comparisons per expression, with no parsing at event time.

Semantics (the engine's contract; see the module's tests for each rule):

* A key specifier that does not resolve is *missing*, which differs from a present `null` only for the
  existence conditions (`Exists`, `DoesNotExist`, `IsNull`, `IsNotNull`, `IsNullOrEmpty`,
  `IsNotNullOrEmpty`). `IsNull` holds for a missing key too: a successful CloudTrail call has no
  `errorCode` key at all, and `errorCode IsNull` is how content says "no error".
* Every other condition sees a missing or null target as "no value": positive conditions are false,
  their negations (`DoesNot…`, `IsNot…`, `…NotIn…`) are true.
* In `InlineFilters` only, a missing field makes a (non-existence) condition pass, as documented for
  inline filters; an empty combinator is a no-op that passes.
* IP conditions are false (their negations true) for a value that is not an IP address or CIDR, since
  log fields such as CloudTrail's `sourceIPAddress` legitimately hold host names. A list target matches
  when any element does.
* `IsNullOrEmpty` follows Python truthiness (`not value`): `false` and 0 are empty, like "" [] {}.
* Unary conditions may carry `Value: true` (the same condition) or `Value: false` (its negation).
* `Key` and `DeepKey` fall back to a case-insensitive key match, as the event object of Python rules
  does; `KeyPath` and `Enrichment` are JMESPath-style and case-sensitive. A `[*]` wildcard projects the
  rest of the path over a list, dropping missing and null results.
* List comprehensions AND their inner expressions per element; on an empty list `AllElements` and
  `NoElement` hold, on a missing or non-list field only `NoElement` does.
* Ordering comparisons use Python ordering, so comparing a number with a string raises `TypeError`
  (a rule error, as in the reference filter evaluator).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

from onca.detections.errors import ContentError

Predicate = Callable[[Any], bool]
Getter = Callable[[Any], Any]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What a getter returns for a key that is not in the event (as opposed to a present null)."""

_SPECIFIERS = ("Key", "DeepKey", "KeyPath", "Enrichment")
_INLINE_SPECIFIERS = ("KeyPath", "Enrichment")
_COMBINATORS = ("All", "Any", "OnlyOne", "None")
_INLINE_COMBINATORS = ("All", "Any")
_ALIASES = {
    "Has": "Contains",
    "DoesNotHave": "DoesNotContain",
    "IsGreaterThanOrEqual": "IsGreaterThanOrEquals",
    "IsLessThanOrEqual": "IsLessThanOrEquals",
}


# ---------------------------------------------------------------------------------------------------
# Key specifiers


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _is_list(value: Any) -> bool:
    return type(value) is list or isinstance(value, (list, tuple))


_WILDCARD: Final = object()
_KEYPATH_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^.\[\]"]+)|\[\s*(\*|-?\d+)\s*\]|(\.))')


def parse_key_path(path: str) -> list[Any]:
    """Split `a.b[0].c` / `a[*].b` / `"odd-key".x` into steps: str keys, int indexes, or _WILDCARD.

    Raises ValueError with the reason when the path is not one."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("a key path must be a non-empty string")
    steps: list[Any] = []
    pos, expect_name = 0, True
    text = path.strip()
    while pos < len(text):
        match = _KEYPATH_TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse key path {path!r} at character {pos + 1}")
        quoted, name, index, dot = match.groups()
        if dot is not None:
            if expect_name:
                raise ValueError(f"empty segment in key path {path!r}")
            expect_name = True
        elif index is not None:
            if expect_name and steps:
                raise ValueError(f"an index must follow a key in key path {path!r}")
            steps.append(_WILDCARD if index == "*" else int(index))
            expect_name = False
        else:
            if not expect_name:
                raise ValueError(f"missing '.' before {match.group(0).strip()!r} in key path {path!r}")
            steps.append(name.strip() if quoted is None else re.sub(r"\\(.)", r"\1", quoted))
            expect_name = False
        pos = match.end()
    if expect_name:
        raise ValueError(f"key path {path!r} ends with '.'")
    return steps


def _lookup(mapping: Any, key: str, fold: bool) -> Any:
    value = mapping.get(key, MISSING)
    if value is MISSING and fold:
        wanted = key.lower()
        for name, found in mapping.items():
            if type(name) is str and name.lower() == wanted:
                return found
    return value


def _walk(value: Any, steps: list[Any], start: int, fold: bool) -> Any:
    """Follow steps from value; a wildcard projects the rest over a list, dropping missing and nulls."""
    for i in range(start, len(steps)):
        step = steps[i]
        if type(step) is str:
            if not _is_mapping(value):
                return MISSING
            value = _lookup(value, step, fold)
            if value is MISSING:
                return MISSING
        elif step is _WILDCARD:
            if not _is_list(value):
                return MISSING
            projected = []
            for element in value:
                found = _walk(element, steps, i + 1, fold)
                if found is not MISSING and found is not None:
                    projected.append(found)
            return projected
        else:
            if not _is_list(value) or not -len(value) <= step < len(value):
                return MISSING
            value = value[step]
    return value


def _path_getter(steps: list[Any], fold: bool) -> Getter:
    """`fold`: fall back to a case-insensitive key match, as the event object of Python rules does."""
    if len(steps) == 1 and type(steps[0]) is str:
        name = steps[0]

        def get_key(event: Any) -> Any:
            if type(event) is dict or isinstance(event, Mapping):
                value = event.get(name, MISSING)
                return _lookup(event, name, fold) if value is MISSING and fold else value
            return MISSING

        return get_key
    if all(type(step) is str for step in steps):
        keys = tuple(steps)

        def get_keys(event: Any) -> Any:
            for key in keys:
                if type(event) is not dict and not isinstance(event, Mapping):
                    return MISSING
                value = event.get(key, MISSING)
                if value is MISSING and (not fold or (value := _lookup(event, key, True)) is MISSING):
                    return MISSING
                event = value
            return event

        return get_keys
    return lambda event: _walk(event, steps, 0, fold)


def specifier_getter(spec: Mapping[str, Any], *, allowed: tuple[str, ...] = _SPECIFIERS) -> Getter:
    """The getter of a key specifier mapping holding exactly one of `allowed`. Raises ValueError.

    Key and DeepKey name fields the way Python rules do, so they match keys case-insensitively when
    there is no exact match; KeyPath and Enrichment are JMESPath-style paths and stay case-sensitive."""
    present = [name for name in _SPECIFIERS if name in spec]
    if len(present) != 1:
        wanted = ", ".join(allowed)
        raise ValueError(f"expected exactly one key specifier ({wanted}), got {present or 'none'}")
    kind = present[0]
    if kind not in allowed:
        raise ValueError(f"key specifier {kind} is not allowed here (use {' or '.join(allowed)})")
    raw = spec[kind]
    if kind == "Key":
        if not isinstance(raw, str) or not raw:
            raise ValueError("Key must be a non-empty string")
        return _path_getter([raw], True)
    if kind == "DeepKey":
        if not isinstance(raw, list) or not raw:
            raise ValueError("DeepKey must be a non-empty list of strings and integer indexes")
        for step in raw:
            if type(step) not in (str, int):
                raise ValueError(f"DeepKey step {step!r} is neither a string nor an integer")
        return _path_getter(list(raw), True)
    if kind == "KeyPath":
        return _path_getter(parse_key_path(raw), False)
    if not isinstance(raw, Mapping) or set(raw) != {"Table", "Selector", "FieldPath"}:
        raise ValueError("Enrichment must have exactly the keys Table, Selector and FieldPath")
    table, selector = raw["Table"], raw["Selector"]
    if not isinstance(table, str) or not table or not isinstance(selector, str) or not selector:
        raise ValueError("Enrichment Table and Selector must be non-empty strings")
    return _path_getter(["p_enrichment", table, selector, *parse_key_path(raw["FieldPath"])], False)


def compile_key(spec: Any, *, where: str) -> Getter:
    """Compile a bare key specifier ({Key: ...}, {DeepKey: ...}, {KeyPath: ...}, {Enrichment: ...}).

    The getter returns the value, or MISSING when the path does not resolve."""
    if not isinstance(spec, Mapping):
        raise ContentError(f"{where}: a key specifier must be a mapping, got {_show(spec)}")
    extra = set(spec) - set(_SPECIFIERS)
    if extra:
        raise ContentError(f"{where}: unexpected key(s) {sorted(extra)} in key specifier {_show(spec)}")
    try:
        return specifier_getter(spec)
    except ValueError as exc:
        raise ContentError(f"{where}: {exc} in {_show(spec)}") from None


# ---------------------------------------------------------------------------------------------------
# Condition vocabulary: each positive condition, its negation is derived.


@lru_cache(maxsize=8192)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _equals(v: Any) -> Predicate:
    return lambda t: t == v


def _iequals(v: Any) -> Predicate:
    if type(v) is not str:
        return lambda t: t == v
    low = v.lower()
    return lambda t: t.lower() == low if type(t) is str else t == v


def _contains(v: Any) -> Predicate:
    def contains(t: Any) -> bool:
        if type(t) is str:
            return type(v) is str and v in t
        if _is_list(t):
            if v in t:
                return True
            return type(v) is str and any(type(item) is str and v in item for item in t)
        if _is_mapping(t):
            return v in t
        return False

    return contains


def _icontains(v: Any) -> Predicate:
    if type(v) is not str:
        return _contains(v)
    low = v.lower()

    def icontains(t: Any) -> bool:
        if type(t) is str:
            return low in t.lower()
        if _is_list(t):
            return any(type(item) is str and low in item.lower() for item in t)
        if _is_mapping(t):
            return any(type(key) is str and key.lower() == low for key in t)
        return False

    return icontains


def _starts_with(v: str) -> Predicate:
    return lambda t: type(t) is str and t.startswith(v)


def _ends_with(v: str) -> Predicate:
    return lambda t: type(t) is str and t.endswith(v)


def _istarts_with(v: str) -> Predicate:
    low = v.lower()
    return lambda t: type(t) is str and t.lower().startswith(low)


def _iends_with(v: str) -> Predicate:
    low = v.lower()
    return lambda t: type(t) is str and t.lower().endswith(low)


def _greater(v: Any) -> Predicate:
    return lambda t: t > v


def _greater_equal(v: Any) -> Predicate:
    return lambda t: t >= v


def _less(v: Any) -> Predicate:
    return lambda t: t < v


def _less_equal(v: Any) -> Predicate:
    return lambda t: t <= v


def _any_ip_overlap(v: Any) -> Predicate:
    """Target IP/CIDR (or any element of a list of them) overlaps the Value's network."""
    net = _network(v) if type(v) is str else None
    if net is None:
        raise ValueError(f"{v!r} is not an IP address or CIDR")

    def overlaps(t: Any) -> bool:
        if type(t) is str:
            other = _network(t)
            return other is not None and other.version == net.version and other.overlaps(net)
        if _is_list(t):
            return any(overlaps(item) for item in t)
        return False

    return overlaps


def _ip_test(test: Callable[[Any], bool]) -> Predicate:
    def check(t: Any) -> bool:
        if type(t) is str:
            address = _address(t)
            return address is not None and test(address)
        if _is_list(t):
            return any(check(item) for item in t)
        return False

    return check


_UNARY: dict[str, Predicate] = {
    "IsIPAddress": _ip_test(lambda a: True),
    "IsIPv4Address": _ip_test(lambda a: a.version == 4),
    "IsIPv6Address": _ip_test(lambda a: a.version == 6),
    "IsIPAddressPublic": _ip_test(lambda a: a.is_global),
    "IsIPAddressPrivate": _ip_test(lambda a: a.is_private),
}

# name -> (factory building the test from the literal, what the literal must be); negations below
_STRING = "a string"
_SCALAR = "a string, number or boolean"
_ORDERED = "a string or number"
_BINARY: dict[str, tuple[Callable[[Any], Predicate], str]] = {
    "Equals": (_equals, _SCALAR),
    "IEquals": (_iequals, _SCALAR),
    "Contains": (_contains, _SCALAR),
    "IContains": (_icontains, _SCALAR),
    "StartsWith": (_starts_with, _STRING),
    "IStartsWith": (_istarts_with, _STRING),
    "EndsWith": (_ends_with, _STRING),
    "IEndsWith": (_iends_with, _STRING),
    "IsGreaterThan": (_greater, _ORDERED),
    "IsGreaterThanOrEquals": (_greater_equal, _ORDERED),
    "IsLessThan": (_less, _ORDERED),
    "IsLessThanOrEquals": (_less_equal, _ORDERED),
    "IsIPAddressInCIDR": (_any_ip_overlap, _STRING),
    "CIDRContainsIP": (_any_ip_overlap, _STRING),
}
_NEGATIONS = {
    "DoesNotEqual": "Equals",
    "IDoesNotEqual": "IEquals",
    "DoesNotContain": "Contains",
    "IDoesNotContain": "IContains",
    "DoesNotStartWith": "StartsWith",
    "IDoesNotStartWith": "IStartsWith",
    "DoesNotEndWith": "EndsWith",
    "IDoesNotEndWith": "IEndsWith",
    "IsIPAddressNotInCIDR": "IsIPAddressInCIDR",
    "CIDRDoesNotContainIP": "CIDRContainsIP",
    "IsNotIn": "IsIn",
}


def _is_empty(t: Any) -> bool:
    # Python truthiness, as in `not event.get(...)`: `false` and 0 are empty too, not only "" [] {}.
    return t is MISSING or not t


_EXISTENCE: dict[str, Predicate] = {
    "Exists": lambda t: t is not MISSING,
    "DoesNotExist": lambda t: t is MISSING,
    "IsNull": lambda t: t is MISSING or t is None,
    "IsNotNull": lambda t: t is not MISSING and t is not None,
    "IsNullOrEmpty": _is_empty,
    "IsNotNullOrEmpty": lambda t: not _is_empty(t),
}
_COMPREHENSIONS = ("AnyElement", "AllElements", "OnlyOneElement", "NoElement")
_ABSOLUTE = ("AlwaysTrue", "AlwaysFalse")

CONDITIONS: Final = frozenset(
    (*_UNARY, *_BINARY, *_NEGATIONS, *_EXISTENCE, *_COMPREHENSIONS, *_ABSOLUTE, "IsIn", *_ALIASES)
)
"""Every Condition name accepted in a match expression, aliases included."""


def _literal_kind_ok(value: Any, kind: str) -> bool:
    if kind == _STRING:
        return type(value) is str
    if type(value) is bool:
        return kind == _SCALAR
    return type(value) in (str, int, float)


def _membership(values: list[Any]) -> Predicate:
    hashable = frozenset(values)

    def is_in(t: Any) -> bool:
        kind = type(t)
        if kind is str or kind is int or kind is float or kind is bool:
            return t in hashable
        if _is_list(t):
            return any(v in t for v in values)
        return t in values

    return is_in


# ---------------------------------------------------------------------------------------------------
# Compilation


def _show(element: Any) -> str:
    try:
        text = json.dumps(element, default=str, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(element)
    return text if len(text) <= 160 else text[:157] + "..."


class _Compiler:
    def __init__(self, *, inline: bool) -> None:
        self.inline = inline
        self.specifiers = _INLINE_SPECIFIERS if inline else _SPECIFIERS
        self.combinators = _INLINE_COMBINATORS if inline else _COMBINATORS

    def fail(self, where: str, element: Any, message: str) -> ContentError:
        return ContentError(f"{where}: {message}: {_show(element)}")

    def compile_list(self, expressions: Any, where: str) -> Predicate:
        if not isinstance(expressions, list):
            raise ContentError(f"{where}: match expressions must be a list, got {_show(expressions)}")
        children = [self.compile_one(item, f"{where}[{i}]") for i, item in enumerate(expressions)]
        return _all(children)

    def compile_one(self, element: Any, where: str) -> Predicate:
        if not isinstance(element, Mapping):
            raise self.fail(where, element, "a match expression must be a mapping")
        combinators = [name for name in _COMBINATORS if name in element]
        if combinators:
            return self.compile_combinator(element, combinators, where)
        if "Condition" not in element:
            raise self.fail(where, element, "a match expression needs a Condition or a combinator")
        condition = element["Condition"]
        if not isinstance(condition, str):
            raise self.fail(where, element, "Condition must be a string")
        condition = _ALIASES.get(condition, condition)
        if condition not in CONDITIONS:
            raise self.fail(where, element, f"unknown Condition {element['Condition']!r}")
        if condition in _ABSOLUTE:
            return self.compile_absolute(element, condition, where)
        if condition in _COMPREHENSIONS:
            return self.compile_comprehension(element, condition, where)
        if "Values" in element and not any(name in element for name in _SPECIFIERS):
            return self.compile_multi_key(element, condition, where)
        return self.compile_condition(element, condition, where)

    def compile_combinator(self, element: Mapping[str, Any], names: list[str], where: str) -> Predicate:
        name = names[0]
        if len(element) != 1:
            raise self.fail(where, element, f"a {name} combinator must be the only key of its mapping")
        if name not in self.combinators:
            raise self.fail(where, element, f"combinator {name} is not allowed here (use All or Any)")
        inner = element[name]
        if not isinstance(inner, list):
            raise self.fail(where, element, f"{name} must hold a list of match expressions")
        children = [self.compile_one(item, f"{where}.{name}[{i}]") for i, item in enumerate(inner)]
        if not children and self.inline:
            return _always(True)
        if name == "All":
            return _all(children)
        if name == "Any":
            return _any(children)
        if name == "OnlyOne":
            return _only_one(children)
        return _none(children)

    def compile_absolute(self, element: Mapping[str, Any], condition: str, where: str) -> Predicate:
        if self.inline:
            raise self.fail(where, element, f"Condition {condition} is not allowed in InlineFilters")
        if set(element) != {"Condition"}:
            raise self.fail(where, element, f"Condition {condition} takes no other keys")
        return _always(condition == "AlwaysTrue")

    def key_getter(self, element: Mapping[str, Any], where: str, allowed: set[str]) -> Getter:
        extra = set(element) - allowed - set(_SPECIFIERS)
        if extra:
            raise self.fail(where, element, f"unexpected key(s) {sorted(extra)}")
        try:
            return specifier_getter(element, allowed=self.specifiers)
        except ValueError as exc:
            raise self.fail(where, element, str(exc)) from None

    def compile_comprehension(self, element: Mapping[str, Any], condition: str, where: str) -> Predicate:
        if self.inline:
            raise self.fail(where, element, f"list comprehension {condition} is not allowed in InlineFilters")
        get = self.key_getter(element, where, {"Condition", "Expressions"})
        if "Expressions" not in element:
            raise self.fail(where, element, f"Condition {condition} needs Expressions")
        inner = self.compile_list(element["Expressions"], f"{where}.Expressions")
        return _comprehension(condition, get, inner)

    def compile_multi_key(self, element: Mapping[str, Any], condition: str, where: str) -> Predicate:
        if self.inline:
            raise self.fail(where, element, "multi-key comparison is not allowed in InlineFilters")
        extra = set(element) - {"Condition", "Values"}
        if extra:
            raise self.fail(where, element, f"unexpected key(s) {sorted(extra)}")
        specs = element["Values"]
        if not isinstance(specs, list) or len(specs) != 2 or not all(isinstance(s, Mapping) for s in specs):
            raise self.fail(where, element, "a multi-key comparison needs Values: exactly two key specifiers")
        getters = [compile_key(spec, where=f"{where}.Values[{i}]") for i, spec in enumerate(specs)]
        positive = _NEGATIONS.get(condition, condition)
        if positive not in _BINARY and positive != "IsIn":
            raise self.fail(where, element, f"Condition {condition} cannot compare two fields")
        make = _BINARY[positive][0] if positive in _BINARY else lambda right: _membership(right)
        return _two_fields(getters[0], getters[1], make, negate=positive != condition)

    def compile_condition(self, element: Mapping[str, Any], condition: str, where: str) -> Predicate:
        get = self.key_getter(element, where, {"Condition", "Value", "Values"})
        has_value, has_values = "Value" in element, "Values" in element
        if condition in _EXISTENCE or condition in _UNARY:
            # Content also writes these as `Value: true`; `Value: false` asks for the opposite.
            wanted = element.get("Value", True)
            if has_values or type(wanted) is not bool:
                message = f"Condition {condition} takes no Values and at most a boolean Value"
                raise self.fail(where, element, message)
            if condition in _EXISTENCE:
                test = _EXISTENCE[condition]
                return self.existence(get, test if wanted else _negate(test))
            if wanted:
                return self.guarded(get, _UNARY[condition], null_result=False)
            return self.guarded(get, _negate(_UNARY[condition]), null_result=True)
        positive = _NEGATIONS.get(condition, condition)
        negate = positive != condition
        if positive == "IsIn":
            if has_value or not has_values:
                raise self.fail(where, element, f"Condition {condition} needs Values (a list), not Value")
            values = element["Values"]
            if not isinstance(values, list):
                raise self.fail(where, element, "Values must be a list")
            kinds = {"bool" if type(v) is bool else "number" if type(v) in (int, float) else
                     "string" if type(v) is str else "other" for v in values}
            if "other" in kinds or len(kinds) > 1:
                raise self.fail(where, element, "Values must be all strings, all numbers or all booleans")
            test = _membership(values)
        else:
            if has_values or not has_value:
                raise self.fail(where, element, f"Condition {condition} needs a single Value")
            make, kind = _BINARY[positive]
            value = element["Value"]
            if not _literal_kind_ok(value, kind):
                raise self.fail(where, element, f"Condition {condition} needs Value to be {kind}")
            try:
                test = make(value)
            except ValueError as exc:
                raise self.fail(where, element, str(exc)) from None
            if positive == "Equals":
                return self.equality(get, value, negate=negate)
        if negate:
            return self.guarded(get, _negate(test), null_result=True)
        return self.guarded(get, test, null_result=False)

    def equality(self, get: Getter, value: Any, *, negate: bool) -> Predicate:
        """Equals / DoesNotEqual inlined: the most common condition saves a call per evaluation."""
        missing_result = True if self.inline else negate

        def evaluate(event: Any) -> bool:
            t = get(event)
            if t is None:
                return negate
            if t is MISSING:
                return missing_result
            return (t != value) if negate else (t == value)

        return evaluate

    def existence(self, get: Getter, test: Predicate) -> Predicate:
        return lambda event: test(get(event))

    def guarded(self, get: Getter, test: Predicate, *, null_result: bool) -> Predicate:
        missing_result = True if self.inline else null_result

        def evaluate(event: Any) -> bool:
            t = get(event)
            if t is None:
                return null_result
            if t is MISSING:
                return missing_result
            return test(t)

        return evaluate


def _negate(test: Predicate) -> Predicate:
    return lambda t: not test(t)


def _always(result: bool) -> Predicate:
    return lambda event: result


def _all(children: list[Predicate]) -> Predicate:
    if len(children) == 1:
        return children[0]
    members = tuple(children)

    def all_of(event: Any) -> bool:
        for child in members:  # noqa: SIM110 - a plain loop is measurably faster than all(<genexpr>)
            if not child(event):
                return False
        return True

    return all_of


def _any(children: list[Predicate]) -> Predicate:
    members = tuple(children)

    def any_of(event: Any) -> bool:
        for child in members:  # noqa: SIM110 - a plain loop is measurably faster than any(<genexpr>)
            if child(event):
                return True
        return False

    return any_of


def _only_one(children: list[Predicate]) -> Predicate:
    members = tuple(children)
    return lambda event: sum(1 for child in members if child(event)) == 1


def _none(children: list[Predicate]) -> Predicate:
    members = tuple(children)
    return lambda event: not any(child(event) for child in members)


def _comprehension(condition: str, get: Getter, inner: Predicate) -> Predicate:
    def elements(event: Any) -> Any:
        value = get(event)
        return value if _is_list(value) else None

    if condition == "AnyElement":
        return lambda event: (items := elements(event)) is not None and any(inner(x) for x in items)
    if condition == "AllElements":
        return lambda event: (items := elements(event)) is not None and all(inner(x) for x in items)
    if condition == "OnlyOneElement":
        return lambda event: (items := elements(event)) is not None and sum(1 for x in items if inner(x)) == 1
    return lambda event: (items := elements(event)) is None or not any(inner(x) for x in items)


def _two_fields(left: Getter, right: Getter, make: Callable[[Any], Predicate], *, negate: bool) -> Predicate:
    def compare(event: Any) -> bool:
        t, v = left(event), right(event)
        if t is None or t is MISSING or v is None or v is MISSING:
            return negate
        try:
            result = make(v)(t)
        except ValueError:  # the right-hand field is not a usable literal (e.g. not a CIDR)
            result = False
        return not result if negate else result

    return compare


def compile_match(expressions: list[Any], *, where: str) -> Predicate:
    """Compile a match-expression list (implicitly ANDed) into `predicate(raw_event) -> bool`.

    `where` names the location for error messages (e.g. "rules/x.yml: Detection"). Raises ContentError
    naming the offending element when the expressions are invalid."""
    return _Compiler(inline=False).compile_list(expressions, where)


def compile_inline_filters(filters: list[Any], where: str) -> Predicate:
    """Compile a spec's `InlineFilters` (`where` names the spec, e.g. its file; errors then read
    "<where>: InlineFilters[0].Any[1]: ..."). Only KeyPath/Enrichment keys and All/Any combinators are
    allowed, no list comprehension, multi-key or absolute conditions. A missing field makes its filter
    pass."""
    return _Compiler(inline=True).compile_list(filters, f"{where}: InlineFilters")
