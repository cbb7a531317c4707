"""Helpers for AWS.CloudTrail detections."""


def cloudtrail_success(event) -> bool:
    """A CloudTrail record describes a call that succeeded (no errorCode/errorMessage)."""
    return not event.get("errorCode") and not event.get("errorMessage")


def actor_arn(event) -> str:
    return event.deep_get("userIdentity", "arn", default="<UNKNOWN_ACTOR>")


def actor_name(event) -> str:
    """A human-readable principal name: the IAM user, the role session, or "root"."""
    identity_type = event.deep_get("userIdentity", "type")
    if identity_type == "Root":
        return "root"
    if identity_type == "IAMUser":
        return event.deep_get("userIdentity", "userName", default="<UNKNOWN_USER>")
    # Role sessions put the session name (often the human's e-mail under SSO) last in the ARN.
    arn = actor_arn(event)
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def aws_context(event) -> dict:
    """The fields an analyst needs on every CloudTrail alert."""
    return {
        "eventName": event.get("eventName"),
        "eventSource": event.get("eventSource"),
        "awsRegion": event.get("awsRegion"),
        "recipientAccountId": event.get("recipientAccountId"),
        "sourceIPAddress": event.get("sourceIPAddress"),
        "userAgent": event.get("userAgent"),
        "actor_arn": actor_arn(event),
        "actor_type": event.deep_get("userIdentity", "type"),
        "errorCode": event.get("errorCode"),
    }
