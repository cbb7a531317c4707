"""The ten destination kinds, by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onca.destinations.base import ConfigError, Destination, DestinationConfig, validate_config
from onca.destinations.email import Email
from onca.destinations.github import GitHub
from onca.destinations.jira import Jira
from onca.destinations.opsgenie import Opsgenie
from onca.destinations.pagerduty import PagerDuty
from onca.destinations.slack import Slack
from onca.destinations.sns import Sns
from onca.destinations.sqs import Sqs
from onca.destinations.teams import Teams
from onca.destinations.webhook import Webhook

KINDS: dict[str, Destination] = {kind.kind: kind for kind in (
    Slack(), Teams(), PagerDuty(), Opsgenie(), Jira(), GitHub(), Webhook(), Email(), Sns(), Sqs())}
# Names people type for the same thing.
ALIASES = {"msteams": "teams", "customwebhook": "webhook", "smtp": "email", "opsgenie-eu": "opsgenie"}


def kind_of(name: str) -> Destination:
    key = ALIASES.get(name.lower(), name.lower())
    try:
        return KINDS[key]
    except KeyError:
        raise ConfigError(name, {"kind": f"unknown destination kind {name!r}; one of {', '.join(KINDS)}"}) from None


def validate(kind: str, raw: Mapping[str, Any]) -> DestinationConfig:
    """The kind's validated config; ConfigError says which fields are wrong and why."""
    destination = kind_of(kind)
    return validate_config(destination.kind, destination.config_model, raw)
