from onca_aws_helpers import actor_name, aws_context, cloudtrail_success

ALWAYS_BAD = frozenset(
    {
        "DeleteDetector",
        "DisassociateFromMasterAccount",
        "DisassociateFromAdministratorAccount",
        "StopMonitoringMembers",
    }
)


def rule(event):
    name = event.get("eventName")
    if name != "UpdateDetector" and name not in ALWAYS_BAD:
        return False
    if event.get("eventSource") != "guardduty.amazonaws.com" or not cloudtrail_success(event):
        return False
    # UpdateDetector is routine (finding frequency, features) unless it switches the detector off.
    return name in ALWAYS_BAD or event.deep_get("requestParameters", "enable") is False


def title(event):
    return (
        f"GuardDuty weakened via [{event.get('eventName')}] in [{event.get('awsRegion')}] "
        f"by [{actor_name(event)}]"
    )


def dedup(event):
    return f"{event.get('recipientAccountId')}:{event.get('awsRegion')}"


def alert_context(event):
    context = aws_context(event)
    context["detector_id"] = event.deep_get("requestParameters", "detectorId")
    return context
