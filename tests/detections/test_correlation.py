"""Correlation rules: validation, Group windows, Sequence chains, and the unit-test time formats."""

from __future__ import annotations

from typing import Any

import pytest

from onca.detections.correlation import CorrelationRule, Occurrence, to_minutes
from onca.detections.errors import ContentError
from onca.detections.yaml_dialect import load_yaml

SCHEDULE = {"RateMinutes": 60, "TimeoutMinutes": 5}


def group_rule(
    groups: list[dict[str, Any]], *, lookback: int = 60, criteria: bool = True, **extra: Any
) -> CorrelationRule:
    body: dict[str, Any] = {"Group": groups, "Schedule": SCHEDULE, "LookbackWindowMinutes": lookback, **extra}
    if criteria:
        body["MatchCriteria"] = {"user": [{"GroupID": g["ID"], "Match": f"{g['ID']}.user"} for g in groups]}
    return CorrelationRule({"RuleID": "Test.Group", "Detection": [body]}, "correlation_rules/g.yml")


def outputs(*entries: tuple[str, str, list[Any]]) -> list[dict[str, Any]]:
    """(group ID, user, times) -> RuleOutputs, each group matching on its own path `<ID>.user`."""
    return [{"ID": gid, "Matches": {f"{gid}.user": {user: times}}} for gid, user, times in entries]


LOGIN_THEN_CHANGE = [{"ID": "Login", "RuleID": "T.Login"}, {"ID": "Change", "RuleID": "T.Change"}]


class TestGroup:
    rule = group_rule(LOGIN_THEN_CHANGE)

    def test_fires_when_every_group_matches_the_same_key_in_the_window(self) -> None:
        assert self.rule.evaluate_test(outputs(("Login", "ana", [0]), ("Change", "ana", [30]))) is True

    def test_order_does_not_matter(self) -> None:
        assert self.rule.evaluate_test(outputs(("Login", "ana", [30]), ("Change", "ana", [0]))) is True

    def test_different_join_values_do_not_correlate(self) -> None:
        assert self.rule.evaluate_test(outputs(("Login", "ana", [0]), ("Change", "bob", [5]))) is False

    def test_a_missing_group_does_not_fire(self) -> None:
        assert self.rule.evaluate_test(outputs(("Login", "ana", [0, 1, 2]))) is False

    def test_window_edges_are_inclusive(self) -> None:
        assert self.rule.evaluate_test(outputs(("Login", "ana", [0]), ("Change", "ana", [60]))) is True
        assert self.rule.evaluate_test(outputs(("Login", "ana", [0]), ("Change", "ana", [61]))) is False

    def test_reports_the_join_key_and_window(self) -> None:
        found = self.rule.evaluate(
            self.rule.occurrences_from_test(
                outputs(
                    ("Login", "bob", [0]),
                    ("Login", "ana", [100]),
                    ("Change", "ana", [110]),
                    ("Change", "bob", [500]),
                )
            )
        )
        assert found is not None
        assert (found.join_key, found.start, found.end) == (("ana",), 100.0, 110.0)

    def test_min_match_count_needs_that_many_in_one_window(self) -> None:
        rule = group_rule(
            [{"ID": "Fail", "RuleID": "T.Fail", "MinMatchCount": 3}, {"ID": "Ok", "RuleID": "T.Ok"}]
        )
        assert rule.evaluate_test(outputs(("Fail", "ana", [0, 10, 20]), ("Ok", "ana", [25]))) is True
        assert rule.evaluate_test(outputs(("Fail", "ana", [0, 10]), ("Ok", "ana", [25]))) is False
        assert rule.evaluate_test(outputs(("Fail", "ana", [0, 10, 90]), ("Ok", "ana", [95]))) is False

    def test_max_match_count_bounds_the_alerts_of_the_evaluated_period(self) -> None:
        capped = {"ID": "Login", "RuleID": "T.Login", "MaxMatchCount": 2}
        rule = group_rule([capped, {"ID": "Change", "RuleID": "T.Change"}])
        assert rule.evaluate_test(outputs(("Login", "ana", [0, 1]), ("Change", "ana", [3]))) is True
        assert rule.evaluate_test(outputs(("Login", "ana", [0, 1, 50]), ("Change", "ana", [3]))) is False
        assert (
            rule.evaluate_test(
                outputs(("Login", "ana", [0, 1]), ("Login", "bob", [2]), ("Change", "ana", [3]))
            )
            is True
        )

    def test_absence_blocks_the_key_wherever_it_occurs(self) -> None:
        rule = group_rule(
            [
                {"ID": "Change", "RuleID": "T.Change"},
                {"ID": "Archived", "RuleID": "T.Archived", "Absence": True},
            ]
        )
        assert rule.evaluate_test(outputs(("Change", "repo", [0]))) is True
        assert rule.evaluate_test(outputs(("Change", "repo", [0]), ("Archived", "repo", [10]))) is False
        assert rule.evaluate_test(outputs(("Change", "repo", [10]), ("Archived", "repo", [0]))) is False
        assert rule.evaluate_test(outputs(("Change", "repo", [0]), ("Archived", "other", [10]))) is True

    def test_rule_level_min_match_count_needs_only_that_many_groups(self) -> None:
        groups = [{"ID": name, "RuleID": f"T.{name}"} for name in ("A", "B", "C")]
        rule = group_rule(groups, MinMatchCount=2)
        assert rule.evaluate_test(outputs(("A", "ana", [0]), ("C", "ana", [5]))) is True
        assert rule.evaluate_test(outputs(("A", "ana", [0]))) is False

    def test_without_match_criteria_all_alerts_share_one_key(self) -> None:
        rule = group_rule(LOGIN_THEN_CHANGE, criteria=False)
        found = rule.evaluate_test(outputs(("Login", "ana", [0]), ("Change", "bob", [5])))
        assert found is True

    def test_list_values_join_on_any_shared_element(self) -> None:
        occurrences = [
            Occurrence("Login", {"Login.user": ["ana", "bob"]}, 0),
            Occurrence("Change", {"Change.user": ["carl", "bob"]}, 1),
        ]
        found = self.rule.evaluate(occurrences)
        assert found is not None and found.join_key == ("bob",)
        assert (
            self.rule.fires([*occurrences[:1], Occurrence("Change", {"Change.user": ["carl"]}, 1)]) is False
        )

    def test_an_alert_without_its_join_field_does_not_join(self) -> None:
        assert (
            self.rule.fires(
                [Occurrence("Login", {"Login.user": "ana"}, 0), Occurrence("Change", {"other": "ana"}, 1)]
            )
            is False
        )

    def test_field_paths_name_what_the_scheduler_must_read(self) -> None:
        assert self.rule.field_paths("Change") == ("Change.user",)


class TestSequence:
    rule = CorrelationRule(
        load_yaml("""
RuleID: Test.Sequence
Detection:
  - Sequence:
      - ID: Created
        RuleID: T.Created
      - ID: Escalated
        RuleID: T.Escalated
      - ID: Deleted
        RuleID: T.Deleted
    Transitions:
      - ID: Created FOLLOWED BY Escalated
        From: Created
        To: Escalated
        WithinTimeFrameMinutes: 30
        Match:
          - On: account
      - ID: Escalated FOLLOWED BY Deleted
        From: Escalated
        To: Deleted
        Match:
          - From: account
            To: target.account
    LookbackWindowMinutes: 120
    Schedule:
      CronExpression: "0 * * * *"
      TimeoutMinutes: 5
"""),
        "correlation_rules/s.yml",
    )

    def run(self, created: list[Any], escalated: list[Any], deleted: list[Any], who: str = "acct") -> bool:
        return self.rule.evaluate_test(
            [
                {"ID": "Created", "Matches": {"account": {"acct": created}}},
                {"ID": "Escalated", "Matches": {"account": {"acct": escalated}}},
                {"ID": "Deleted", "Matches": {"target.account": {who: deleted}}},
            ]
        )

    def test_fires_for_steps_in_order(self) -> None:
        assert self.run([0], [20], [100]) is True

    def test_steps_out_of_order_do_not_fire(self) -> None:
        assert self.run([20], [0], [100]) is False
        assert self.run([0], [50], [40]) is False

    def test_within_time_frame_of_the_transition(self) -> None:
        assert self.run([0], [30], [31]) is True
        assert self.run([0], [31], [32]) is False

    def test_the_whole_chain_must_fit_the_lookback(self) -> None:
        assert self.run([0], [10], [120]) is True
        assert self.run([0], [10], [121]) is False

    def test_a_later_start_can_complete_the_chain(self) -> None:
        assert self.run([0, 100], [110], [130]) is True

    def test_join_value_must_be_shared_across_transitions(self) -> None:
        assert self.run([0], [10], [20], who="other") is False

    def test_min_match_count_of_a_step(self) -> None:
        rule = sequence_rule(
            [{"ID": "Fail", "RuleID": "T.F", "MinMatchCount": 3}, {"ID": "Ok", "RuleID": "T.O"}]
        )
        occurrences = [Occurrence("Fail", {}, t) for t in (0, 1, 2)]
        assert rule.fires([*occurrences, Occurrence("Ok", {}, 3)]) is True
        assert rule.fires([*occurrences, Occurrence("Ok", {}, 1)]) is False

    def test_absent_step_must_not_follow_within_its_time_frame(self) -> None:
        rule = sequence_rule(
            [{"ID": "Opened", "RuleID": "T.O"}, {"ID": "Closed", "RuleID": "T.C", "Absence": True}],
            transitions=[{"From": "Opened", "To": "Closed", "WithinTimeFrameMinutes": 10}],
        )
        assert rule.fires([Occurrence("Opened", {}, 0)]) is True
        assert rule.fires([Occurrence("Opened", {}, 0), Occurrence("Closed", {}, 5)]) is False
        assert rule.fires([Occurrence("Opened", {}, 0), Occurrence("Closed", {}, 11)]) is True


def sequence_rule(
    steps: list[dict[str, Any]], transitions: list[dict[str, Any]] | None = None
) -> CorrelationRule:
    body = {"Sequence": steps, "Schedule": SCHEDULE, "LookbackWindowMinutes": 60}
    if transitions is not None:
        body["Transitions"] = transitions
    return CorrelationRule({"Detection": [body]}, "s.yml")


def test_integer_and_rfc3339_times() -> None:
    assert to_minutes(90) == 90.0
    assert to_minutes("2024-06-01T10:30:00Z") - to_minutes("2024-06-01T10:00:00Z") == 30.0
    assert to_minutes("2024-06-01T12:00:00+02:00") == to_minutes("2024-06-01T10:00:00Z")
    with pytest.raises(ValueError):
        to_minutes("yesterday")


def test_rfc3339_windows_in_a_test() -> None:
    rule = group_rule(LOGIN_THEN_CHANGE, lookback=15)
    near = outputs(("Login", "ana", ["2024-06-01T10:00:00Z"]), ("Change", "ana", ["2024-06-01T10:15:00Z"]))
    far = outputs(("Login", "ana", ["2024-06-01T10:00:00Z"]), ("Change", "ana", ["2024-06-01T10:15:01Z"]))
    assert rule.evaluate_test(near) is True
    assert rule.evaluate_test(far) is False


def test_default_lookback_is_fifteen_minutes() -> None:
    rule = CorrelationRule({"Detection": [{"Group": LOGIN_THEN_CHANGE, "Schedule": SCHEDULE}]}, "g.yml")
    assert rule.lookback == 15
    assert rule.evaluate_test(outputs(("Login", "a", [0]), ("Change", "b", [16]))) is False


@pytest.mark.parametrize(
    ("detection", "message"),
    [
        ({"Group": LOGIN_THEN_CHANGE}, "Schedule: is required"),
        ([], "Detection must be a list holding one"),
        ({"Schedule": SCHEDULE}, "exactly one of Group or Sequence"),
        (
            {"Group": LOGIN_THEN_CHANGE, "Transitions": [], "Schedule": SCHEDULE},
            "unexpected key(s) ['Transitions']",
        ),
        ({"Group": [{"ID": "A"}], "Schedule": SCHEDULE}, "Group[0]: RuleID must be"),
        (
            {"Group": [{"RuleID": "A", "MinMatchCount": 0}], "Schedule": SCHEDULE},
            "MinMatchCount must be a positive",
        ),
        (
            {"Group": [{"RuleID": "A", "MinMatchCount": 3, "MaxMatchCount": 2}], "Schedule": SCHEDULE},
            "MaxMatchCount must be an integer >= MinMatchCount",
        ),
        ({"Group": [{"RuleID": "A", "Absence": True}], "Schedule": SCHEDULE}, "must not be an Absence"),
        ({"Group": [{"RuleID": "A"}, {"RuleID": "A"}], "Schedule": SCHEDULE}, "duplicate ID(s) ['A']"),
        (
            {
                "Group": LOGIN_THEN_CHANGE,
                "Schedule": SCHEDULE,
                "MatchCriteria": {"k": [{"GroupID": "X", "Match": "a"}]},
            },
            "GroupID 'X' is not an ID in Group",
        ),
        (
            {"Group": LOGIN_THEN_CHANGE, "Schedule": SCHEDULE, "LookbackWindowMinutes": "1h"},
            "LookbackWindowMinutes",
        ),
        (
            {"Group": LOGIN_THEN_CHANGE, "Schedule": SCHEDULE, "EventEvaluationOrder": "Random"},
            "EventEvaluationOrder must be",
        ),
        (
            {"Group": LOGIN_THEN_CHANGE, "Schedule": {"TimeoutMinutes": 5}},
            "exactly one of RateMinutes or Cron",
        ),
        (
            {"Group": LOGIN_THEN_CHANGE, "Schedule": {"CronExpression": "hourly", "TimeoutMinutes": 5}},
            "5 or 6 fields",
        ),
        (
            {"Group": LOGIN_THEN_CHANGE, "Schedule": SCHEDULE, "MinMatchCount": 3},
            "exceeds the 2 non-absent groups",
        ),
        (
            {
                "Sequence": LOGIN_THEN_CHANGE,
                "Schedule": SCHEDULE,
                "Transitions": [{"From": "Change", "To": "Login"}],
            },
            "skips or reverses Sequence steps",
        ),
        (
            {
                "Sequence": LOGIN_THEN_CHANGE,
                "Schedule": SCHEDULE,
                "Transitions": [{"From": "Login", "To": "Change", "Match": [{"On": "a"}, {"On": "b"}]}],
            },
            "exactly one {On} or {From, To}",
        ),
        (
            {
                "Sequence": LOGIN_THEN_CHANGE,
                "Schedule": SCHEDULE,
                "Transitions": [{"From": "Login", "To": "Nope"}],
            },
            "From/To must be Sequence IDs",
        ),
    ],
)
def test_invalid_detections_raise_content_errors(detection: Any, message: str) -> None:
    spec = {"RuleID": "Bad", "Detection": [detection] if isinstance(detection, dict) else detection}
    with pytest.raises(ContentError) as caught:
        CorrelationRule(spec, "correlation_rules/bad.yml")
    assert str(caught.value).startswith("correlation_rules/bad.yml")
    assert message in str(caught.value)


def test_bad_rule_outputs_raise_content_errors() -> None:
    rule = group_rule(LOGIN_THEN_CHANGE)
    with pytest.raises(ContentError, match="ID 'Logout' is not one of"):
        rule.evaluate_test([{"ID": "Logout", "Matches": {}}])
    with pytest.raises(ContentError, match="neither minutes nor an RFC 3339"):
        rule.evaluate_test(outputs(("Login", "ana", ["soon"])))
