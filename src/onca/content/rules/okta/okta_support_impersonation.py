from onca_okta_helpers import actor_login, okta_context

IMPERSONATION_EVENTS = frozenset({"user.session.impersonation.grant", "user.session.impersonation.initiate"})


def rule(event):
    return event.get("eventType") in IMPERSONATION_EVENTS


def title(event):
    action = "granted" if event.get("eventType").endswith("grant") else "started"
    return f"Okta support impersonation {action} ({actor_login(event)})"


def severity(event):
    # The session actually starting matters more than the permission to start it.
    if event.get("eventType") == "user.session.impersonation.initiate":
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    return okta_context(event)
