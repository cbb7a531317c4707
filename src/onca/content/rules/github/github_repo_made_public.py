from onca_github_helpers import github_context


def rule(event):
    if event.get("action") != "repo.access":
        return False
    return event.get("visibility") == "public"


def title(event):
    return f"GitHub repository [{event.get('repo')}] made public by [{event.get('actor')}]"


def dedup(event):
    return event.get("repo") or "<UNKNOWN_REPO>"


def alert_context(event):
    context = github_context(event)
    context["visibility"] = event.get("visibility")
    context["previous_visibility"] = event.get("previous_visibility")
    return context
