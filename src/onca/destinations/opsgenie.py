"""Opsgenie Alert API (v2): create an alert whose alias is the Onca alert id, so repeats are deduplicated."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

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

KIND = "opsgenie"
REGION_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
API_KEY = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PRIORITY = {"CRITICAL": "P1", "HIGH": "P2", "MEDIUM": "P3", "LOW": "P4", "INFO": "P5"}


class OpsgenieConfig(DestinationConfig):
    api_key: str
    region: Literal["us", "eu"] = "us"
    api_url: str = ""  # overrides the region's URL (tests, proxies)
    teams: list[str] = Field(default_factory=list)  # responder team names
    tags: list[str] = Field(default_factory=list)
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not API_KEY.match(value):
            raise ValueError("must be an Opsgenie API integration key (a UUID like 0123abcd-...-...)")
        return value

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("teams", "tags", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str) -> str:
        return check_https_url(value).rstrip("/") if value else value

    @property
    def base_url(self) -> str:
        return self.api_url or REGION_URLS[self.region]


def payload(alert: Alert, config: OpsgenieConfig) -> dict[str, Any]:
    # API limits: message 130 chars, alias 512, description 15000, tags 20 of 50 chars, detail values 8000.
    details = {"rule_id": alert.rule_id, "alert_id": alert.id, "severity": alert.severity,
               "event_count": str(alert.event_count), "log_types": ", ".join(alert.log_types)}
    if alert.link:
        details["link"] = alert.link
    if alert.alert_context:
        details["alert_context"] = alert.context_text(7900)
    body: dict[str, Any] = {
        "message": truncate(alert.summary, 130),
        "alias": truncate(alert.id, 512),
        "description": truncate(alert.details_text(), 15000),
        "tags": [truncate(tag, 50) for tag in ([*config.tags, alert.severity, *alert.log_types])][:20],
        "details": details,
        "entity": truncate(alert.rule_id, 512),
        "source": "Onca",
        "priority": PRIORITY.get(alert.severity, "P5"),
    }
    if config.teams:
        body["responders"] = [{"name": team, "type": "team"} for team in config.teams]
    return body


class Opsgenie:
    kind = KIND
    config_model = OpsgenieConfig

    def send(self, alert: Alert, config: OpsgenieConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        result, _ = post_json(f"{config.base_url}/v2/alerts", payload(alert, config), timeout=timeout,
                              headers={"Authorization": f"GenieKey {config.api_key}"})
        return result
