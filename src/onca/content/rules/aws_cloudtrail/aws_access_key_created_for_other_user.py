from onca_aws_helpers import actor_arn, actor_name, aws_context, cloudtrail_success


def rule(event):
    if event.get("eventName") != "CreateAccessKey":
        return False
    target = event.deep_get("requestParameters", "userName")
    # Without userName the caller creates a key for itself, which is ordinary key rotation.
    if not target or not cloudtrail_success(event):
        return False
    return target != event.deep_get("userIdentity", "userName")


def title(event):
    return (
        f"[{actor_name(event)}] created an access key for another IAM user "
        f"[{event.deep_get('requestParameters', 'userName')}]"
    )


def dedup(event):
    return f"{actor_arn(event)}:{event.deep_get('requestParameters', 'userName')}"


def alert_context(event):
    context = aws_context(event)
    context["target_user"] = event.deep_get("requestParameters", "userName")
    context["access_key_id"] = event.deep_get("responseElements", "accessKey", "accessKeyId")
    return context
