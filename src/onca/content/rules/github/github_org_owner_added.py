from onca_github_helpers import github_context

MEMBERSHIP_ACTIONS = frozenset({"org.update_member", "org.add_member"})


def rule(event):
    if event.get("action") not in MEMBERSHIP_ACTIONS:
        return False
    # "admin" is the audit-log spelling of the organization Owner role.
    return event.get("permission") == "admin"


def title(event):
    return (
        f"[{event.get('user')}] became an owner of GitHub organization [{event.get('org')}] "
        f"(by [{event.get('actor')}])"
    )


def dedup(event):
    return f"{event.get('org')}:{event.get('user')}"


def alert_context(event):
    context = github_context(event)
    context["permission"] = event.get("permission")
    context["old_permission"] = event.get("old_permission")
    return context
