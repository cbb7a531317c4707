"""Helpers for sshd messages carried in Syslog.RFC5424 / Syslog.RFC3164 events.

sshd does not emit structured data, so the rules parse OpenSSH's fixed message texts. Each parser first
tests a literal prefix and only then runs its regular expression, keeping non-matching messages cheap.
"""

import re

# OpenSSH >= 9.8 logs per-connection messages from the "sshd-session" binary.
SSHD_APPNAMES = frozenset({"sshd", "sshd-session"})

# Hosts where direct root login is an accepted practice (e.g. break-glass consoles). Empty by default:
# every root login alerts until an operator lists the host here.
ROOT_LOGIN_ALLOWED_HOSTS: frozenset[str] = frozenset()

_FAILED = re.compile(
    r"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from (?P<ip>\S+) port (?P<port>\d+)"
)
_ACCEPTED = re.compile(r"Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)")
_INVALID_USER = re.compile(r"Invalid user (?P<user>.*?) from (?P<ip>\S+)(?: port (?P<port>\d+))?")
_NO_BANNER = re.compile(
    r"(?:Did not receive identification string from|banner exchange: Connection from) (?P<ip>\S+)"
)


def sshd_message(event) -> str | None:
    """The message text when the event comes from sshd, else None."""
    if event.get("appname") not in SSHD_APPNAMES:
        return None
    return event.get("message") or None


def parse_failed_auth(message: str) -> dict | None:
    if not message.startswith("Failed "):
        return None
    match = _FAILED.match(message)
    return match.groupdict() if match else None


def parse_accepted_auth(message: str) -> dict | None:
    if not message.startswith("Accepted "):
        return None
    match = _ACCEPTED.match(message)
    return match.groupdict() if match else None


def parse_invalid_user(message: str) -> dict | None:
    if not message.startswith("Invalid user "):
        return None
    match = _INVALID_USER.match(message)
    return match.groupdict() if match else None


def parse_no_banner(message: str) -> dict | None:
    """Connections that never completed the SSH banner exchange: port scanners and protocol probes."""
    if not (message.startswith("Did not receive") or message.startswith("banner exchange")):
        return None
    match = _NO_BANNER.match(message)
    return match.groupdict() if match else None


def root_login_allowed(hostname: str | None) -> bool:
    return hostname in ROOT_LOGIN_ALLOWED_HOSTS


def syslog_context(event, parsed: dict | None) -> dict:
    context = {
        "hostname": event.get("hostname"),
        "appname": event.get("appname"),
        "procid": event.get("procid"),
        "message": event.get("message"),
    }
    if parsed:
        context.update(parsed)
    return context
