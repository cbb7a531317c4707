"""Routing: the rule's destinations() override, then OutputIds, then severity and log-type filters."""

from __future__ import annotations

from dataclasses import dataclass, field

from onca.destinations.routing import route


@dataclass
class Dest:
    id: int
    name: str
    severities: list[str] = field(default_factory=list)
    log_types: list[str] = field(default_factory=list)
    enabled: bool = True


@dataclass
class A:
    severity: str
    log_types: list[str]


ALL = [Dest(1, "slack-all"), Dest(2, "pager", severities=["HIGH", "CRITICAL"]),
       Dest(3, "aws-team", log_types=["AWS.CloudTrail"]), Dest(4, "off", enabled=False),
       Dest(5, "okta-critical", severities=["critical"], log_types=["Okta.SystemLog"])]


def names(found: list[Dest]) -> list[str]:
    return [d.name for d in found]


def test_filters_by_severity_and_log_type() -> None:
    assert names(route(A("HIGH", ["AWS.CloudTrail"]), ALL)) == ["slack-all", "pager", "aws-team"]
    assert names(route(A("LOW", ["AWS.CloudTrail"]), ALL)) == ["slack-all", "aws-team"]
    assert names(route(A("CRITICAL", ["Okta.SystemLog"]), ALL)) == ["slack-all", "pager", "okta-critical"]
    assert names(route(A("INFO", ["GCP.AuditLog"]), ALL)) == ["slack-all"]


def test_rule_output_ids_replace_the_filters() -> None:
    assert names(route(A("INFO", ["GCP.AuditLog"]), ALL, rule_outputs=["pager", "3"])) == ["pager", "aws-team"]
    assert route(A("INFO", []), ALL, rule_outputs=["off"]) == []  # disabled stays disabled


def test_rule_destinations_override_everything() -> None:
    alert = A("HIGH", ["AWS.CloudTrail"])
    assert names(route(alert, ALL, rule_outputs=["pager"], rule_destinations=["okta-critical"])) == ["okta-critical"]
    assert route(alert, ALL, rule_outputs=["pager"], rule_destinations=[]) == []
    assert route(alert, ALL, rule_destinations=["SKIP"]) == []
    assert names(route(alert, ALL, rule_destinations=None)) == ["slack-all", "pager", "aws-team"]
