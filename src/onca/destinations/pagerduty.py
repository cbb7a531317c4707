"""PagerDuty Events API v2: one `trigger` event per alert, deduplicated on the alert id."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import field_validator

from onca.destinations.base import (
    DEFAULT_TIMEOUT,
    Alert,
    DestinationConfig,
    Result,
    check_https_url,
    iso,
    post_json,
    truncate,
)

KIND = "pagerduty"
DEFAULT_API_URL = "https://events.pagerduty.com"
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
# PagerDuty knows four severities; Onca's five map onto them.
SEVERITY = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning", "LOW": "info", "INFO": "info"}


class PagerDutyConfig(DestinationConfig):
    routing_key: str  # the integration key of an Events API v2 service integration
    api_url: str = DEFAULT_API_URL
    source: str = "onca"
    secret_fields: ClassVar[tuple[str, ...]] = ("routing_key",)

    @field_validator("routing_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not ROUTING_KEY.match(value):
            raise ValueError(f"must be the 32-character integration key of an Events API v2 integration "
                             f"(got {len(value)} characters)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str) -> str:
        return check_https_url(value).rstrip("/")


def payload(alert: Alert, config: PagerDutyConfig) -> dict[str, Any]:
    details: dict[str, Any] = {"rule_id": alert.rule_id, "alert_id": alert.id, "severity": alert.severity,
                               "event_count": alert.event_count, "log_types": alert.log_types}
    for key, value in (("description", alert.description), ("runbook", alert.runbook),
                       ("reference", alert.reference), ("alert_context", alert.alert_context)):
        if value:
            details[key] = value
    event: dict[str, Any] = {
        "routing_key": config.routing_key,
        "event_action": "trigger",
        # Re-sending the same alert (a retry, a manual re-delivery) updates PagerDuty's incident, never duplicates.
        "dedup_key": alert.id,
        "payload": {
            "summary": truncate(alert.summary, 1024),
            "source": config.source,
            "severity": SEVERITY.get(alert.severity, "info"),
            "component": alert.rule_id,
            "group": ", ".join(alert.log_types) or None,
            "class": alert.kind,
            "custom_details": details,
        },
        "client": "Onca",
    }
    moment = alert.first_event_time or alert.created_at
    if moment is not None:
        event["payload"]["timestamp"] = iso(moment)
    if event["payload"]["group"] is None:
        del event["payload"]["group"]
    if alert.link:
        event["client_url"] = alert.link
        event["links"] = [{"href": alert.link, "text": "Open in Onca"}]
    return event


class PagerDuty:
    kind = KIND
    config_model = PagerDutyConfig

    def send(self, alert: Alert, config: PagerDutyConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        result, _ = post_json(f"{config.api_url}/v2/enqueue", payload(alert, config), timeout=timeout)
        return result
