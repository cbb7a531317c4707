"""Pydantic record types for every panther-analysis AnalysisType (the first, per-type validation).

Each record is a TypedDict validated in strict mode with extra keys forbidden, so a typo in an optional
key, a quoted number or a `yes` where a boolean belongs is reported at its exact key path. The types
fold in what the official tool's second (JSON-schema) pass adds for the same keys (for example that a
lookup table's `Selectors` is required), so most specs are judged in this one pass. What a TypedDict
cannot express (exactly-one-of key groups, Schedule arithmetic, match-expression grammar) lives in
`schemas.py` and `schemas_match.py`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, ConfigDict, StrictBool, StrictInt, StrictStr
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from onca.detections.schemas_messages import described, show

SEVERITIES = ("Info", "Low", "Medium", "High", "Critical")
QUERY_KEYS = ("Query", "AthenaQuery", "SnowflakeQuery", "DatabricksQuery")
RESOURCE_TYPES = (
    "AWS.ACM.Certificate",
    "AWS.CloudFormation.Stack",
    "AWS.CloudTrail.Meta",
    "AWS.CloudTrail",
    "AWS.CloudWatch.LogGroup",
    "AWS.Config.Recorder.Meta",
    "AWS.Config.Recorder",
    "AWS.DynamoDB.Table",
    "AWS.EC2.AMI",
    "AWS.EC2.Instance",
    "AWS.EC2.NetworkACL",
    "AWS.EC2.SecurityGroup",
    "AWS.EC2.Volume",
    "AWS.EC2.VPC",
    "AWS.ECS.Cluster",
    "AWS.EKS.Cluster",
    "AWS.ELBV2.ApplicationLoadBalancer",
    "AWS.GuardDuty.Detector.Meta",
    "AWS.GuardDuty.Detector",
    "AWS.IAM.Group",
    "AWS.IAM.Policy",
    "AWS.IAM.Role",
    "AWS.IAM.RootUser",
    "AWS.IAM.User",
    "AWS.KMS.Key",
    "AWS.Lambda.Function",
    "AWS.PasswordPolicy",
    "AWS.RDS.Instance",
    "AWS.Redshift.Cluster",
    "AWS.Route53.HostedZone",
    "AWS.Route53Domains",
    "AWS.S3.Bucket",
    "AWS.WAF.Regional.WebACL",
    "AWS.WAF.WebACL",
)
_RESOURCE_TYPE_SET = frozenset(RESOURCE_TYPES)
# `$` (not `\Z`) as the reference tool has it; the class admits a newline anyway, so this only
# rejects the empty string and the five characters that would break the web UI.
_ID_CHARSET = re.compile(r'^[^<>&"%]+$')
_PROMPT_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")

FORBID = ConfigDict(extra="forbid", strict=True)
LENIENT = ConfigDict(extra="ignore", strict=True)
_ALLOW = ConfigDict(extra="allow", strict=True)


def record(name: str, fields: dict[str, Any], config: ConfigDict = FORBID) -> Any:
    """A strict TypedDict type; keys wrapped in NotRequired may be left out but, when given, not null."""
    typed = TypedDict(name, fields)  # type: ignore[operator]  # functional form: keys such as "None"
    typed.__pydantic_config__ = config  # type: ignore[attr-defined]
    return typed


def spec_error(message: str) -> PydanticCustomError:
    """An error whose message is shown to the user as it is (braces in user values included)."""
    return PydanticCustomError("spec", "{message}", {"message": message})


def one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise spec_error(f"{show(value)} is not one of {', '.join(allowed)}")
        return value

    return check


def _id_charset(value: str) -> str:
    if not _ID_CHARSET.search(value):
        if not value:
            raise spec_error("must not be empty")
        raise spec_error(f'{show(value)} must not contain any of < > & " %')
    return value


def _resource_type(value: str) -> str:
    if value not in _RESOURCE_TYPE_SET:
        close = difflib.get_close_matches(value, RESOURCE_TYPES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"supported: {', '.join(RESOURCE_TYPES)}"
        raise spec_error(f"{show(value)} is not a supported resource type ({hint})")
    return value


def _prompt_name(value: str) -> str:
    if not _PROMPT_NAME.match(value):
        raise spec_error(f"{show(value)} must start with a lower-case letter and hold only a-z, 0-9 and _")
    return value


def _non_empty(value: str) -> str:
    if not value:
        raise spec_error("must not be empty")
    return value


def _must_be_false(value: Any) -> Any:
    if value is not False:
        raise spec_error(f"may only be false (prompts are uploaded shared), got {described(value)}")
    return value


def _str_or_bool(value: Any) -> Any:
    # YAML turns an unquoted true/false into a bool, so both spellings of a string mock are accepted.
    if type(value) is not str and type(value) is not bool:
        raise spec_error(f"expected a string or true/false, got {described(value)}")
    return value


def _string_or_number(value: Any) -> Any:
    if type(value) not in (str, int, float):
        raise spec_error(f"expected a string or a number, got {described(value)}")
    return value


def _not_null(value: Any) -> Any:
    if value is None:
        raise spec_error("expected a string, number, boolean, mapping or list, got null")
    return value


def _deep_key_problem(step: Any) -> str:
    return f"expected a string or an integer, got {described(step)}"


def deep_key_step(step: Any) -> Any:
    """One step of a DeepKey path: a field name or a list index."""
    if type(step) is not str and type(step) is not int:
        raise spec_error(_deep_key_problem(step))
    return step


def key_specifier(value: Any) -> Any:
    """`{Key: str}`, `{DeepKey: [str|int, ...]}` or `{KeyPath: str}`: how simple detections name a field."""
    if type(value) is not dict or len(value) != 1 or next(iter(value)) not in ("Key", "DeepKey", "KeyPath"):
        got = f"keys {', '.join(map(str, value))}" if type(value) is dict else described(value)
        raise spec_error(f"expected a mapping with exactly one of Key, DeepKey or KeyPath, got {got}")
    name, target = next(iter(value.items()))
    if name == "DeepKey":
        if type(target) is not list:
            raise spec_error(f"DeepKey: expected a list, got {described(target)}")
        for index, step in enumerate(target):
            if type(step) is not str and type(step) is not int:
                raise spec_error(f"DeepKey[{index}]: {_deep_key_problem(step)}")
    elif type(target) is not str:
        raise spec_error(f"{name}: expected a string, got {described(target)}")
    return value


Str = StrictStr
Bool = StrictBool
Int = StrictInt
StrList = list[StrictStr]
Id = Annotated[StrictStr, AfterValidator(_id_charset)]
Severity = Annotated[StrictStr, AfterValidator(one_of(SEVERITIES))]
Reports = dict[StrictStr, list[Annotated[Any, AfterValidator(_string_or_number)]]]
KeySpecifier = Annotated[Any, AfterValidator(key_specifier)]


def analysis_type(*allowed: str) -> Any:
    return Annotated[StrictStr, AfterValidator(one_of(allowed))]


Mock = record("Mock", {"objectName": Str, "returnValue": Annotated[Any, AfterValidator(_str_or_bool)]})
CorrelationOutput = record(
    "CorrelationOutput", {"ID": Str, "Matches": NotRequired[dict[Any, dict[Any, list[Any]]]]}
)

_TEST_HEAD = {"Name": Str, "ExpectedResult": Bool}
RULE_TEST = {
    **_TEST_HEAD,
    "LogType": NotRequired[Str],
    "ExpectedDestinations": NotRequired[StrList],
    "Log": Any,
    "Mocks": NotRequired[list[Mock]],
}
POLICY_TEST = {
    **_TEST_HEAD,
    "ResourceType": NotRequired[Str],
    "Resource": Any,
    "Mocks": NotRequired[list[Mock]],
}
# The generic test object of the JSON schema: what a derived detection's Tests and, with
# ignore_extra_keys, any rule or policy test may hold.
GENERIC_TEST = {
    **_TEST_HEAD,
    "ExpectedDestinations": NotRequired[StrList],
    "LogType": NotRequired[Str],
    "ResourceType": NotRequired[Str],
    "Mocks": NotRequired[list[dict[Any, Annotated[Any, AfterValidator(_not_null)]]]],
    "Log": NotRequired[Any],
    "Resource": NotRequired[Any],
    "RuleOutputs": NotRequired[list[CorrelationOutput]],
}
GenericTest = record("Test", GENERIC_TEST)
CorrelationTest = record("CorrelationTest", {**_TEST_HEAD, "RuleOutputs": list[CorrelationOutput]})


def lenient_test(name: str, fields: dict[str, Any]) -> Any:
    """A test entry under ignore_extra_keys: the type's own keys plus the generic test object's."""
    return record(
        name, {**fields, **{key: value for key, value in GENERIC_TEST.items() if key not in fields}}
    )


DynamicSeverity = record("DynamicSeverity", {"ChangeTo": Str, "Conditions": list[Any]})
KeyValue = record("KeyValue", {"KeyName": Str, "KeyValue": KeySpecifier})
Schedule = record(
    "Schedule", {"CronExpression": NotRequired[Str], "RateMinutes": NotRequired[Int], "TimeoutMinutes": Int}
)
Mapping = record("Mapping", {"Name": Str, "Path": NotRequired[Str], "Method": NotRequired[Str]})
AssociatedLogType = record("AssociatedLogType", {"LogType": Str, "Selectors": StrList})
LogTypeMap = record(
    "LogTypeMap", {"PrimaryKey": Str, "AssociatedLogTypes": NotRequired[list[AssociatedLogType]]}
)
FileRefresh = record(
    "Refresh",
    {
        "ObjectPath": Str,
        "PeriodMinutes": Int,
        "AlarmPeriodMinutes": NotRequired[Int],
        "RoleARN": NotRequired[Str],
        "ObjectKMSKey": NotRequired[Str],
        "GCSCredentials": NotRequired[Str],
        "StorageProvider": NotRequired[Str],
    },
)
SqlRefresh = record("Refresh", {"PeriodMinutes": NotRequired[Int], "CronExpression": NotRequired[Str]})
EmailConfig = record(
    "EmailConfig",
    {"Recipients": StrList, "SendEmpty": NotRequired[Bool], "PreferAttachment": NotRequired[Bool]},
)


def _optional(**fields: Any) -> dict[str, Any]:
    return {key: NotRequired[value] for key, value in fields.items()}


_DESCRIBED = _optional(Description=Str, DisplayName=Id, CreatedBy=Str, Reference=Str, Runbook=Str, Status=Str)
_SIMPLE_DETECTION_KEYS = _optional(
    DynamicSeverities=list[DynamicSeverity],
    AlertTitle=Str,
    AlertContext=list[KeyValue],
    GroupBy=list[KeySpecifier],
)

RULE = {
    "AnalysisType": analysis_type("rule", "scheduled_rule"),
    "Enabled": Bool,
    **_optional(Filename=Str, Detection=Any),
    "RuleID": Id,
    **_optional(LogTypes=StrList, ScheduledQueries=StrList),
    "Severity": Severity,
    **_DESCRIBED,
    **_optional(DedupPeriodMinutes=Int, Threshold=Int, InlineFilters=Any, OnlyUseBaseRiskScore=Bool),
    **_optional(OutputIds=StrList, SummaryAttributes=StrList, Tags=StrList, Reports=Reports),
    **_SIMPLE_DETECTION_KEYS,
    **_optional(CreateAlert=Bool, BaseVersion=Int, Tests=list[record("RuleTest", RULE_TEST)]),
}
DERIVED = {
    "AnalysisType": analysis_type("rule"),
    "RuleID": Id,
    "BaseDetection": Id,
    **_optional(Enabled=Bool, Severity=Severity, Description=Str, DedupPeriodMinutes=Int, InlineFilters=Any),
    **_optional(DisplayName=Id, OnlyUseBaseRiskScore=Bool, OutputIds=StrList, Reference=Str, Runbook=Str),
    **_optional(Status=Str, SummaryAttributes=StrList, Threshold=Int, Tags=StrList, Reports=Reports),
    **_SIMPLE_DETECTION_KEYS,
    **_optional(Tests=list[GenericTest], CreateAlert=Bool, BaseVersion=Int),
}
CORRELATION_RULE = {
    "AnalysisType": analysis_type("correlation_rule"),
    "RuleID": Id,
    "Enabled": Bool,
    "Detection": Any,
    "Severity": Severity,
    **_DESCRIBED,
    **_optional(OnlyUseBaseRiskScore=Bool, CreateAlert=Bool, OutputIds=StrList, SummaryAttributes=StrList),
    **_optional(Tags=StrList, Reports=Reports, BaseVersion=Int, Tests=list[CorrelationTest]),
}
POLICY = {
    "AnalysisType": analysis_type("policy"),
    "Enabled": Bool,
    "Filename": Str,
    "PolicyID": Id,
    "Severity": Severity,
    **_optional(ResourceTypes=list[Annotated[StrictStr, AfterValidator(_resource_type)]]),
    **_optional(ActionDelaySeconds=Int, AutoRemediationID=Str, AutoRemediationParameters=Any),
    **_DESCRIBED,
    **_optional(OnlyUseBaseRiskScore=Bool, OutputIds=StrList, Suppressions=StrList, Tags=StrList),
    **_optional(Reports=Reports, BaseVersion=Int, Tests=list[record("PolicyTest", POLICY_TEST)]),
}
GLOBAL = {
    "AnalysisType": analysis_type("global"),
    "Filename": Str,
    "GlobalID": Id,
    **_optional(Description=Str, Tags=StrList, BaseVersion=Int),
}
DATAMODEL = {
    "AnalysisType": analysis_type("datamodel"),
    "DataModelID": Id,
    "Enabled": Bool,
    "LogTypes": StrList,
    "Mappings": list[Mapping],
    **_optional(DisplayName=Id, Filename=Str, BaseVersion=Int),
}
PACK = {
    "AnalysisType": analysis_type("pack"),
    "PackID": Id,
    "PackDefinition": record("PackDefinition", {"IDs": StrList}),
    **_optional(Description=Str, DisplayName=Id),
}
_QUERY_TEXT = _optional(**dict.fromkeys(QUERY_KEYS, Str))
_QUERY_TAIL = _optional(Description=Str, Tags=StrList, Lookback=Bool, LookbackWindowSeconds=Int)
SAVED_QUERY = {
    "AnalysisType": analysis_type("saved_query"),
    "QueryName": Id,
    **_QUERY_TEXT,
    **_QUERY_TAIL,
    **_optional(BaseVersion=Int),
}
SCHEDULED_QUERY = {
    "AnalysisType": analysis_type("scheduled_query"),
    "QueryName": Id,
    "Enabled": Bool,
    **_QUERY_TEXT,
    "Schedule": Schedule,
    **_QUERY_TAIL,
    **_optional(EmailConfig=EmailConfig, BaseVersion=Int),
}
SCHEDULED_PROMPT = {
    "AnalysisType": analysis_type("scheduled_prompt"),
    "PromptName": Annotated[StrictStr, AfterValidator(_prompt_name)],
    "DisplayName": Str,
    "PromptText": Str,
    "RunAsUser": Annotated[StrictStr, AfterValidator(_non_empty)],
    "Schedule": Schedule,
    **_optional(Description=Str, OutputLength=analysis_type("small", "medium", "largest"), Enabled=Bool),
    **_optional(Private=Annotated[Any, AfterValidator(_must_be_false)]),
}
_LOOKUP_TAIL = _optional(Description=Str, Reference=Str, BaseVersion=Int)
LOOKUP_TABLE = {
    "AnalysisType": analysis_type("lookup_table"),
    "LookupName": Str,
    "Enabled": Bool,
    **_optional(Filename=Str, Refresh=FileRefresh),
    "Schema": Str,
    "LogTypeMap": LogTypeMap,
    **_LOOKUP_TAIL,
}
SQL_LOOKUP_TABLE = {
    "AnalysisType": analysis_type("lookup_table"),
    "LookupName": Str,
    "Enabled": Bool,
    **_QUERY_TEXT,
    "LogTypeMap": LogTypeMap,
    "Refresh": SqlRefresh,
    **_optional(
        Indicators=list[record("Indicator", {"Field": Str, "Indicators": StrList})],
        Validations=list[record("Validation", {"Field": Str, "Validations": StrList})],
    ),
    **_LOOKUP_TAIL,
}

# Every top-level key the JSON schema types, for keys that ignore_extra_keys let through the first
# pass. Match expressions are Any here: schemas_match checks them for every spec.
JSON_PROPERTIES = record(
    "Spec",
    _optional(
        Description=Str,
        DisplayName=Str,
        Enabled=Bool,
        CreatedBy=Str,
        Filename=Str,
        LogTypes=StrList,
        OnlyUseBaseRiskScore=Bool,
        Reference=Str,
        Reports=Reports,
        Runbook=Str,
        Severity=Annotated[
            StrictStr, AfterValidator(one_of(SEVERITIES + tuple(s.upper() for s in SEVERITIES)))
        ],
        Tags=StrList,
        Tests=list[GenericTest],
        PolicyID=Str,
        ResourceTypes=StrList,
        Suppressions=StrList,
        DataModelID=Str,
        Mappings=list[Mapping],
        DedupPeriodMinutes=Int,
        OutputIds=StrList,
        RuleID=Str,
        SummaryAttributes=StrList,
        Threshold=Int,
        CreateAlert=Bool,
        ScheduledQueries=StrList,
        GlobalID=Str,
        AthenaQuery=Str,
        Query=Str,
        QueryName=Str,
        Schedule=Schedule,
        SnowflakeQuery=Str,
        DatabricksQuery=Str,
        Lookback=Bool,
        LookbackWindowSeconds=Int,
        LogTypeMap=LogTypeMap,
        LookupName=Str,
        Refresh=dict[Any, Any],
        Schema=Str,
        PackID=Str,
        PackDefinition=record("PackDefinition", {"IDs": StrList}),
        Detection=Any,
        InlineFilters=Any,
        GroupBy=list[KeySpecifier],
        AlertContext=list[KeyValue],
        AlertTitle=Str,
        DynamicSeverities=list[DynamicSeverity],
    ),
    _ALLOW,
)
