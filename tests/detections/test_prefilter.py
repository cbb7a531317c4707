"""The rule prefilter: guards derived from rule source must be sound, and GuardIndex must apply them."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from onca.detections.event import PantherEvent
from onca.detections.prefilter import Guard, GuardIndex, derive_guard

HELPERS = {
    "aws_helpers": textwrap.dedent(
        '''
        def cloudtrail_success(event):
            """Pure: only event reads and boolean logic."""
            if event.get("errorCode", "") or event.get("errorMessage", ""):
                return False
            return True

        def is_iam(event):
            return event.get("eventSource") == "iam.amazonaws.com"

        AUDIT = []

        def noisy_success(event):
            AUDIT.append(event.get("eventName"))
            return True

        LISTED = ["CreateUser"]
        FROZEN = ("CreateUser",)

        def in_listed(event):
            return event.get("eventName") in LISTED

        def in_frozen(event):
            return event.get("eventName") in FROZEN

        def may_raise(event):
            return event.get("errorCode").startswith("Access")
        '''
    )
}


def guard_of(body: str, **kwargs: Any) -> Guard | None:
    return derive_guard(textwrap.dedent(body), helpers=HELPERS, **kwargs)


def run_rule(body: str, log: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(body), "<rule>", "exec"), namespace)  # the rule itself, no helpers
    return namespace["rule"](PantherEvent(log))


def admits(guard: Guard | None, log: dict[str, Any]) -> bool:
    return guard is None or guard.admits(PantherEvent(log))


# --- recognised patterns -------------------------------------------------------------------

EARLY_RETURN = """
EVENTS = {"CreateUser", "DeleteUser"}

def rule(event):
    name = event.get("eventName")
    if name not in EVENTS:
        return False
    return event.deep_get("userIdentity", "type") == "Root"
"""


def test_early_return_on_a_set_constant_guards_exactly_those_values() -> None:
    guard = guard_of(EARLY_RETURN)
    assert guard is not None
    root = {"userIdentity": {"type": "Root"}}
    assert admits(guard, {"eventName": "CreateUser", **root})
    assert not admits(guard, {"eventName": "ListUsers", **root})
    assert not admits(guard, root)  # missing -> None, not in the set
    assert run_rule(EARLY_RETURN, {"eventName": "ListUsers", **root}) is False
    # The final comparison also bounds the rule: it can only match a Root identity.
    assert not admits(guard, {"eventName": "CreateUser"})


@pytest.mark.parametrize(
    "rule_body",
    [
        'return event.get("eventName") == "StopLogging"',
        'return "StopLogging" == event.get("eventName")',
        'return event.get("eventName") in ("StopLogging",)',
        'return event.get("eventName", "") in ["StopLogging"] and event.get("x") != "y"',
        'if event.get("eventName") != "StopLogging":\n        return False\n    return True',
        'return event.get("eventName") == "StopLogging" or event.get("eventName") == "StopLogging"',
        'return not event.get("eventName") != "StopLogging"',
        'return all([event.get("errorCode") is None, event.get("eventName") == "StopLogging"])',
        'return event.deep_get("eventName", default="") == "StopLogging"',
        'if event.get("eventName") == "StopLogging":\n        return True\n    return False',
    ],
)
def test_single_value_forms(rule_body: str) -> None:
    source = f"def rule(event):\n    {rule_body}\n"
    guard = guard_of(source)
    assert guard is not None
    assert admits(guard, {"eventName": "StopLogging"})
    assert not admits(guard, {"eventName": "StartLogging"})
    assert run_rule(source, {"eventName": "StartLogging"}) is False


def test_or_of_equalities_is_a_union() -> None:
    name = 'event.get("eventName")'
    guard = guard_of(f'def rule(event):\n    return {name} == "A" or {name} == "B"\n')
    assert guard is not None
    assert admits(guard, {"eventName": "A"}) and admits(guard, {"eventName": "B"})
    assert not admits(guard, {"eventName": "C"})


def test_later_conjunct_used_after_pure_helper_and_other_field() -> None:
    source = """
    from aws_helpers import cloudtrail_success

    def rule(event):
        return (
            cloudtrail_success(event)
            and event.get("eventSource") == "s3.amazonaws.com"
            and event.get("eventName") in ("DeleteBucket", "PutBucketPolicy")
            and unknown_function(event)
        )
    """
    guard = guard_of(source)
    assert guard is not None
    assert {test.ref.path for test in guard.tests} == {("eventSource",), ("eventName",)}
    assert admits(guard, {"eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket"})
    assert not admits(guard, {"eventSource": "s3.amazonaws.com", "eventName": "GetObject"})
    assert not admits(guard, {"eventSource": "ec2.amazonaws.com", "eventName": "DeleteBucket"})


def test_straight_line_helper_is_inlined() -> None:
    source = """
    from aws_helpers import is_iam

    def rule(event):
        if not is_iam(event):
            return False
        return True
    """
    guard = guard_of(source)
    assert guard is not None
    assert not admits(guard, {"eventSource": "s3.amazonaws.com"})


def test_lower_cased_comparison_guards_on_the_lower_cased_value() -> None:
    source = 'def rule(event):\n    return event.get("action", "").lower() == "delete"\n'
    guard = guard_of(source)
    assert guard is not None
    assert admits(guard, {"action": "DELETE"})
    assert not admits(guard, {"action": "Create"})
    # A non-str value makes .lower() raise: the rule must run to report that error.
    assert admits(guard, {"action": 5})
    assert admits(guard, {"action": None})
    with pytest.raises(AttributeError):
        run_rule(source, {"action": None})


def test_subscript_access_only_skips_present_values() -> None:
    source = 'def rule(event):\n    return event["eventName"] == "X"\n'
    guard = guard_of(source)
    assert guard is not None
    assert not admits(guard, {"eventName": "Y"})
    assert admits(guard, {})  # [] raises KeyError: must run
    with pytest.raises(KeyError):
        run_rule(source, {})


def test_str_method_on_another_field_becomes_a_requirement() -> None:
    source = """
    def rule(event):
        if event.deep_get("userIdentity", "arn", default="").endswith("/sso"):
            return False
        return event.get("eventName") == "X"
    """
    guard = guard_of(source)
    assert guard is not None
    assert not admits(guard, {"eventName": "Y", "userIdentity": {"arn": "a"}})
    # A non-str arn makes endswith raise before the eventName test is reached.
    assert admits(guard, {"eventName": "Y", "userIdentity": {"arn": 7}})
    with pytest.raises(AttributeError):
        run_rule(source, {"eventName": "Y", "userIdentity": {"arn": 7}})


def test_helper_that_may_raise_becomes_a_requirement() -> None:
    source = """
    from aws_helpers import may_raise

    def rule(event):
        return may_raise(event) and event.get("eventName") == "A"
    """
    guard = guard_of(source)
    assert guard is not None
    assert not admits(guard, {"eventName": "B", "errorCode": "AccessDenied"})
    # errorCode None: the helper raises AttributeError, so the rule must run to report it.
    assert admits(guard, {"eventName": "B"})


def test_helper_module_constants_must_be_immutable() -> None:
    # Any importer could append to a helper module's list; a tuple cannot change.
    listed = "from aws_helpers import in_listed\ndef rule(event):\n    return in_listed(event)\n"
    frozen = "from aws_helpers import in_frozen\ndef rule(event):\n    return in_frozen(event)\n"
    assert guard_of(listed) is None
    guard = guard_of(frozen)
    assert guard is not None
    assert not admits(guard, {"eventName": "DeleteUser"})


def test_set_membership_skips_only_hashable_values() -> None:
    guard = guard_of('def rule(event):\n    return event.get("eventName") in {"A"}\n')
    assert guard is not None
    assert not admits(guard, {"eventName": "B"})
    assert admits(guard, {"eventName": ["B"]})  # unhashable: `in {...}` raises TypeError


# --- refused patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        # the constant is rebound
        'NAMES = {"A"}\nNAMES = {"B"}\ndef rule(event):\n    return event.get("eventName") in NAMES\n',
        # the constant is mutated
        'NAMES = {"A"}\nNAMES.add("B")\ndef rule(event):\n    return event.get("eventName") in NAMES\n',
        # the constant is aliased (and could be mutated through the alias)
        'NAMES = ["A"]\nOTHER = NAMES\ndef rule(event):\n    return event.get("eventName") in NAMES\n',
        # declared global in a function
        'NAMES = {"A"}\ndef f():\n    global NAMES\n'
        'def rule(event):\n    return event.get("eventName") in NAMES\n',
        # reflective access to module globals
        'NAMES = {"A"}\nglobals()["X"] = 1\ndef rule(event):\n    return event.get("eventName") in NAMES\n',
        # a helper with a side effect is called before the test
        "from aws_helpers import noisy_success\n"
        'def rule(event):\n    return noisy_success(event) and event.get("eventName") == "A"\n',
        # an unknown helper (not in the helpers map) before the test
        "from elsewhere import check\n"
        'def rule(event):\n    return check(event) and event.get("eventName") == "A"\n',
        # a KV-store call before the test
        "from panther_detection_helpers.caching import increment_counter\n"
        "def rule(event):\n"
        '    increment_counter("k")\n'
        '    return event.get("eventName") == "A"\n',
        # a side-effecting statement before the test
        'SEEN = []\ndef rule(event):\n    SEEN.append(1)\n    return event.get("eventName") == "A"\n',
        # the result is not a bool when the first operand is falsy
        'def rule(event):\n    return event.get("errorCode") and event.get("eventName") == "A"\n',
        # falling off the end returns None (an error), never False
        'def rule(event):\n    if event.get("eventName") == "A":\n        return True\n',
        # substring test, not equality
        'def rule(event):\n    return "Delete" in event.get("eventName")\n',
        # rule redefined
        'def rule(event):\n    return event.get("eventName") == "A"\nrule = lambda e: True\n',
        # ordering comparison may raise on mixed types
        'def rule(event):\n    return event.get("count") > 5\n',
        # a local shadows the constant on some paths
        'NAMES = {"A"}\ndef rule(event):\n'
        '    if event.get("x"):\n        NAMES = {"B"}\n    return event.get("eventName") in NAMES\n',
    ],
)
def test_unsound_patterns_get_no_guard(source: str) -> None:
    assert derive_guard(source, helpers=HELPERS) is None


def test_lower_cased_guard_is_not_derived_for_raw_comparison_of_other_case() -> None:
    # The test is on the lower-cased value: raw "DELETE" must not be rejected.
    guard = guard_of('def rule(event):\n    return event.get("action", "").lower() in ("delete",)\n')
    assert guard is not None
    assert admits(guard, {"action": "DeLeTe"})


def test_other_function_name_can_be_analysed() -> None:
    source = 'def policy(event):\n    return event.get("eventName") == "A"\n'
    assert derive_guard(source) is None
    assert derive_guard(source, func_name="policy") is not None


# --- GuardIndex ----------------------------------------------------------------------------


def _index() -> GuardIndex:
    return GuardIndex(
        [
            guard_of('def rule(event):\n    return event.get("eventName") == "A"\n'),
            None,  # an unguarded rule always runs
            guard_of('def rule(event):\n    return event.deep_get("user", "type", default="") == "Root"\n'),
            guard_of('def rule(event):\n    return event.get("eventName") in ("A", "B", 1)\n'),
        ]
    )


def test_index_keeps_original_order_and_unguarded_rules() -> None:
    index = _index()
    assert index.paths == 2
    assert index.candidates(PantherEvent({"eventName": "A", "user": {"type": "Root"}})) == (0, 1, 2, 3)
    assert index.candidates(PantherEvent({"eventName": "B"})) == (1, 3)
    assert index.candidates(PantherEvent({"eventName": "Z"})) == (1,)


def test_index_uses_case_insensitive_lookups() -> None:
    index = _index()
    assert index.candidates(PantherEvent({"EVENTNAME": "A", "User": {"TYPE": "Root"}})) == (0, 1, 2, 3)


def test_index_on_missing_fields_and_non_str_values() -> None:
    index = _index()
    assert index.candidates(PantherEvent({})) == (1,)
    assert index.candidates(PantherEvent({"eventName": None})) == (1,)
    # 1 == True in Python, so a rule testing `in (..., 1)` may match True: it must run.
    assert index.candidates(PantherEvent({"eventName": True})) == (1, 3)
    assert index.candidates(PantherEvent({"eventName": 1.0})) == (1, 3)
    # Containers are never rejected, memoised or not.
    containers = {"eventName": ["A"], "user": {"type": {"x": 1}}}
    for _ in range(2):
        assert index.candidates(PantherEvent(containers)) == (0, 1, 2, 3)
    # A non-mapping on the deep_get path gives the default, which is not "Root".
    assert index.candidates(PantherEvent({"eventName": "A", "user": "Root"})) == (0, 1, 3)


def test_index_requirement_failure_keeps_the_rule() -> None:
    guard = guard_of(
        """
        def rule(event):
            if event.get("agent", "").startswith("aws-internal"):
                return False
            return event.get("eventName") == "A"
        """
    )
    index = GuardIndex([guard])
    assert index.candidates(PantherEvent({"eventName": "B", "agent": "curl"})) == ()
    assert index.candidates(PantherEvent({"eventName": "B", "agent": 3})) == (0,)
    assert index.candidates(PantherEvent({"eventName": "B"})) == ()  # default "" is a str


def test_index_runs_everything_when_a_lookup_raises() -> None:
    class Broken(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("broken")

    assert _index().candidates(Broken()) == (0, 1, 2, 3)


def test_index_without_guards_returns_all() -> None:
    assert GuardIndex([None, None]).candidates(PantherEvent({"eventName": "A"})) == (0, 1)
