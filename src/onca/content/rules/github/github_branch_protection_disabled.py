from onca_github_helpers import github_context, is_bot

WATCHED_ACTIONS = frozenset(
    {"protected_branch.destroy", "protected_branch.policy_override", "repository_ruleset.destroy"}
)


def rule(event):
    return event.get("action") in WATCHED_ACTIONS


def _branch(event):
    return event.get("name") or event.get("branch") or "<UNKNOWN_BRANCH>"


def title(event):
    verb = "bypassed" if event.get("action") == "protected_branch.policy_override" else "removed"
    return f"Branch protection on [{event.get('repo')}:{_branch(event)}] {verb} by [{event.get('actor')}]"


def dedup(event):
    return f"{event.get('repo')}:{_branch(event)}"


def severity(event):
    if is_bot(event.get("actor")):
        return "LOW"
    return "DEFAULT"


def alert_context(event):
    context = github_context(event)
    context["branch"] = _branch(event)
    return context
