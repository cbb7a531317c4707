"""Email over SMTP, through onca.core.mail (the same sender as invites)."""

from __future__ import annotations

import re
import smtplib
from typing import Any, ClassVar

from pydantic import field_validator

from onca.core.mail import MailError, SmtpServer, send_mail
from onca.destinations.base import DEFAULT_TIMEOUT, Alert, DestinationConfig, Result, truncate

KIND = "email"
ADDRESS = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$|^[^@\s<>,]+@localhost$")


class EmailConfig(DestinationConfig):
    smtp_url: str  # smtp://[user:pass@]host[:port] or smtps://...; may embed the password
    sender: str
    to: list[str]
    secret_fields: ClassVar[tuple[str, ...]] = ("smtp_url",)

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str) -> str:
        try:
            SmtpServer.from_url(value)
        except MailError as err:
            raise ValueError(str(err).replace("SmtpUrl ", "")) from None
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not ADDRESS.match(value):
            raise ValueError(f"must be an email address (got {value!r})")
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in re.split(r"[,;]", value) if item.strip()]
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one recipient")
        bad = [address for address in value if not ADDRESS.match(address)]
        if bad:
            raise ValueError(f"not email addresses: {', '.join(bad)}")
        return value


def message(alert: Alert) -> tuple[str, str]:
    """Subject and plain-text body."""
    subject = truncate(alert.summary.replace("\n", " "), 200)
    body = alert.details_text() + "\n\n-- \nSent by Onca.\n"
    return subject, body


def classify(err: MailError) -> Result:
    """Refusals (bad credentials, unknown recipients, 5xx replies) are permanent; the rest may pass later."""
    cause = err.__cause__
    if isinstance(cause, smtplib.SMTPRecipientsRefused):
        codes = [reply[0] for reply in cause.recipients.values() if isinstance(reply, tuple)]
        if codes and all(400 <= code < 500 for code in codes):
            return Result.transient(str(err))
        return Result.fatal(str(err))
    if isinstance(cause, smtplib.SMTPResponseException):  # auth refused, sender refused, data refused
        code = cause.smtp_code
        return Result.transient(str(err), code) if 400 <= code < 500 else Result.fatal(str(err), code)
    if isinstance(cause, smtplib.SMTPNotSupportedError):
        return Result.fatal(str(err))
    if cause is None and "recipients were refused" in str(err):
        return Result.fatal(str(err))
    # Connection refused, timeouts, TLS handshakes, dropped connections.
    return Result.transient(str(err))


class Email:
    kind = KIND
    config_model = EmailConfig

    def send(self, alert: Alert, config: EmailConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        subject, body = message(alert)
        try:
            send_mail(config.smtp_url, config.sender, list(config.to), subject, body, timeout=timeout)
        except MailError as err:
            return classify(err)
        return Result.ok(f"sent to {len(config.to)} recipient(s)")
