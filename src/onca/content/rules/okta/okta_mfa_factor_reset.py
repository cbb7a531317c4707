from onca_okta_helpers import actor_login, first_target_login, okta_context, okta_success

WATCHED_EVENTS = frozenset({"user.mfa.factor.reset_all", "user.mfa.factor.deactivate"})


def rule(event):
    if event.get("eventType") not in WATCHED_EVENTS:
        return False
    if not okta_success(event):
        return False
    # Users removing their own factor (e.g. a replaced phone) is self-service, not an admin reset.
    return actor_login(event) != first_target_login(event)


def title(event):
    return f"[{actor_login(event)}] reset the MFA factors of [{first_target_login(event)}]"


def dedup(event):
    return first_target_login(event)


def severity(event):
    # A system principal (workflow, API integration) doing resets is expected automation.
    if event.deep_get("actor", "type") == "SystemPrincipal":
        return "LOW"
    return "DEFAULT"


def alert_context(event):
    context = okta_context(event)
    # target_user is the join key of the Onca.Okta.MFAResetAndAdminGrant correlation rule.
    context["target_user"] = first_target_login(event)
    return context
