from onca_okta_helpers import actor_login, okta_context, okta_success


def rule(event):
    if event.get("eventType") != "system.api_token.create":
        return False
    return okta_success(event)


def _token_name(event):
    for target in event.get("target") or ():
        if target.get("type") == "Token":
            return target.get("displayName") or target.get("alternateId")
    return "<UNKNOWN_TOKEN>"


def title(event):
    return f"Okta API token [{_token_name(event)}] created by [{actor_login(event)}]"


def alert_context(event):
    context = okta_context(event)
    context["token_name"] = _token_name(event)
    return context
