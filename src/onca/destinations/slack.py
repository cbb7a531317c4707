"""Slack incoming webhooks: a `text` fallback (notifications, old clients) plus Block Kit blocks."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from onca.destinations.base import (
    DEFAULT_TIMEOUT,
    Alert,
    DestinationConfig,
    Result,
    check_https_url,
    post_json,
    truncate,
)

KIND = "slack"
SEVERITY_EMOJI = {"CRITICAL": ":red_circle:", "HIGH": ":large_orange_circle:", "MEDIUM": ":large_yellow_circle:",
                  "LOW": ":large_blue_circle:", "INFO": ":white_circle:"}


class SlackConfig(DestinationConfig):
    # The webhook URL is the credential: whoever has it may post to the channel.
    webhook_url: str
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_https_url(value)


def payload(alert: Alert) -> dict[str, Any]:
    # Block Kit limits: header text 150 chars, section text 3000, at most 10 fields.
    emoji = SEVERITY_EMOJI.get(alert.severity, ":white_circle:")
    fields = [f"*Severity*\n{alert.severity}", f"*Rule*\n{alert.rule_id}", f"*Events*\n{alert.event_count}",
              f"*Alert ID*\n{alert.id}"]
    if alert.log_types:
        fields.append(f"*Log types*\n{', '.join(alert.log_types)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(alert.summary, 150), "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": truncate(f, 2000)} for f in fields]},
    ]
    if alert.description:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(alert.description, 3000)}})
    if alert.runbook:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": truncate(f"*Runbook*\n{alert.runbook}", 3000)}})
    if alert.alert_context:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(
            f"*Alert context*\n```{alert.context_text(2800)}```", 3000)}})
    if alert.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in Onca"}, "url": alert.link}]})
    return {"text": f"{emoji} {alert.summary}", "blocks": blocks}


class Slack:
    kind = KIND
    config_model = SlackConfig

    def send(self, alert: Alert, config: SlackConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        result, _ = post_json(config.webhook_url, payload(alert), timeout=timeout)
        return result
