from onca_aws_helpers import aws_context


def rule(event):
    if event.get("eventName") != "ConsoleLogin":
        return False
    return (
        event.deep_get("userIdentity", "type") == "Root"
        and event.deep_get("responseElements", "ConsoleLogin") == "Success"
    )


def title(event):
    return (
        f"AWS root user signed in to the console of account [{event.get('recipientAccountId')}] "
        f"from [{event.get('sourceIPAddress')}]"
    )


def dedup(event):
    return f"{event.get('recipientAccountId')}:{event.get('sourceIPAddress')}"


def severity(event):
    # Without MFA the root password alone controls the whole account.
    if event.deep_get("additionalEventData", "MFAUsed") == "No":
        return "CRITICAL"
    return "DEFAULT"


def alert_context(event):
    context = aws_context(event)
    context["mfa_used"] = event.deep_get("additionalEventData", "MFAUsed")
    return context
