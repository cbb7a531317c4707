"""The production runner: what the pipeline gets back for a batch of events of one log type."""

from __future__ import annotations

import json

import pytest

from onca.detections.kvstore import KVStore, set_default_store
from onca.detections.runner import Runner

from .conftest import ContentDir


@pytest.fixture(autouse=True)
def fresh_store() -> None:
    set_default_store(KVStore(None))
    yield
    set_default_store(None)


def build(content: ContentDir, **kwargs: object) -> Runner:
    runner = Runner.from_path(content.root, **kwargs)  # type: ignore[arg-type]
    return runner


def test_matches_carry_every_alert_field(content: ContentDir) -> None:
    content.rule("Prod.Full", """
        def rule(event):
            return event.get("eventName") == "DeleteTrail"

        def title(event):
            return f"Trail deleted by {event.deep_get('userIdentity', 'arn')}"

        def alert_context(event):
            return {"arn": event.deep_get("userIdentity", "arn")}

        def severity(event):
            return "critical" if event.get("region") == "us-east-1" else "DEFAULT"

        def unique(event):
            return event.deep_get("userIdentity", "arn")

        def destinations(event):
            return ["slack-secops"]
        """, LogTypes=["AWS.CloudTrail"], Description="d", Reference="https://r", Runbook="rb")
    runner = build(content, destinations={"slack-secops": "dest-1"})
    events = [
        {"eventName": "DeleteTrail", "userIdentity": {"arn": "arn:aws:iam::1:user/a"}, "region": "us-east-1"},
        {"eventName": "ListBuckets"},
        {"eventName": "DeleteTrail", "userIdentity": {"arn": "arn:aws:iam::1:user/b"}, "region": "eu-west-1"},
    ]
    result = runner.evaluate("AWS.CloudTrail", events)
    assert result.errors == []
    first, second = result.matches
    assert (first.rule_id, first.event_index, second.event_index) == ("Prod.Full", 0, 2)
    assert first.title == "Trail deleted by arn:aws:iam::1:user/a"
    assert first.dedup == first.title  # no dedup(): the title is the dedup string
    assert first.severity == "CRITICAL"
    assert second.severity == "HIGH"  # DEFAULT means the YAML severity in production
    assert json.loads(first.alert_context) == {"arn": "arn:aws:iam::1:user/a"}
    assert first.unique == "arn:aws:iam::1:user/a"
    assert first.destinations == ["dest-1"]
    assert (first.description, first.reference, first.runbook) == ("d", "https://r", "rb")


def test_auxiliary_failures_fall_back_to_defaults_and_matcher_errors_are_reported(content: ContentDir) -> None:
    content.rule("Prod.Fragile", """
        def rule(event):
            return event["kind"] == "bad"

        def title(event):
            raise ValueError("no title")

        def alert_context(event):
            raise RuntimeError("no context")

        def destinations(event):
            return ["unknown-destination"]
        """, LogTypes=["Custom.App"])
    runner = build(content)
    result = runner.evaluate("Custom.App", [{"kind": "bad"}, {"other": 1}, {"kind": 3}])
    (match,) = result.matches
    assert match.title == "Prod.Fragile"
    assert match.dedup == "Prod.Fragile"  # dedup falls back to the (defaulted) title, as in the reference
    assert json.loads(match.alert_context) == {"_error": "RuntimeError('no context')"}
    assert match.destinations is None
    (error,) = result.errors
    assert (error.rule_id, error.event_index, error.error_type) == ("Prod.Fragile", 1, "KeyError")


def test_non_bool_matcher_result_is_a_rule_error(content: ContentDir) -> None:
    content.rule("Prod.Truthy", "def rule(event):\n    return event.get('x')\n", LogTypes=["Custom.App"])
    result = build(content).evaluate("Custom.App", [{"x": "yes"}])
    assert result.matches == []
    assert result.errors[0].error_type == "FunctionReturnTypeError"
    assert "returned [str], expected [bool]" in result.errors[0].message


def test_rules_are_indexed_by_log_type_and_disabled_rules_do_not_run(content: ContentDir) -> None:
    content.rule("Prod.A", "def rule(event):\n    return True\n", LogTypes=["Type.A", "Type.B"])
    content.rule("Prod.Off", "def rule(event):\n    return True\n", LogTypes=["Type.A"], Enabled=False)
    content.rule("Prod.C", "def rule(event):\n    return True\n", LogTypes=["Type.C"])
    runner = build(content)
    assert runner.rule_ids("Type.A") == ["Prod.A"]
    assert runner.log_types == ["Type.A", "Type.B", "Type.C"]
    assert [m.rule_id for m in runner.evaluate("Type.C", [{}]).matches] == ["Prod.C"]
    assert runner.evaluate("Type.Unknown", [{}]).matches == []


def test_guard_index_gives_the_same_results_as_running_every_rule(content: ContentDir) -> None:
    content.rule("Prod.Guarded", """
        WATCHED = {"StopLogging", "DeleteTrail"}

        def rule(event):
            if event.get("eventName") not in WATCHED:
                return False
            return event.get("errorCode") is None
        """, LogTypes=["AWS.CloudTrail"])
    content.rule("Prod.Raises", """
        def rule(event):
            if event.get("eventSource") != "iam.amazonaws.com":
                return False
            return event["requestParameters"]["userName"] == "root"
        """, LogTypes=["AWS.CloudTrail"])
    events = [
        {"eventName": "StopLogging"},
        {"EVENTNAME": "DeleteTrail"},  # keys are case-insensitive for rules, and so for the index
        {"eventName": ["StopLogging"]},  # unhashable values must not be skipped wrongly
        {"eventName": "ListBuckets"},
        {"eventSource": "iam.amazonaws.com"},  # raises KeyError: the error must survive indexing
        {"eventSource": "s3.amazonaws.com"},
        {"eventName": None},
    ]
    indexed = build(content).evaluate("AWS.CloudTrail", events)
    plain = build(content, use_index=False).evaluate("AWS.CloudTrail", events)
    assert [(m.rule_id, m.event_index) for m in indexed.matches] == [(m.rule_id, m.event_index) for m in
                                                                      plain.matches]
    assert [(e.rule_id, e.event_index, e.error_type) for e in indexed.errors] == [
        (e.rule_id, e.event_index, e.error_type) for e in plain.errors]
    assert [(m.rule_id, m.event_index) for m in indexed.matches] == [("Prod.Guarded", 0), ("Prod.Guarded", 1)]
    assert {(e.rule_id, e.event_index) for e in indexed.errors} >= {("Prod.Raises", 4)}


def test_data_models_apply_by_log_type(content: ContentDir) -> None:
    content.spec("data_models/app.yml", {
        "AnalysisType": "datamodel", "DataModelID": "Custom.App.Model", "Enabled": True, "LogTypes": ["Custom.App"],
        "Mappings": [{"Name": "actor_user", "Path": "$.who.name"}],
    })
    content.rule("Prod.Udm", "def rule(event):\n    return event.udm('actor_user') == 'eve'\n", LogTypes=["Custom.App"])
    result = build(content).evaluate("Custom.App", [{"who": {"name": "eve"}}, {"actor_user": "eve"}])
    # the mapped path decides; a mapped name does not fall back to a top-level field
    assert [m.event_index for m in result.matches] == [0]


def test_detection_state_persists_across_batches(content: ContentDir, tmp_path: object) -> None:
    content.rule("Prod.Threshold", """
        from panther_detection_helpers.caching import increment_counter

        def rule(event):
            return increment_counter(f"failed:{event.get('user')}") >= 3
        """, LogTypes=["Custom.App"])
    runner = build(content)
    assert runner.evaluate("Custom.App", [{"user": "a"}, {"user": "a"}]).matches == []
    assert [m.event_index for m in runner.evaluate("Custom.App", [{"user": "b"}, {"user": "a"}]).matches] == [1]


def test_simple_detections_and_inline_filters_run_in_production(content: ContentDir) -> None:
    content.spec("rules/simple.yml", {
        "AnalysisType": "rule", "RuleID": "Prod.Simple", "Enabled": True, "LogTypes": ["GitHub.Audit"],
        "Severity": "Low", "Detection": [{"Key": "action", "Condition": "Equals", "Value": "repo.archived"}],
        "AlertTitle": "Repository [{repo}] archived",
    })
    content.rule("Prod.Filtered", "def rule(event):\n    return True\n", LogTypes=["GitHub.Audit"],
                 InlineFilters=[{"KeyPath": "actor", "Condition": "DoesNotEqual", "Value": "bot"}])
    events = [{"action": "repo.archived", "repo": "acme/web", "actor": "bot"}, {"action": "x", "actor": "ann"}]
    result = build(content).evaluate("GitHub.Audit", events)
    assert sorted((m.rule_id, m.event_index) for m in result.matches) == [("Prod.Filtered", 1), ("Prod.Simple", 0)]
    assert next(m for m in result.matches if m.rule_id == "Prod.Simple").title == "Repository [acme/web] archived"


def test_a_rule_that_loops_is_cut_off_and_reported(content: ContentDir) -> None:
    content.rule("Prod.Loops", """
        def rule(event):
            if event.get("loop"):
                while True:
                    pass
            return True
        """, LogTypes=["Custom.App"])
    content.rule("Prod.Fine", "def rule(event):\n    return event.get('x') == 1\n", LogTypes=["Custom.App"])
    runner = build(content, time_limit=0.2)
    result = runner.evaluate("Custom.App", [{"loop": True, "x": 1}, {"x": 1}])
    (error,) = result.errors
    assert (error.rule_id, error.event_index, error.error_type) == ("Prod.Loops", 0, "RuleTimeout")
    assert "0.2 s" in error.message
    # the other rule, and the looping rule on the next event, still ran
    assert sorted((m.rule_id, m.event_index) for m in result.matches) == [
        ("Prod.Fine", 0), ("Prod.Fine", 1), ("Prod.Loops", 1)]
