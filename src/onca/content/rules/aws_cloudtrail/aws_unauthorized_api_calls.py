from onca_aws_helpers import actor_arn, aws_context

DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"}
)


def rule(event):
    if event.get("errorCode") not in DENIED_CODES:
        return False
    # AWS services probing permissions on a customer's behalf produce denials that are not reconnaissance.
    return event.deep_get("userIdentity", "type") != "AWSService"


def title(event):
    return f"Burst of denied AWS API calls by [{actor_arn(event)}]"


def dedup(event):
    return actor_arn(event)


def alert_context(event):
    context = aws_context(event)
    context["errorMessage"] = event.get("errorMessage")
    return context
