"""Helpers for GitHub.Audit detections."""


def is_bot(actor: str | None) -> bool:
    """GitHub Apps act as "<slug>[bot]"; their changes are automation, not a person at a keyboard."""
    return bool(actor) and actor.endswith("[bot]")


def github_context(event) -> dict:
    return {
        "action": event.get("action"),
        "actor": event.get("actor"),
        "actor_country": event.deep_get("actor_location", "country_code"),
        "org": event.get("org"),
        "repo": event.get("repo"),
        "user": event.get("user"),
        "business": event.get("business"),
    }
