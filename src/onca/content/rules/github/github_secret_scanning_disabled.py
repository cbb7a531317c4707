from onca_github_helpers import github_context

DISABLE_ACTIONS = frozenset(
    {
        "repository_secret_scanning.disable",
        "repository_secret_scanning_push_protection.disable",
        "secret_scanning.disable",
        "secret_scanning_new_repos.disable",
    }
)


def rule(event):
    return event.get("action") in DISABLE_ACTIONS


def _scope(event):
    return event.get("repo") or event.get("org") or event.get("business") or "<UNKNOWN_SCOPE>"


def title(event):
    return f"Secret scanning disabled for [{_scope(event)}] by [{event.get('actor')}]"


def dedup(event):
    return _scope(event)


def severity(event):
    # Organization-wide switches affect every repository at once.
    if not event.get("repo"):
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    return github_context(event)
