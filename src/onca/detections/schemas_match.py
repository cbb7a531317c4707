"""Shape checks for match expressions: `Detection`, `InlineFilters` and correlation-rule detections.

An expression's form is fixed by the set of keys it carries (a key specifier plus Condition, with
Value, Values or Expressions; a combinator; an absolute condition; a two-field comparison; or a
correlation Group/Sequence), so each list item is matched to its form by its keys and then its values
are type-checked by that form's record. Combinators and list comprehensions recurse.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, TypeAdapter, ValidationError

from onca.detections.schemas_messages import Loc, at, described, kind, show, validation_messages
from onca.detections.schemas_types import (
    Bool,
    Int,
    KeySpecifier,
    Schedule,
    Str,
    StrList,
    deep_key_step,
    one_of,
    record,
    spec_error,
)

_MAX_DEPTH = 64
_LIST_CONDITIONS = ("AllElements", "AnyElement", "NoElement", "OnlyOneElement")
_ABSOLUTE_CONDITIONS = ("AlwaysTrue", "AlwaysFalse")
_COMBINATORS = ("All", "Any", "OnlyOne", "None")
_INLINE_COMBINATORS = ("All", "Any")


def _scalar(value: Any) -> Any:
    if type(value) not in (str, int, float, bool):
        raise spec_error(f"expected a string, number or boolean, got {described(value)}")
    return value


def _homogeneous(values: Any) -> Any:
    # The schema accepts a list of numbers, of strings or of booleans, never a mix (ints count as numbers).
    kinds = {"number" if type(item) in (int, float) else kind(item) for item in values}
    if not kinds <= {"number", "string", "boolean"} or len(kinds) > 1:
        raise spec_error(
            f"expected a list of only numbers, only strings or only booleans, got {show(values)}"
        )
    return values


def _two_specifiers(values: Any) -> Any:
    if len(values) != 2:
        raise spec_error(f"a two-field comparison needs exactly 2 key specifiers, got {len(values)}")
    return values


def _exactly_one_item(items: list[Any]) -> list[Any]:
    if len(items) != 1:
        raise spec_error(f"expected exactly 1 item, got {len(items)}")
    return items


_Scalar = Annotated[Any, AfterValidator(_scalar)]
_Values = Annotated[list[Any], AfterValidator(_homogeneous)]
_DeepKey = list[Annotated[Any, AfterValidator(deep_key_step)]]
_Enrichment = record("Enrichment", {"Table": Str, "Selector": Str, "FieldPath": Str})
_SPECIFIERS: dict[str, Any] = {"Key": Str, "DeepKey": _DeepKey, "KeyPath": Str, "Enrichment": _Enrichment}
_Step = record(
    "Step",
    {
        "ID": NotRequired[Str],
        "RuleID": Str,
        "MinMatchCount": NotRequired[Int],
        "MaxMatchCount": NotRequired[Int],
        "Absence": NotRequired[Bool],
    },
)
_ORDER = NotRequired[Annotated[Str, AfterValidator(one_of(("Chronological", "ReverseChronological")))]]
_Group = record(
    "Group",
    {
        "Group": list[_Step],
        "MatchCriteria": NotRequired[dict[Any, list[record("Criterion", {"GroupID": Str, "Match": Str})]]],
        "Schedule": Schedule,
        "EventEvaluationOrder": _ORDER,
        "LookbackWindowMinutes": NotRequired[Int],
        "MinMatchCount": NotRequired[Int],
    },
)
_TransitionMatch = record("Match", {"On": NotRequired[Str], "From": NotRequired[Str], "To": NotRequired[Str]})
_Sequence = record(
    "Sequence",
    {
        "Sequence": list[_Step],
        "Transitions": NotRequired[
            list[
                record(
                    "Transition",
                    {
                        "ID": NotRequired[Str],
                        "From": Str,
                        "To": Str,
                        "WithinTimeFrameMinutes": NotRequired[Int],
                        "Match": NotRequired[
                            Annotated[list[_TransitionMatch], AfterValidator(_exactly_one_item)]
                        ],
                    },
                )
            ]
        ],
        "Schedule": Schedule,
        "EventEvaluationOrder": _ORDER,
        "LookbackWindowMinutes": NotRequired[Int],
    },
)


def _forms(specifiers: tuple[str, ...], *, list_comprehension: bool) -> dict[frozenset[str], Any]:
    forms: dict[frozenset[str], Any] = {}
    for name in specifiers:
        target = _SPECIFIERS[name]
        if name != "Enrichment":
            forms[frozenset((name, "Condition"))] = record("Expression", {name: target, "Condition": Str})
        forms[frozenset((name, "Condition", "Value"))] = record(
            "Expression", {name: target, "Condition": Str, "Value": _Scalar}
        )
        forms[frozenset((name, "Condition", "Values"))] = record(
            "Expression", {name: target, "Condition": Str, "Values": _Values}
        )
        if list_comprehension and name != "Enrichment":
            # List comprehension keys are relative to each element, so DeepKey may hold only names.
            elements = StrList if name == "DeepKey" else target
            forms[frozenset((name, "Condition", "Expressions"))] = record(
                "Expression",
                {
                    name: elements,
                    "Condition": Annotated[Str, AfterValidator(one_of(_LIST_CONDITIONS))],
                    "Expressions": Any,
                },
            )
    return forms


_DETECTION_FORMS = _forms(("Key", "DeepKey", "KeyPath", "Enrichment"), list_comprehension=True)
_DETECTION_FORMS[frozenset(("Condition",))] = record(
    "Expression", {"Condition": Annotated[Str, AfterValidator(one_of(_ABSOLUTE_CONDITIONS))]}
)
_DETECTION_FORMS[frozenset(("Condition", "Values"))] = record(
    "Expression", {"Condition": Str, "Values": Annotated[list[KeySpecifier], AfterValidator(_two_specifiers)]}
)
_INLINE_FORMS = _forms(("KeyPath", "Enrichment"), list_comprehension=False)

_DETECTION_HINT = (
    "expected a key (Key, DeepKey, KeyPath or Enrichment) with Condition and optionally Value, Values or "
    "Expressions; one of All, Any, OnlyOne, None; Condition AlwaysTrue/AlwaysFalse; Condition with two "
    "key specifiers in Values; or a correlation Group/Sequence with Schedule"
)
_INLINE_HINT = (
    "expected KeyPath or Enrichment with Condition and optionally Value or Values; or one of All, Any"
)


@cache
def _adapter(form: Any) -> TypeAdapter[Any]:
    return TypeAdapter(form)


def _check(form: Any, item: dict[Any, Any], loc: Loc) -> list[str]:
    try:
        _adapter(form).validate_python(item)
    except ValidationError as exc:
        return [message for _, message in validation_messages(exc, form, loc)]
    return []


def _correlation_form(keys: frozenset[Any]) -> Any:
    if "Group" in keys and "Sequence" not in keys:
        return _Group
    if "Sequence" in keys and "Group" not in keys:
        return _Sequence
    return None


def match_expression_errors(value: Any, loc: Loc, *, inline: bool = False, depth: int = 0) -> list[str]:
    """Messages for a list of match expressions at `loc`; `inline` allows only the InlineFilters subset."""
    noun = "inline filters" if inline else "match expressions"
    if type(value) is not list:
        return [at(loc, f"expected a list of {noun}, got {described(value)}")]
    if depth > _MAX_DEPTH:
        return [at(loc, f"{noun} are nested too deeply")]
    errors: list[str] = []
    for index, item in enumerate(value):
        item_loc = (*loc, index)
        if type(item) is not dict:
            errors.append(at(item_loc, f"expected a mapping, got {described(item)}"))
            continue
        keys = frozenset(item)
        combinators = _INLINE_COMBINATORS if inline else _COMBINATORS
        if len(keys) == 1 and next(iter(keys)) in combinators:
            name = next(iter(keys))
            errors += match_expression_errors(item[name], (*item_loc, name), inline=inline, depth=depth + 1)
            continue
        form = (_INLINE_FORMS if inline else _DETECTION_FORMS).get(keys)
        if form is None and not inline:
            form = _correlation_form(keys)
        if form is None:
            shown = ", ".join(sorted(map(str, keys))) or "none"
            errors.append(
                at(
                    item_loc,
                    f"not a valid expression (keys: {shown}); {_INLINE_HINT if inline else _DETECTION_HINT}",
                )
            )
            continue
        errors += _check(form, item, item_loc)
        if "Expressions" in keys:
            errors += match_expression_errors(
                item["Expressions"], (*item_loc, "Expressions"), depth=depth + 1
            )
    return errors
