from onca_aws_helpers import actor_name, aws_context, cloudtrail_success

ATTACH_CALLS = frozenset({"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"})
ADMIN_POLICY_SUFFIX = ":policy/AdministratorAccess"


def rule(event):
    if event.get("eventName") not in ATTACH_CALLS:
        return False
    policy_arn = event.deep_get("requestParameters", "policyArn") or ""
    return policy_arn.endswith(ADMIN_POLICY_SUFFIX) and cloudtrail_success(event)


def _principal(event):
    params = event.get("requestParameters") or {}
    return params.get("userName") or params.get("roleName") or params.get("groupName") or "<UNKNOWN>"


def title(event):
    return f"[{actor_name(event)}] attached AdministratorAccess to [{_principal(event)}]"


def dedup(event):
    return f"{event.get('recipientAccountId')}:{_principal(event)}"


def severity(event):
    # Granting admin to a user (long-lived keys, console password) is worse than to a role.
    if event.get("eventName") == "AttachUserPolicy":
        return "CRITICAL"
    return "DEFAULT"


def alert_context(event):
    context = aws_context(event)
    # target_user is the join key of the Onca.AWS.NewUserGrantedAdmin correlation rule.
    context["target_user"] = event.deep_get("requestParameters", "userName")
    context["target_role"] = event.deep_get("requestParameters", "roleName")
    context["target_group"] = event.deep_get("requestParameters", "groupName")
    return context
