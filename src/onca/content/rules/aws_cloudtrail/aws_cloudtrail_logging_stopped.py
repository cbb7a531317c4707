from onca_aws_helpers import actor_name, aws_context, cloudtrail_success

TAMPERING_CALLS = frozenset({"StopLogging", "DeleteTrail"})


def rule(event):
    if event.get("eventName") not in TAMPERING_CALLS:
        return False
    return event.get("eventSource") == "cloudtrail.amazonaws.com" and cloudtrail_success(event)


def title(event):
    return (
        f"CloudTrail trail [{event.deep_get('requestParameters', 'name')}] was disabled via "
        f"[{event.get('eventName')}] by [{actor_name(event)}]"
    )


def severity(event):
    if event.deep_get("userIdentity", "type") == "Root":
        return "CRITICAL"
    return "DEFAULT"


def alert_context(event):
    context = aws_context(event)
    context["trail"] = event.deep_get("requestParameters", "name")
    return context
