from onca_syslog_helpers import parse_failed_auth, sshd_message, syslog_context


def rule(event):
    message = sshd_message(event)
    return message is not None and parse_failed_auth(message) is not None


def _parsed(event):
    return parse_failed_auth(sshd_message(event) or "") or {}


def title(event):
    return f"SSH brute force from [{_parsed(event).get('ip')}] against [{event.get('hostname')}]"


def dedup(event):
    return f"{event.get('hostname')}:{_parsed(event).get('ip')}"


def alert_context(event):
    return syslog_context(event, _parsed(event))
