from onca_base_helpers import is_public_ip
from onca_syslog_helpers import parse_no_banner, sshd_message, syslog_context


def rule(event):
    message = sshd_message(event)
    if message is None:
        return False
    parsed = parse_no_banner(message)
    # Internal load-balancer and monitoring health checks open and close the port the same way.
    return parsed is not None and is_public_ip(parsed["ip"])


def _ip(event):
    return (parse_no_banner(sshd_message(event) or "") or {}).get("ip") or "<UNKNOWN_IP>"


def title(event):
    return f"SSH port scanning from [{_ip(event)}]"


def dedup(event):
    return _ip(event)


def alert_context(event):
    return syslog_context(event, {"ip": _ip(event)})
