"""Helpers for Okta.SystemLog detections."""


def okta_success(event) -> bool:
    return event.deep_get("outcome", "result") == "SUCCESS"


def actor_login(event) -> str:
    return event.deep_get("actor", "alternateId", default="<UNKNOWN_ACTOR>")


def target_logins(event, target_type: str = "User") -> list[str]:
    """alternateIds of the targets of one type (Okta puts users, groups and apps in one list)."""
    return [
        target.get("alternateId")
        for target in event.get("target") or ()
        if target.get("type") == target_type and target.get("alternateId")
    ]


def first_target_login(event) -> str:
    targets = target_logins(event)
    return targets[0] if targets else "<UNKNOWN_TARGET>"


def okta_context(event) -> dict:
    return {
        "eventType": event.get("eventType"),
        "actor": actor_login(event),
        "actor_type": event.deep_get("actor", "type"),
        "outcome": event.deep_get("outcome", "result"),
        "outcome_reason": event.deep_get("outcome", "reason"),
        "client_ip": event.deep_get("client", "ipAddress"),
        "user_agent": event.deep_get("client", "userAgent", "rawUserAgent"),
        "country": event.deep_get("client", "geographicalContext", "country"),
        "targets": target_logins(event),
        "transaction_id": event.deep_get("transaction", "id"),
    }
