"""A custom webhook: the alert as JSON, signed so the receiver can prove it came from Onca and is fresh.

Signature scheme (what a receiver checks, see `verify_signature`):

    X-Onca-Timestamp: <unix seconds>
    X-Onca-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is inside the signed bytes, so a captured request cannot be replayed later with a new
timestamp; receivers reject timestamps older than a few minutes. `X-Onca-Delivery` carries the alert id
so a receiver can drop the duplicate a retry may cause.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from onca.destinations.base import DEFAULT_TIMEOUT, Alert, DestinationConfig, Result, check_https_url, post_json

KIND = "webhook"
SIGNATURE_HEADER = "X-Onca-Signature"
TIMESTAMP_HEADER = "X-Onca-Timestamp"
DELIVERY_HEADER = "X-Onca-Delivery"
DEFAULT_TOLERANCE = 300.0
RESERVED = {name.lower() for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER, "Content-Type")}


class WebhookConfig(DestinationConfig):
    # Declared before `url` so the URL check can see it.
    allow_http: bool = False  # plain http to a non-local host exposes alert contents on the wire
    url: str
    secret: str  # the shared HMAC key
    # Extra headers, for example the receiver's own Authorization.
    headers: dict[str, str] = Field(default_factory=dict)
    secret_fields: ClassVar[tuple[str, ...]] = ("secret", "headers")

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("must be at least 16 characters (a random string shared with the receiver)")
        return value

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the command line: a JSON object
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError as err:
                raise ValueError(f"must be a JSON object of header names to values: {err}") from None
        return value

    @field_validator("headers")
    @classmethod
    def _reserved(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(name for name in value if name.lower() in RESERVED)
        if clash:
            raise ValueError(f"may not set {', '.join(clash)} (Onca sets them)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return check_https_url(value, allow_http=bool(info.data.get("allow_http")))


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(secret: str, body: bytes, headers: Mapping[str, str], *, now: float | None = None,
                     tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """What a receiver runs: the signature matches the raw body and the timestamp is recent."""
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or not signature:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(alert: Alert) -> dict[str, Any]:
    return {"version": 1, "type": "test" if alert.test else "alert", "alert": alert.as_json()}


def request(alert: Alert, config: WebhookConfig, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers sent: signing covers these bytes, so they are encoded once, here."""
    body = json.dumps(payload(alert), sort_keys=True, separators=(",", ":"), default=str).encode()
    timestamp = int(time.time() if now is None else now)
    headers = {**config.headers, TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: sign(config.secret, timestamp, body), DELIVERY_HEADER: alert.id}
    return body, headers


class Webhook:
    kind = KIND
    config_model = WebhookConfig

    def send(self, alert: Alert, config: WebhookConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        body, headers = request(alert, config)
        result, _ = post_json(config.url, None, data=body, headers=headers, timeout=timeout)
        return result
