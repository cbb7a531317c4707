from onca_syslog_helpers import parse_accepted_auth, root_login_allowed, sshd_message, syslog_context


def rule(event):
    message = sshd_message(event)
    if message is None:
        return False
    parsed = parse_accepted_auth(message)
    if parsed is None or parsed["user"] != "root":
        return False
    return not root_login_allowed(event.get("hostname"))


def _parsed(event):
    return parse_accepted_auth(sshd_message(event) or "") or {}


def title(event):
    return (
        f"Direct root SSH login to [{event.get('hostname')}] from [{_parsed(event).get('ip')}] "
        f"using [{_parsed(event).get('method')}]"
    )


def dedup(event):
    return f"{event.get('hostname')}:{_parsed(event).get('ip')}"


def severity(event):
    # A password login means root's password works over the network: the weakest possible setup.
    if _parsed(event).get("method") in ("password", "keyboard-interactive/pam"):
        return "CRITICAL"
    return "DEFAULT"


def alert_context(event):
    return syslog_context(event, _parsed(event))
