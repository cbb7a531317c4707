from onca_syslog_helpers import parse_invalid_user, sshd_message, syslog_context


def rule(event):
    message = sshd_message(event)
    return message is not None and parse_invalid_user(message) is not None


def _parsed(event):
    return parse_invalid_user(sshd_message(event) or "") or {}


def title(event):
    return f"SSH user enumeration from [{_parsed(event).get('ip')}]"


def dedup(event):
    return _parsed(event).get("ip") or "<UNKNOWN_IP>"


def unique(event):
    # Threshold counts distinct user names tried from one address, which separates guessing account
    # names from one mistyped login retried many times.
    return _parsed(event).get("user") or ""


def alert_context(event):
    return syslog_context(event, _parsed(event))
