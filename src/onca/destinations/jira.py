"""Jira (Cloud or Data Center) REST API v2: create an issue in a project for each alert."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field, field_validator

from onca.destinations.base import (
    DEFAULT_TIMEOUT,
    Alert,
    DestinationConfig,
    Result,
    check_https_url,
    post_json,
    split_list,
    truncate,
)

KIND = "jira"
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,254}$")
LABEL = re.compile(r"^\S+$")


class JiraConfig(DestinationConfig):
    url: str  # the site, e.g. https://example.atlassian.net
    project_key: str
    user: str  # the account's email (Cloud) or user name (Data Center)
    api_token: str
    issue_type: str = "Task"
    labels: list[str] = Field(default_factory=list)
    assignee_id: str = ""  # Cloud account id
    secret_fields: ClassVar[tuple[str, ...]] = ("api_token",)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_https_url(value).rstrip("/")

    @field_validator("project_key")
    @classmethod
    def _project(cls, value: str) -> str:
        if not PROJECT_KEY.match(value):
            raise ValueError("must be a Jira project key: an upper-case letter, then upper-case letters, digits or _ "
                             f"(got {value!r})")
        return value

    @field_validator("user", "api_token", "issue_type")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("labels")
    @classmethod
    def _label_spaces(cls, value: list[str]) -> list[str]:
        bad = [label for label in value if not LABEL.match(label)]
        if bad:
            raise ValueError(f"Jira labels cannot contain spaces: {bad}")
        return value


def payload(alert: Alert, config: JiraConfig) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "project": {"key": config.project_key},
        "issuetype": {"name": config.issue_type},
        "summary": truncate(alert.summary.replace("\n", " "), 255),  # Jira rejects longer or multi-line summaries
        "description": truncate(alert.details_text(), 32000),
        "labels": [*config.labels, "onca", f"severity-{alert.severity.lower()}"],
    }
    if config.assignee_id:
        fields["assignee"] = {"id": config.assignee_id}
    return {"fields": fields}


class Jira:
    kind = KIND
    config_model = JiraConfig

    def send(self, alert: Alert, config: JiraConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        result, response = post_json(f"{config.url}/rest/api/2/issue", payload(alert, config), timeout=timeout,
                                     auth=(config.user, config.api_token), headers={"Accept": "application/json"})
        if result.success and response is not None:
            try:
                key = response.json().get("key")
            except ValueError:
                key = None
            if key:
                return Result.ok(f"created {key}", result.status_code)
        return result
