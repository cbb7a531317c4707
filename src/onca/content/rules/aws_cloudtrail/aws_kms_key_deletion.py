from onca_aws_helpers import actor_name, aws_context, cloudtrail_success
from onca_base_helpers import to_int

WATCHED_CALLS = frozenset({"ScheduleKeyDeletion", "DisableKey"})
# AWS allows 7-30 days; the minimum leaves the least time to notice and cancel.
SHORT_WINDOW_DAYS = 7


def rule(event):
    if event.get("eventName") not in WATCHED_CALLS:
        return False
    return event.get("eventSource") == "kms.amazonaws.com" and cloudtrail_success(event)


def _key(event):
    return event.deep_get("requestParameters", "keyId", default="<UNKNOWN_KEY>")


def title(event):
    verb = "scheduled for deletion" if event.get("eventName") == "ScheduleKeyDeletion" else "disabled"
    return f"KMS key [{_key(event)}] {verb} by [{actor_name(event)}]"


def dedup(event):
    return _key(event)


def severity(event):
    days = to_int(event.deep_get("requestParameters", "pendingWindowInDays"))
    if days is not None and days <= SHORT_WINDOW_DAYS:
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    context = aws_context(event)
    context["key_id"] = _key(event)
    context["pending_window_days"] = event.deep_get("requestParameters", "pendingWindowInDays")
    context["deletion_date"] = event.deep_get("responseElements", "deletionDate")
    return context
