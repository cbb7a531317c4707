from onca_github_helpers import github_context

DISABLE_ACTIONS = frozenset({"org.disable_two_factor_requirement", "business.disable_two_factor_requirement"})


def rule(event):
    return event.get("action") in DISABLE_ACTIONS


def _scope(event):
    return event.get("business") or event.get("org") or "<UNKNOWN_SCOPE>"


def title(event):
    return f"Two-factor requirement disabled for [{_scope(event)}] by [{event.get('actor')}]"


def alert_context(event):
    return github_context(event)
