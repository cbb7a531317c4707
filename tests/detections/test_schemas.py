"""Spec validation: which panther-analysis specs are accepted, and the messages a detection author sees."""

from __future__ import annotations

from typing import Any

import pytest

from onca.detections.schemas import (
    ANALYSIS_TYPES,
    dedup_period_warnings,
    find_datamodel_logtype_conflicts,
    find_id_conflicts,
    find_pack_problems,
    id_key,
    spec_id,
    validate_spec,
)
from onca.detections.yaml_dialect import load_yaml


def rule(**changes: Any) -> dict[str, Any]:
    spec = {
        "AnalysisType": "rule",
        "Filename": "my_rule.py",
        "RuleID": "My.Rule",
        "Enabled": True,
        "LogTypes": ["AWS.CloudTrail"],
        "Severity": "Low",
    }
    spec.update(changes)
    return {key: value for key, value in spec.items() if value is not DROP}


def policy(**changes: Any) -> dict[str, Any]:
    spec = {
        "AnalysisType": "policy",
        "Filename": "my_policy.py",
        "PolicyID": "My.Policy",
        "Enabled": True,
        "Severity": "High",
        "ResourceTypes": ["AWS.S3.Bucket"],
    }
    spec.update(changes)
    return {key: value for key, value in spec.items() if value is not DROP}


def scheduled_query(**schedule: Any) -> dict[str, Any]:
    return {
        "AnalysisType": "scheduled_query",
        "QueryName": "My Query",
        "Enabled": True,
        "Query": "select 1",
        "Schedule": schedule,
    }


DROP = object()
RULE_TEST = {"Name": "fires", "ExpectedResult": True, "Log": {"eventName": "x"}}
GROUP_DETECTION = [
    {
        "Group": [{"ID": "A", "RuleID": "Rule.A"}, {"ID": "B", "RuleID": "Rule.B", "MinMatchCount": 2}],
        "MatchCriteria": {"user": [{"GroupID": "A", "Match": "p_alert_context.user"}]},
        "Schedule": {"RateMinutes": 1440, "TimeoutMinutes": 5},
        "LookbackWindowMinutes": 1800,
    }
]

VALID_SPECS = {
    "rule with tests and mocks": rule(
        Tests=[
            {
                **RULE_TEST,
                "Mocks": [{"objectName": "f", "returnValue": "x"}, {"objectName": "g", "returnValue": True}],
            }
        ],
        Tags=["AWS", "Identity"],
        Reports={"MITRE ATT&CK": ["TA0001:T1078"], "CIS": [1.2, 3]},
        DedupPeriodMinutes=60,
        Threshold=5,
        CreateAlert=False,
    ),
    "scheduled rule": rule(AnalysisType="scheduled_rule", LogTypes=DROP, ScheduledQueries=["My Query"]),
    "simple detection": rule(
        Filename=DROP,
        Detection=[
            {"Key": "action", "Condition": "Equals", "Value": "repo.archived"},
            {"Any": [{"KeyPath": "a.b[0]", "Condition": "IsIn", "Values": [1, 2.5]}]},
            {"DeepKey": ["items"], "Condition": "AnyElement", "Expressions": [{"Condition": "AlwaysTrue"}]},
            {"Condition": "Equals", "Values": [{"Key": "a"}, {"DeepKey": ["b", 0]}]},
        ],
        InlineFilters=[{"All": []}],
        AlertTitle="Repository [{repo}] archived",
        AlertContext=[{"KeyName": "repo", "KeyValue": {"Key": "repo"}}],
        GroupBy=[{"KeyPath": "repo"}],
        DynamicSeverities=[{"ChangeTo": "High", "Conditions": [{"Key": "a", "Condition": "Exists"}]}],
    ),
    "derived detection": {"AnalysisType": "rule", "RuleID": "My.Derived", "BaseDetection": "My.Rule"},
    "correlation group": {
        "AnalysisType": "correlation_rule",
        "RuleID": "My.Correlation",
        "Enabled": False,
        "Severity": "High",
        "Detection": GROUP_DETECTION,
        "Tests": [
            {
                "Name": "t",
                "ExpectedResult": True,
                "RuleOutputs": [{"ID": "A", "Matches": {"user": {"bob": [0, "2024-06-01T10:00:00Z"]}}}],
            }
        ],
    },
    "correlation sequence": {
        "AnalysisType": "correlation_rule",
        "RuleID": "My.Sequence",
        "Enabled": True,
        "Severity": "Low",
        "Detection": [
            {
                "Sequence": [{"ID": "A", "RuleID": "Rule.A"}, {"ID": "B", "RuleID": "Rule.B"}],
                "Transitions": [{"From": "A", "To": "B", "Match": [{"On": "user"}]}],
                "Schedule": {"RateMinutes": 60, "TimeoutMinutes": 5},
            }
        ],
    },
    "policy": policy(Tests=[{"Name": "t", "ExpectedResult": False, "Resource": {"Name": "b"}}]),
    "global": {"AnalysisType": "global", "GlobalID": "my_helpers", "Filename": "my_helpers.py"},
    "datamodel": {
        "AnalysisType": "datamodel",
        "DataModelID": "My.Model",
        "Enabled": True,
        "LogTypes": ["My.Log"],
        "Mappings": [{"Name": "source_ip", "Path": "$.ip"}, {"Name": "user", "Method": "get_user"}],
    },
    "pack": {"AnalysisType": "pack", "PackID": "My.Pack", "PackDefinition": {"IDs": ["My.Rule"]}},
    "saved query": {"AnalysisType": "saved_query", "QueryName": "My Saved", "SnowflakeQuery": "select 1"},
    "scheduled query (rate)": scheduled_query(RateMinutes=1440, TimeoutMinutes=5),
    "scheduled query (cron)": scheduled_query(CronExpression="0 0 * * *", TimeoutMinutes=5),
    "scheduled prompt": {
        "AnalysisType": "scheduled_prompt",
        "PromptName": "daily_review",
        "DisplayName": "Daily review",
        "PromptText": "Summarise",
        "RunAsUser": "po_123",
        "Private": False,
        "Schedule": {"CronExpression": "0 * * * *", "TimeoutMinutes": 5},
    },
    "file lookup table": {
        "AnalysisType": "lookup_table",
        "LookupName": "my_lookup",
        "Enabled": True,
        "Schema": "Custom.Lookup",
        "Refresh": {"ObjectPath": "s3://b/k", "PeriodMinutes": 60, "RoleARN": "arn:aws:iam::1:role/r"},
        "LogTypeMap": {"PrimaryKey": "ip", "AssociatedLogTypes": [{"LogType": "A.B", "Selectors": ["ip"]}]},
    },
    "SQL lookup table": {
        "AnalysisType": "lookup_table",
        "LookupName": "my_sql_lookup",
        "Enabled": False,
        "Query": "select 1",
        "Refresh": {"PeriodMinutes": 1440},
        "LogTypeMap": {"PrimaryKey": "aid"},
    },
}


@pytest.mark.parametrize("spec", VALID_SPECS.values(), ids=VALID_SPECS.keys())
def test_valid_specs_of_every_type_have_no_errors(spec: dict[str, Any]) -> None:
    assert validate_spec(spec) == []


def test_analysis_type_is_required_and_must_be_known() -> None:
    assert validate_spec({"RuleID": "x"}) == ["missing required key 'AnalysisType'"]
    assert validate_spec({"AnalysisType": "detection"}) == [
        "AnalysisType: 'detection' is not one of correlation_rule, datamodel, global, pack, policy, rule, "
        "saved_query, scheduled_rule, scheduled_query, lookup_table, scheduled_prompt"
    ]


@pytest.mark.parametrize("spec", [None, [], "rule", 3, [{"AnalysisType": "rule"}]])
def test_a_file_that_is_not_a_mapping_is_reported(spec: Any) -> None:
    [message] = validate_spec(spec)
    assert message.startswith("expected a mapping of keys at the top of the file")


def test_severity_names_the_allowed_values() -> None:
    assert validate_spec(rule(Severity="Urgent")) == [
        "Severity: 'Urgent' is not one of Info, Low, Medium, High, Critical"
    ]
    # Upper case is what severity() returns at runtime, but the YAML must use title case.
    assert validate_spec(rule(Severity="HIGH")) == [
        "Severity: 'HIGH' is not one of Info, Low, Medium, High, Critical"
    ]


def test_missing_required_key_is_named() -> None:
    assert validate_spec(rule(RuleID=DROP)) == ["missing required key 'RuleID'"]
    assert validate_spec(policy(Filename=DROP)) == ["missing required key 'Filename'"]


def test_filename_and_detection_are_exclusive() -> None:
    both = rule(Detection=[{"Key": "a", "Condition": "Exists"}])
    assert validate_spec(both) == ["Filename and Detection: exactly one is required"]
    assert validate_spec(rule(Filename=DROP)) == ["Filename and Detection: exactly one is required"]


def test_log_types_and_scheduled_queries_are_exclusive() -> None:
    assert validate_spec(rule(ScheduledQueries=["Q"])) == [
        "LogTypes and ScheduledQueries: exactly one is required"
    ]
    assert validate_spec(rule(LogTypes=DROP)) == ["LogTypes and ScheduledQueries: exactly one is required"]


def test_unknown_key_in_a_mock_lists_the_allowed_keys() -> None:
    tests = [RULE_TEST, RULE_TEST, {**RULE_TEST, "Mocks": [{"objectName": "f", "return_value": "x"}]}]
    assert validate_spec(rule(Tests=tests)) == [
        "Tests[2].Mocks[0]: missing required key 'returnValue'",
        "Tests[2].Mocks[0]: unknown key 'return_value' (allowed: objectName, returnValue)",
    ]


@pytest.mark.parametrize(
    ("value", "shown"), [(5, "integer 5"), (1.5, "number 1.5"), ({"a": 1}, "mapping {'a': 1}")]
)
def test_mock_return_value_must_be_a_string_or_boolean(value: Any, shown: str) -> None:
    spec = rule(Tests=[{**RULE_TEST, "Mocks": [{"objectName": "f", "returnValue": value}]}])
    assert validate_spec(spec) == [
        f"Tests[0].Mocks[0].returnValue: expected a string or true/false, got {shown}"
    ]


def test_test_entries_accept_only_their_type_keys() -> None:
    assert validate_spec(rule(Tests=[{**RULE_TEST, "ExpectedTitle": "t"}])) == [
        "Tests[0]: unknown key 'ExpectedTitle' "
        "(allowed: Name, ExpectedResult, LogType, ExpectedDestinations, Log, Mocks)"
    ]
    assert validate_spec(policy(Tests=[{"Name": "t", "ExpectedResult": True, "Log": {}}])) == [
        "Tests[0]: missing required key 'Resource'",
        "Tests[0]: unknown key 'Log' (allowed: Name, ExpectedResult, ResourceType, Resource, Mocks)",
    ]
    assert validate_spec(rule(Tests=[{"Name": "t", "Log": {}}])) == [
        "Tests[0]: missing required key 'ExpectedResult'"
    ]


def test_a_null_log_is_accepted_but_null_tests_are_not() -> None:
    assert validate_spec(rule(Tests=[{**RULE_TEST, "Log": None}])) == []
    assert validate_spec(rule(Tests=None)) == ["Tests: expected a list, got null"]


def test_types_are_strict_as_yaml_reads_them() -> None:
    spec = load_yaml(
        "AnalysisType: rule\nFilename: r.py\nRuleID: R\nEnabled: yes\nLogTypes: [A]\nSeverity: Low\n"
    )
    assert validate_spec(spec) == ["Enabled: expected true or false, got string 'yes'"]
    assert validate_spec(rule(DedupPeriodMinutes=True)) == [
        "DedupPeriodMinutes: expected an integer, got boolean true"
    ]
    assert validate_spec(rule(Threshold=5.0)) == ["Threshold: expected an integer, got number 5.0"]
    assert validate_spec(rule(LogTypes=["A", 7])) == ["LogTypes[1]: expected a string, got integer 7"]
    assert validate_spec(rule(Tags="AWS")) == ["Tags: expected a list, got string 'AWS'"]


def test_unknown_top_level_key_is_rejected_with_the_allowed_keys() -> None:
    [message] = validate_spec({"AnalysisType": "global", "GlobalID": "g", "Filename": "g.py", "Owner": "me"})
    assert (
        message
        == "unknown key 'Owner' (allowed: AnalysisType, Filename, GlobalID, Description, Tags, BaseVersion)"
    )


@pytest.mark.parametrize("field", ["LogTypes", "OutputIds", "SummaryAttributes", "Tags"])
def test_set_like_rule_fields_reject_duplicates(field: str) -> None:
    assert validate_spec(rule(**{field: ["A.B", "C", "A.B"]})) == [f"{field}: duplicate value 'A.B'"]


def test_policy_suppressions_reject_duplicates() -> None:
    assert validate_spec(policy(Suppressions=["x", "x"])) == ["Suppressions: duplicate value 'x'"]


def test_tags_must_be_unique_ignoring_case() -> None:
    assert validate_spec(rule(Tags=["AWS", "aws"])) == ["Tags: 'AWS' and 'aws' differ only in case"]


@pytest.mark.parametrize("key", ["RuleID", "DisplayName"])
@pytest.mark.parametrize("bad", ["A<B", "A>B", "A&B", 'A"B', "A%B"])
def test_ids_and_display_names_exclude_html_characters(key: str, bad: str) -> None:
    assert validate_spec(rule(**{key: bad})) == [f'{key}: {bad!r} must not contain any of < > & " %']


def test_ids_must_not_be_empty() -> None:
    assert validate_spec(rule(RuleID="")) == ["RuleID: must not be empty"]
    assert validate_spec({"AnalysisType": "pack", "PackID": "", "PackDefinition": {"IDs": []}}) == [
        "PackID: must not be empty"
    ]


def test_schedule_needs_exactly_one_of_cron_and_rate() -> None:
    message = "Schedule: CronExpression and RateMinutes: exactly one is required"
    assert validate_spec(scheduled_query(TimeoutMinutes=5)) == [message]
    assert validate_spec(scheduled_query(CronExpression="0 0 * * *", RateMinutes=60, TimeoutMinutes=5)) == [
        message
    ]


def test_schedule_needs_timeout_minutes() -> None:
    assert validate_spec(scheduled_query(RateMinutes=60)) == [
        "Schedule: missing required key 'TimeoutMinutes'"
    ]


def test_schedule_rate_must_exceed_one_minute_and_cover_the_timeout() -> None:
    assert validate_spec(scheduled_query(RateMinutes=1, TimeoutMinutes=1)) == [
        "Schedule.RateMinutes: must be greater than 1, got 1"
    ]
    assert validate_spec(scheduled_query(RateMinutes=10, TimeoutMinutes=20)) == [
        "Schedule.RateMinutes: must be at least TimeoutMinutes (20), got 10"
    ]
    assert validate_spec(scheduled_query(RateMinutes=20, TimeoutMinutes=20)) == []


def test_scheduled_prompt_rules() -> None:
    prompt = dict(VALID_SPECS["scheduled prompt"])
    assert validate_spec({**prompt, "Private": True}) == [
        "Private: may only be false (prompts are uploaded shared), got boolean true"
    ]
    assert validate_spec({**prompt, "PromptName": "Daily"}) == [
        "PromptName: 'Daily' must start with a lower-case letter and hold only a-z, 0-9 and _"
    ]
    assert validate_spec({**prompt, "RunAsUser": ""}) == ["RunAsUser: must not be empty"]
    assert validate_spec({**prompt, "Schedule": {"RateMinutes": 1, "TimeoutMinutes": 1}}) == [
        "Schedule.RateMinutes: must be greater than 1, got 1"
    ]


def test_resource_types_must_be_supported() -> None:
    assert validate_spec(policy(ResourceTypes=["AWS.S3.Bucket", "AWS.S3.Buckets"])) == [
        "ResourceTypes[1]: 'AWS.S3.Buckets' is not a supported resource type (did you mean AWS.S3.Bucket?)"
    ]
    [message] = validate_spec(policy(ResourceTypes=["GCP.Thing"]))
    assert message.startswith(
        "ResourceTypes[0]: 'GCP.Thing' is not a supported resource type (supported: AWS.ACM"
    )


def test_saved_queries_take_no_schedule_and_need_a_query() -> None:
    saved = {"AnalysisType": "saved_query", "QueryName": "Q"}
    assert validate_spec(saved) == ["Query, AthenaQuery, SnowflakeQuery or DatabricksQuery: one is required"]
    [message] = validate_spec({**saved, "Query": "select 1", "Enabled": True})
    assert message.startswith("unknown key 'Enabled' (allowed: AnalysisType, QueryName, Query,")


def test_data_model_mapping_needs_exactly_one_of_path_and_method() -> None:
    model = dict(VALID_SPECS["datamodel"])
    model["Mappings"] = [{"Name": "ip", "Path": "$.ip", "Method": "get_ip"}, {"Name": "user"}]
    assert validate_spec(model) == [
        "Mappings[0]: Path and Method: exactly one is required",
        "Mappings[1]: Path and Method: exactly one is required",
    ]


def test_lookup_table_variants() -> None:
    file_table = dict(VALID_SPECS["file lookup table"])
    assert validate_spec(
        {**file_table, "LogTypeMap": {"PrimaryKey": "ip", "AssociatedLogTypes": [{"LogType": "A"}]}}
    ) == ["LogTypeMap.AssociatedLogTypes[0]: missing required key 'Selectors'"]
    assert validate_spec({**file_table, "Refresh": {"ObjectPath": "s3://b/k", "PeriodMinutes": 60}}) == [
        "Refresh: RoleARN and GCSCredentials: exactly one is required"
    ]
    no_source = {key: value for key, value in file_table.items() if key != "Refresh"}
    assert validate_spec(no_source) == ["Filename or Refresh: one is required"]
    sql_table = dict(VALID_SPECS["SQL lookup table"])
    assert validate_spec({**sql_table, "Refresh": {"PeriodMinutes": 60, "CronExpression": "0 * * * *"}}) == [
        "Refresh: PeriodMinutes and CronExpression: exactly one is required"
    ]
    [message] = validate_spec({**sql_table, "Schema": "Custom.X"})
    assert message.startswith("unknown key 'Schema' (allowed: AnalysisType, LookupName, Enabled, Query,")


def test_derived_detection_schema() -> None:
    derived = dict(VALID_SPECS["derived detection"])
    [message] = validate_spec({**derived, "LogTypes": ["A"]})
    assert message.startswith(
        "unknown key 'LogTypes' (allowed: AnalysisType, RuleID, BaseDetection, Enabled,"
    )
    assert validate_spec({**derived, "AnalysisType": "policy"}) == [
        "AnalysisType: 'policy' is not one of rule"
    ]
    generic_mock = {**RULE_TEST, "Mocks": [{"objectName": "f", "returnValue": 5}]}
    assert validate_spec({**derived, "Tests": [generic_mock]}) == []
    null_mock = {**RULE_TEST, "Mocks": [{"objectName": "f", "returnValue": None}]}
    assert validate_spec({**derived, "Tests": [null_mock]}) == [
        "Tests[0].Mocks[0].returnValue: expected a string, number, boolean, mapping or list, got null"
    ]


def test_correlation_rule_structure() -> None:
    correlation = dict(VALID_SPECS["correlation group"])
    bad_match = [
        {"Name": "t", "ExpectedResult": True, "RuleOutputs": [{"ID": "A", "Matches": {"user": {"bob": 5}}}]}
    ]
    assert validate_spec({**correlation, "Tests": bad_match}) == [
        "Tests[0].RuleOutputs[0].Matches.user.bob: expected a list, got integer 5"
    ]
    sequence = dict(VALID_SPECS["correlation sequence"])
    detection = dict(sequence["Detection"][0])
    detection["Transitions"] = [{"From": "A", "To": "B", "Match": [{"On": "a"}, {"On": "b"}]}]
    assert validate_spec({**sequence, "Detection": [detection]}) == [
        "Detection[0].Transitions[0].Match: expected exactly 1 item, got 2"
    ]
    no_schedule = [{key: value for key, value in GROUP_DETECTION[0].items() if key != "Schedule"}]
    assert validate_spec({**correlation, "Detection": no_schedule}) == [
        "Detection[0]: missing required key 'Schedule'"
    ]


def test_match_expression_grammar() -> None:
    def detection(*items: Any) -> list[str]:
        return validate_spec(rule(Filename=DROP, Detection=list(items)))

    assert detection({"Key": "a", "Condition": "IsIn", "Values": [1, "x"]}) == [
        "Detection[0].Values: expected a list of only numbers, only strings or only booleans, got [1, 'x']"
    ]
    assert detection({"Condition": "Equals"}) == [
        "Detection[0].Condition: 'Equals' is not one of AlwaysTrue, AlwaysFalse"
    ]
    # Inside a list comprehension DeepKey is relative to each element, so it holds names only.
    assert detection({"DeepKey": ["a", 0], "Condition": "AnyElement", "Expressions": []}) == [
        "Detection[0].DeepKey[1]: expected a string, got integer 0"
    ]
    assert detection({"All": [{"Key": "a", "Condition": "Exists", "Value": None}]}) == [
        "Detection[0].All[0].Value: expected a string, number or boolean, got null"
    ]
    [unknown] = detection({"Key": "a", "Operator": "Equals"})
    assert unknown.startswith("Detection[0]: not a valid expression (keys: Key, Operator); expected a key")
    assert validate_spec(rule(Filename=DROP, Detection={"Key": "a"})) == [
        "Detection: expected a list of match expressions, got mapping {'Key': 'a'}"
    ]


def test_inline_filters_accept_only_key_paths_and_all_any() -> None:
    [message] = validate_spec(rule(InlineFilters=[{"Key": "a", "Condition": "Exists"}]))
    assert message.startswith(
        "InlineFilters[0]: not a valid expression (keys: Condition, Key); expected KeyPath"
    )
    assert validate_spec(rule(InlineFilters=[{"Any": [{"KeyPath": "a.b", "Condition": "Exists"}]}])) == []
    [nested] = validate_spec(rule(InlineFilters=[{"OnlyOne": []}]))
    assert nested.startswith("InlineFilters[0]: not a valid expression (keys: OnlyOne)")


def test_simple_detection_alert_keys_are_typed() -> None:
    assert validate_spec(rule(AlertContext=[{"KeyName": "x", "KeyValue": {"Key": "a", "KeyPath": "b"}}])) == [
        "AlertContext[0].KeyValue: expected a mapping with exactly one of Key, DeepKey or KeyPath, "
        "got keys Key, KeyPath"
    ]
    assert validate_spec(rule(DynamicSeverities=[{"ChangeTo": "High"}])) == [
        "DynamicSeverities[0]: missing required key 'Conditions'"
    ]


def test_report_items_are_strings_or_numbers() -> None:
    assert validate_spec(rule(Reports={"MITRE ATT&CK": [True]})) == [
        "Reports['MITRE ATT&CK'][0]: expected a string or a number, got boolean true"
    ]
    assert validate_spec(rule(Reports={"CIS": "1.2"})) == ["Reports.CIS: expected a list, got string '1.2'"]


def test_ignore_extra_keys_relaxes_only_unknown_keys_of_rules_policies_and_derived() -> None:
    assert validate_spec(rule(Owner="me"), ignore_extra_keys=True) == []
    assert validate_spec(policy(Owner="me"), ignore_extra_keys=True) == []
    global_spec = {"AnalysisType": "global", "GlobalID": "g", "Filename": "g.py", "Owner": "me"}
    assert validate_spec(global_spec, ignore_extra_keys=True) != []
    # Keys the format gives a meaning stay typed even where they are extra.
    assert validate_spec(rule(Mappings=[{"Name": "a", "Bogus": 1}]), ignore_extra_keys=True) == [
        "Mappings[0]: unknown key 'Bogus' (allowed: Name, Path, Method)"
    ]
    # A test entry may then hold any key of the generic test object, but no other.
    assert validate_spec(rule(Tests=[{**RULE_TEST, "Resource": {}}]), ignore_extra_keys=True) == []
    [message] = validate_spec(rule(Tests=[{**RULE_TEST, "ExpectedTitle": "t"}]), ignore_extra_keys=True)
    assert message.startswith("Tests[0]: unknown key 'ExpectedTitle'")


def test_dedup_period_warnings() -> None:
    assert dedup_period_warnings(rule(DedupPeriodMinutes=60)) == []
    assert dedup_period_warnings(rule()) == []
    [zero] = dedup_period_warnings(rule(DedupPeriodMinutes=0))
    assert zero.startswith("DedupPeriodMinutes is set to 0 for My.Rule. This will be ignored by the backend.")
    [low] = dedup_period_warnings(rule(DedupPeriodMinutes=3))
    assert low.startswith("DedupPeriodMinutes for My.Rule is less than 5.")
    assert low.endswith("will be treated as '5' upon upload.")
    assert dedup_period_warnings(rule(DedupPeriodMinutes="3")) == []


def test_id_keys_per_type() -> None:
    assert len(ANALYSIS_TYPES) == 11
    expected = {
        "rule": "RuleID",
        "scheduled_rule": "RuleID",
        "correlation_rule": "RuleID",
        "policy": "PolicyID",
        "datamodel": "DataModelID",
        "global": "GlobalID",
        "saved_query": "QueryName",
        "scheduled_query": "QueryName",
        "pack": "PackID",
        "lookup_table": "LookupName",
        "scheduled_prompt": "PromptName",
    }
    assert {analysis_type: id_key(analysis_type, {}) for analysis_type in ANALYSIS_TYPES} == expected
    with pytest.raises(ValueError, match="unknown AnalysisType 'detection'"):
        id_key("detection", {})
    assert spec_id(policy()) == "My.Policy"
    assert spec_id(VALID_SPECS["derived detection"]) == "My.Derived"
    assert spec_id({"AnalysisType": "rule"}) is None
    assert spec_id(["not", "a", "spec"]) is None


def test_id_conflicts_span_all_types_and_the_first_holder_wins() -> None:
    items = [
        ("a.yml", rule(RuleID="Shared")),
        ("b.yml", {"AnalysisType": "global", "GlobalID": "Shared", "Filename": "g.py"}),
        ("c.yml", rule(RuleID="Other")),
        ("d.yml", policy(PolicyID="Shared")),
    ]
    assert find_id_conflicts(items) == [
        ("b.yml", "Conflicting AnalysisID: [Shared]"),
        ("d.yml", "Conflicting AnalysisID: [Shared]"),
    ]
    assert find_id_conflicts(items[:1] + items[2:3]) == []


def test_log_type_may_belong_to_one_enabled_data_model() -> None:
    def model(ident: str, enabled: bool, *log_types: str) -> dict[str, Any]:
        spec = dict(VALID_SPECS["datamodel"])
        spec.update(DataModelID=ident, Enabled=enabled, LogTypes=list(log_types))
        return spec

    items = [
        ("m1.yml", model("M1", True, "A", "B")),
        ("m2.yml", model("M2", False, "A")),
        ("m3.yml", model("M3", True, "B", "C")),
        ("m4.yml", model("M4", True, "C")),
    ]
    assert find_datamodel_logtype_conflicts(items) == [
        ("m3.yml", "Conflicting Enabled LogType [B] in Data Model [M3]"),
        ("m4.yml", "Conflicting Enabled LogType [C] in Data Model [M4]"),
    ]


def test_packs_may_only_name_loaded_items() -> None:
    pack = {"AnalysisType": "pack", "PackID": "P", "PackDefinition": {"IDs": ["R1", "R2", "R3"]}}
    assert find_pack_problems([("p.yml", pack)], {"R1", "R2", "R3"}) == []
    assert find_pack_problems([("p.yml", pack)], {"R2"}) == [
        ("p.yml", "pack (P) definition includes item(s) that do not exist (R1, R3)")
    ]


WEIRD = [None, 0, True, 1.5, "", "x<", [], [None], {}, {1: 2}, {None: []}, [[{"All": None}]], ("t",)]


@pytest.mark.parametrize("value", WEIRD, ids=repr)
def test_validation_never_raises(value: Any) -> None:
    loop: list[Any] = []
    loop.append(loop)
    for spec in (
        value,
        {"AnalysisType": value},
        {**rule(), "Tests": value},
        {1: value, "AnalysisType": "pack"},
    ):
        assert all(type(message) is str for message in validate_spec(spec))
    for key in (
        "Detection",
        "InlineFilters",
        "Tests",
        "Tags",
        "Reports",
        "AlertContext",
        "Mappings",
        "Schedule",
    ):
        for analysis_type in ANALYSIS_TYPES:
            spec = {"AnalysisType": analysis_type, key: value}
            assert validate_spec(spec)
            assert type(validate_spec(spec, ignore_extra_keys=True)) is list
        assert validate_spec(rule(**{key: [value, loop]}))
    dedup_period_warnings(value)
    find_id_conflicts([("x", value)])
    find_datamodel_logtype_conflicts(
        [("x", {"AnalysisType": "datamodel", "Enabled": True, "LogTypes": value})]
    )
    find_pack_problems([("x", {"PackDefinition": {"IDs": value}})], set())
