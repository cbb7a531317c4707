"""GitHub REST API: open an issue in a repository for each alert."""

from __future__ import annotations

import re
import time
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

KIND = "github"
DEFAULT_API_URL = "https://api.github.com"
REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


class GitHubConfig(DestinationConfig):
    repo: str  # owner/name
    token: str  # a fine-grained or classic token allowed to create issues
    api_url: str = DEFAULT_API_URL  # GitHub Enterprise Server: https://HOST/api/v3
    labels: list[str] = Field(default_factory=list)
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not REPO.match(value) or value.endswith((".git", "/")):
            raise ValueError(f"must be owner/name, like octo-org/security-alerts (got {value!r})")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        if len(value) < 20 or any(ch.isspace() for ch in value):
            raise ValueError("must be a GitHub token (ghp_..., github_pat_..., or a 40-character classic token)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str) -> str:
        return check_https_url(value).rstrip("/")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return split_list(value)


def payload(alert: Alert, config: GitHubConfig) -> dict[str, Any]:
    lines = [f"**Severity:** {alert.severity}", f"**Rule:** `{alert.rule_id}`", f"**Alert ID:** `{alert.id}`",
             f"**Events:** {alert.event_count}"]
    if alert.log_types:
        lines.append(f"**Log types:** {', '.join(alert.log_types)}")
    if alert.link:
        lines.append(f"**Link:** {alert.link}")
    for label, value in (("Description", alert.description), ("Runbook", alert.runbook),
                         ("Reference", alert.reference)):
        if value:
            lines += ["", f"### {label}", value]
    if alert.alert_context:
        lines += ["", "### Alert context", "```json", alert.context_text(60000), "```"]
    return {"title": truncate(alert.summary, 256), "body": truncate("\n".join(lines), 65000),
            "labels": [*config.labels, f"severity:{alert.severity.lower()}"]}


class GitHub:
    kind = KIND
    config_model = GitHubConfig

    def send(self, alert: Alert, config: GitHubConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        headers = {"Authorization": f"Bearer {config.token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
        result, response = post_json(f"{config.api_url}/repos/{config.repo}/issues", payload(alert, config),
                                     headers=headers, timeout=timeout)
        if response is None:
            return result
        # GitHub answers 403 (not 429) when a rate limit is hit; that one is worth waiting for.
        if response.status_code == 403 and (response.headers.get("x-ratelimit-remaining") == "0"
                                            or "rate limit" in response.text.lower()):
            wait = response.headers.get("retry-after")
            reset = response.headers.get("x-ratelimit-reset")
            delay = float(wait) if wait and wait.isdigit() else None
            if delay is None and reset and reset.isdigit():
                delay = max(0.0, int(reset) - time.time())
            return Result.transient(result.message, 403, delay)
        if result.success:
            try:
                url = response.json().get("html_url")
            except ValueError:
                url = None
            if url:
                return Result.ok(f"created {url}", result.status_code)
        return result
