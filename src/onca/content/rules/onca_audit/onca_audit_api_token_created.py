def rule(event):
    return event.get("action") == "token.created" and event.get("outcome") == "success"


def _role(event):
    return event.deep_get("details", "role", default="")


def title(event):
    return f"Onca API token [{event.get('target')}] ({_role(event) or 'no role'}) created by [{event.get('actor')}]"


def severity(event):
    # A token with Admin rights outlives any session and bypasses MFA.
    return "HIGH" if _role(event) == "Admin" else "DEFAULT"


def alert_context(event):
    return {
        "actor": event.get("actor"),
        "token": event.get("target"),
        "role": _role(event),
        "expires_at": event.deep_get("details", "expires_at", default=""),
        "source_ip": event.get("source_ip", ""),
    }
