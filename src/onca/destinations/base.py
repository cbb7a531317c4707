"""What every destination kind shares: the alert as destinations see it, results, config validation, HTTP.

A kind is a module with a Pydantic config model and a `send(alert, config, timeout)` that returns a
`Result`. Results say whether the attempt succeeded and, when it did not, whether trying again could
help (`permanent`): the outbox retries only transient failures.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, ValidationError

SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
DEFAULT_TIMEOUT = 10.0
USER_AGENT = "Onca-Alerts/1"
MESSAGE_LIMIT = 500  # response text kept in the delivery history


class ConfigError(ValueError):
    """A destination's configuration is invalid; `problems` maps each field to what is wrong with it."""

    def __init__(self, kind: str, problems: dict[str, str]) -> None:
        self.kind = kind
        self.problems = problems
        detail = "; ".join(f"{name}: {message}" for name, message in problems.items())
        super().__init__(f"{kind} destination: {detail}")


class DestinationConfig(BaseModel):
    """Base of every kind's config. Unknown keys are errors (a typo must not silently drop a setting)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    # Fields whose values are credentials or embed one: masked in listings, never printed back.
    secret_fields: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class Result:
    """The outcome of one delivery attempt."""

    success: bool
    message: str = ""
    status_code: int | None = None
    permanent: bool = False
    # Seconds the service asked us to wait (HTTP Retry-After); the outbox waits at least that long.
    retry_after: float | None = None

    @classmethod
    def ok(cls, message: str = "delivered", status_code: int | None = None) -> Result:
        return cls(True, message, status_code)

    @classmethod
    def transient(cls, message: str, status_code: int | None = None, retry_after: float | None = None) -> Result:
        return cls(False, message, status_code, permanent=False, retry_after=retry_after)

    @classmethod
    def fatal(cls, message: str, status_code: int | None = None) -> Result:
        return cls(False, message, status_code, permanent=True)


@dataclass
class Alert:
    """An alert as destinations see it (built from the alerts table, a rule match or a test)."""

    id: str
    rule_id: str
    title: str
    severity: str = "INFO"
    kind: str = "RULE"
    description: str = ""
    reference: str = ""
    runbook: str = ""
    alert_context: dict[str, Any] | None = None
    log_types: list[str] = field(default_factory=list)
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None
    event_count: int = 1
    status: str = "OPEN"
    created_at: datetime | None = None
    link: str = ""  # the alert's page in the web console, when known
    test: bool = False

    @classmethod
    def from_record(cls, record: Any, link: str = "") -> Alert:
        """From an alerts-table row (or anything with the same attributes)."""
        context = getattr(record, "alert_context", None)
        if isinstance(context, str):
            try:
                context = json.loads(context)
            except ValueError:
                context = {"value": context}
        return cls(
            id=str(record.id),
            rule_id=str(getattr(record, "rule_id", "") or ""),
            title=str(getattr(record, "title", "") or getattr(record, "rule_id", "") or "Alert"),
            severity=str(getattr(record, "severity", "INFO") or "INFO").upper(),
            kind=str(getattr(record, "kind", "RULE") or "RULE"),
            description=str(getattr(record, "description", "") or ""),
            reference=str(getattr(record, "reference", "") or ""),
            runbook=str(getattr(record, "runbook", "") or ""),
            alert_context=context if isinstance(context, dict) else ({"value": context} if context else None),
            log_types=list(getattr(record, "log_types", None) or []),
            first_event_time=getattr(record, "first_event_time", None),
            last_event_time=getattr(record, "last_event_time", None),
            event_count=int(getattr(record, "event_count", 1) or 1),
            status=str(getattr(record, "status", "OPEN") or "OPEN"),
            created_at=getattr(record, "created_at", None),
            link=link,
        )

    @classmethod
    def test_alert(cls, destination: str, now: datetime | None = None) -> Alert:
        moment = now or datetime.now(UTC)
        return cls(
            id=f"test-{destination}-{int(moment.timestamp())}",
            rule_id="Onca.Destination.Test",
            title=f"Test alert from Onca for destination {destination}",
            severity="INFO",
            kind="TEST",
            description="This is a test alert sent by `onca destinations test`. No action is needed.",
            runbook="Nothing to do: this alert only checks that the destination is reachable.",
            alert_context={"destination": destination},
            log_types=["Onca.Test"],
            first_event_time=moment,
            last_event_time=moment,
            created_at=moment,
            test=True,
        )

    @property
    def summary(self) -> str:
        prefix = "[TEST] " if self.test else ""
        return f"{prefix}[{self.severity}] {self.title}"

    def as_json(self) -> dict[str, Any]:
        """The alert as plain JSON (webhook, SNS and SQS bodies)."""
        data = asdict(self)
        for key in ("first_event_time", "last_event_time", "created_at"):
            data[key] = iso(data[key])
        return data

    def context_text(self, limit: int = 2000) -> str:
        if not self.alert_context:
            return ""
        text = json.dumps(self.alert_context, indent=2, sort_keys=True, default=str)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def details_text(self) -> str:
        """A plain-text body (email, Jira, GitHub) with every field a responder needs."""
        lines = [f"Severity: {self.severity}", f"Rule: {self.rule_id}", f"Alert ID: {self.id}",
                 f"Events: {self.event_count}"]
        if self.log_types:
            lines.append(f"Log types: {', '.join(self.log_types)}")
        if self.first_event_time:
            lines.append(f"First event: {iso(self.first_event_time)}")
        if self.last_event_time:
            lines.append(f"Last event: {iso(self.last_event_time)}")
        if self.link:
            lines.append(f"Link: {self.link}")
        for label, value in (("Description", self.description), ("Runbook", self.runbook),
                             ("Reference", self.reference)):
            if value:
                lines += ["", f"{label}:", value]
        if self.alert_context:
            lines += ["", "Alert context:", self.context_text()]
        return "\n".join(lines)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


class Destination(Protocol):
    """A destination kind: its name, its config model and how it sends one alert."""

    kind: str
    config_model: type[DestinationConfig]

    def send(self, alert: Alert, config: Any, timeout: float = DEFAULT_TIMEOUT) -> Result: ...


def validate_config(kind: str, model: type[DestinationConfig], raw: Mapping[str, Any]) -> DestinationConfig:
    """The validated config, or ConfigError naming each bad field (Pydantic's messages, made readable)."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as err:
        problems: dict[str, str] = {}
        for error in err.errors():
            name = ".".join(str(part) for part in error["loc"]) or "config"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "is required"
            elif error["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(model.model_fields))
                message = f"is not a setting of this kind (allowed: {allowed})"
            problems.setdefault(name, message)
        raise ConfigError(kind, problems) from None


# ---- shared field checks ------------------------------------------------------------------------

LOOPBACK_HOSTS = ("localhost",)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_https_url(value: str, *, allow_http: bool = False) -> str:
    """An absolute https URL. Plain http is accepted only for a loopback host (local relays and tests),
    or everywhere when `allow_http` (the custom webhook)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute https:// URL")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ValueError("must use https:// (plain http is allowed only for localhost)")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as err:
        raise ValueError(f"has a bad port: {err}") from None
    return value


def split_list(value: Any) -> Any:
    """Lists may come from the command line as one comma-separated string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def mask_url(value: str) -> str:
    """Scheme and host only: the path or query of a webhook URL is often the secret itself."""
    parts = urlsplit(value)
    return f"{parts.scheme}://{parts.hostname}/****" if parts.hostname else "****"


# ---- HTTP ---------------------------------------------------------------------------------------

TRANSIENT_STATUS = frozenset({408, 425, 429})


def classify_http(response: requests.Response) -> Result:
    """2xx is success; 408/425/429 and 5xx are worth retrying; any other status is permanent."""
    code = response.status_code
    text = _response_text(response)
    if 200 <= code < 300:
        return Result.ok(f"HTTP {code}" + (f": {text}" if text else ""), code)
    message = f"HTTP {code} {response.reason or ''}".rstrip() + (f": {text}" if text else "")
    if code in TRANSIENT_STATUS or code >= 500:
        return Result.transient(message, code, retry_after_seconds(response.headers.get("Retry-After")))
    return Result.fatal(message, code)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _response_text(response: requests.Response) -> str:
    try:
        text = response.text.strip()
    except Exception:  # undecodable bodies: the status says enough
        return ""
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def post_json(url: str, body: Any, *, headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
              auth: tuple[str, str] | None = None,
              data: bytes | None = None) -> tuple[Result, requests.Response | None]:
    """POST a JSON body (or pre-encoded `data`). Network failures and timeouts are transient results.

    Redirects are not followed: a webhook that redirects would receive the body again at an address
    nobody configured.
    """
    payload = data if data is not None else json.dumps(body, default=str).encode()
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    try:
        response = requests.post(url, data=payload, headers=all_headers, timeout=timeout, auth=auth,
                                 allow_redirects=False)
    except requests.Timeout:
        return Result.transient(f"no answer within {timeout:g}s"), None
    except requests.ConnectionError as err:
        return Result.transient(f"cannot connect: {_root_cause(err)}"), None
    except requests.RequestException as err:  # malformed URL and the like: retrying cannot help
        return Result.fatal(f"request failed: {err}"), None
    return classify_http(response), response


def _root_cause(err: requests.ConnectionError) -> str:
    # requests wraps urllib3's MaxRetryError, whose `reason` says what really happened (refused, DNS...).
    inner = err.args[0] if err.args else err
    reason = getattr(inner, "reason", None) or inner
    text = str(reason)
    if "Errno" in text:
        text = text[text.index("[Errno"):].rstrip("')\"")
    return truncate(text or type(reason).__name__, 200)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
