from onca_aws_helpers import actor_name, aws_context


def rule(event):
    if event.get("eventName") != "ConsoleLogin":
        return False
    # Only IAM users authenticate with a password here; SSO/SAML sessions enforce MFA at the IdP.
    return (
        event.deep_get("userIdentity", "type") == "IAMUser"
        and event.deep_get("responseElements", "ConsoleLogin") == "Success"
        and event.deep_get("additionalEventData", "MFAUsed") == "No"
    )


def title(event):
    return (
        f"IAM user [{actor_name(event)}] signed in to AWS account [{event.get('recipientAccountId')}] "
        "without MFA"
    )


def dedup(event):
    return f"{event.get('recipientAccountId')}:{actor_name(event)}"


def alert_context(event):
    return aws_context(event)
