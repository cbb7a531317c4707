from onca_okta_helpers import actor_login, first_target_login, okta_context, okta_success

GRANT_EVENTS = frozenset({"user.account.privilege.grant", "group.privilege.grant"})


def rule(event):
    if event.get("eventType") not in GRANT_EVENTS:
        return False
    return okta_success(event) and "admin" in _privileges(event).lower()


def _privileges(event):
    return event.deep_get("debugContext", "debugData", "privilegeGranted", default="")


def _grantee(event):
    if event.get("eventType") == "group.privilege.grant":
        for target in event.get("target") or ():
            if target.get("type") == "UserGroup":
                return target.get("displayName") or target.get("alternateId")
    return first_target_login(event)


def title(event):
    return f"Okta admin role [{_privileges(event)}] granted to [{_grantee(event)}] by [{actor_login(event)}]"


def severity(event):
    if "super administrator" in _privileges(event).lower():
        return "CRITICAL"
    return "DEFAULT"


def alert_context(event):
    context = okta_context(event)
    context["privileges"] = _privileges(event)
    # target_user is the join key of the Onca.Okta.MFAResetAndAdminGrant correlation rule.
    context["target_user"] = first_target_login(event)
    return context
