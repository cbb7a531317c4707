from onca_aws_helpers import actor_name, aws_context, cloudtrail_success


def rule(event):
    if event.get("eventName") != "CreateUser":
        return False
    return event.get("eventSource") == "iam.amazonaws.com" and cloudtrail_success(event)


def title(event):
    return (
        f"IAM user [{event.deep_get('requestParameters', 'userName')}] created by [{actor_name(event)}] "
        f"in account [{event.get('recipientAccountId')}]"
    )


def alert_context(event):
    context = aws_context(event)
    # target_user is the join key of the Onca.AWS.NewUserGrantedAdmin correlation rule.
    context["target_user"] = event.deep_get("requestParameters", "userName")
    return context
