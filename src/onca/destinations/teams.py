"""Microsoft Teams: an Adaptive Card (Workflows webhooks) or a legacy MessageCard (Office 365 connectors)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

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

KIND = "teams"
SEVERITY_COLOR = {"CRITICAL": "B00020", "HIGH": "E65100", "MEDIUM": "F9A825", "LOW": "1565C0", "INFO": "757575"}
ADAPTIVE_COLOR = {"CRITICAL": "Attention", "HIGH": "Attention", "MEDIUM": "Warning", "LOW": "Accent",
                  "INFO": "Default"}


class TeamsConfig(DestinationConfig):
    webhook_url: str
    # Workflows (Power Automate) webhooks take Adaptive Cards; the retired O365 connectors took MessageCards.
    format: Literal["adaptive_card", "message_card"] = "adaptive_card"
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_https_url(value)


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [("Severity", alert.severity), ("Rule", alert.rule_id), ("Events", str(alert.event_count)),
             ("Alert ID", alert.id)]
    if alert.log_types:
        facts.append(("Log types", ", ".join(alert.log_types)))
    return facts


def message_card(alert: Alert) -> dict[str, Any]:
    section: dict[str, Any] = {"activityTitle": alert.summary,
                               "facts": [{"name": k, "value": v} for k, v in _facts(alert)], "markdown": True}
    if alert.description:
        section["text"] = truncate(alert.description, 5000)
    card: dict[str, Any] = {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                            "summary": truncate(alert.summary, 200),
                            "themeColor": SEVERITY_COLOR.get(alert.severity, "757575"),
                            "title": truncate(alert.summary, 200), "sections": [section]}
    if alert.runbook:
        card["sections"].append({"title": "Runbook", "text": truncate(alert.runbook, 5000)})
    if alert.link:
        card["potentialAction"] = [{"@type": "OpenUri", "name": "Open in Onca",
                                    "targets": [{"os": "default", "uri": alert.link}]}]
    return card


def adaptive_card(alert: Alert) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": alert.summary, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": ADAPTIVE_COLOR.get(alert.severity, "Default")},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(alert)]},
    ]
    if alert.description:
        body.append({"type": "TextBlock", "text": truncate(alert.description, 5000), "wrap": True})
    if alert.runbook:
        body.append({"type": "TextBlock", "text": truncate(f"**Runbook:** {alert.runbook}", 5000), "wrap": True})
    if alert.alert_context:
        body.append({"type": "TextBlock", "text": alert.context_text(3000), "wrap": True, "fontType": "Monospace"})
    content: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                               "type": "AdaptiveCard", "version": "1.4", "body": body}
    if alert.link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Onca", "url": alert.link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}]}


def payload(alert: Alert, config: TeamsConfig) -> dict[str, Any]:
    return message_card(alert) if config.format == "message_card" else adaptive_card(alert)


class Teams:
    kind = KIND
    config_model = TeamsConfig

    def send(self, alert: Alert, config: TeamsConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        result, _ = post_json(config.webhook_url, payload(alert, config), timeout=timeout)
        return result
