"""Sending Onca's email (invites, alert notifications) over SMTP.

SmtpUrl is smtp://[user:pass@]host[:port] (port 25 by default; STARTTLS is used whenever the server
offers it) or smtps://[user:pass@]host[:port] (TLS from the first byte, port 465 by default).
Every failure becomes one MailError that says which server and what went wrong.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

DEFAULT_TIMEOUT = 15.0


class MailError(RuntimeError):
    """Email could not be sent; the message names the server and the cause."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    username: str = ""
    password: str = ""

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit((url or "").strip())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailError(f"SmtpUrl must look like smtp://[user:pass@]host[:port] or smtps://..., got {url!r}")
        try:
            port = parts.port
        except ValueError as err:
            raise MailError(f"SmtpUrl has a bad port: {err}") from err
        implicit = parts.scheme == "smtps"
        return cls(host=parts.hostname, port=port or (465 if implicit else 25), implicit_tls=implicit,
                   username=unquote(parts.username or ""), password=unquote(parts.password or ""))

    def __str__(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


def build_message(sender: str, to: list[str] | str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join([to] if isinstance(to, str) else to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message


def send_mail(
    smtp_url: str,
    sender: str,
    to: list[str] | str,
    subject: str,
    body: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Send one plain-text email. Raises MailError on any failure (connect, TLS, auth, refusal, timeout).

    `ssl_context` defaults to the system's trust store with host-name checking.
    """
    server = SmtpServer.from_url(smtp_url)
    message = build_message(sender, to, subject, body)
    context = ssl_context or ssl.create_default_context()
    try:
        if server.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            client.ehlo()
            if not server.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            if server.username:
                client.login(server.username, server.password)
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as err:
        raise MailError(f"{server}: login as {server.username!r} refused: {_reply(err)}") from err
    except smtplib.SMTPRecipientsRefused as err:
        refused_all = ", ".join(f"{rcpt} ({_reply(reply)})" for rcpt, reply in err.recipients.items())
        raise MailError(f"{server}: every recipient was refused: {refused_all}") from err
    except smtplib.SMTPSenderRefused as err:
        raise MailError(f"{server}: sender {err.sender!r} refused: {_reply(err)}") from err
    except smtplib.SMTPNotSupportedError as err:
        raise MailError(f"{server}: {err} (does the server need STARTTLS or smtps://?)") from err
    except smtplib.SMTPServerDisconnected as err:
        # smtplib turns a read timeout into "connection closed"; say what really happened.
        if isinstance(err.__context__, TimeoutError):
            raise MailError(f"{server}: no answer within {timeout:g}s") from err
        raise MailError(f"{server}: {err}") from err
    except smtplib.SMTPException as err:
        raise MailError(f"{server}: {err}") from err
    except ssl.SSLError as err:
        raise MailError(f"{server}: TLS failed: {err.reason or err}") from err
    except TimeoutError as err:
        raise MailError(f"{server}: no answer within {timeout:g}s") from err
    except OSError as err:
        raise MailError(f"{server}: cannot connect: {err.strerror or err}") from err
    if refused:
        raise MailError(f"{server}: some recipients were refused: {', '.join(sorted(refused))}")


def _reply(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        code, text = value
        return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    code = getattr(value, "smtp_code", "")
    text = getattr(value, "smtp_error", b"")
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}".strip()


def invite_message(email: str, url: str, expires: str) -> tuple[str, str]:
    """Subject and body of the first administrator's (or any user's) invite."""
    subject = "Your Onca invite"
    body = (f"Hello,\n\nAn Onca account was created for {email}.\n\n"
            f"Set your password here (the link works once, until {expires}):\n\n    {url}\n\n"
            "If you did not expect this message, ignore it; the link expires on its own.\n")
    return subject, body
