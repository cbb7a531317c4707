from onca_okta_helpers import actor_login, okta_context

# Reasons Okta gives when the password (or the user name) was wrong, as opposed to MFA or policy denials.
CREDENTIAL_FAILURES = frozenset({"INVALID_CREDENTIALS", "VERIFICATION_ERROR", "UNKNOWN_USER"})


def rule(event):
    if event.get("eventType") != "user.session.start":
        return False
    return (
        event.deep_get("outcome", "result") == "FAILURE"
        and event.deep_get("outcome", "reason") in CREDENTIAL_FAILURES
    )


def _client_ip(event):
    return event.deep_get("client", "ipAddress", default="<UNKNOWN_IP>")


def title(event):
    return f"Password spray against Okta from [{_client_ip(event)}]"


def dedup(event):
    return _client_ip(event)


def unique(event):
    # Threshold counts distinct accounts per source IP: many users with few tries each is a spray.
    return actor_login(event)


def alert_context(event):
    return okta_context(event)
