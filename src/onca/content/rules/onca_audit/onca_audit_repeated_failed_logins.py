def rule(event):
    return event.get("action") == "user.login" and event.get("outcome") == "failure"


def _account(event):
    return event.get("target") or "<UNKNOWN_ACCOUNT>"


def title(event):
    return f"Repeated failed sign-ins to Onca for [{_account(event)}]"


def dedup(event):
    # Threshold counts failures per account: one account guessed at, from one place or many.
    return _account(event)


def alert_context(event):
    return {
        "account": _account(event),
        "source_ip": event.get("source_ip", "<UNKNOWN_IP>"),
        "reason": event.deep_get("details", "reason", default=""),
    }
