from collections.abc import Mapping

from onca_aws_helpers import actor_name, aws_context, cloudtrail_success

WATCHED_CALLS = frozenset({"PutBucketPolicy", "PutBucketAcl", "DeleteBucketPublicAccessBlock"})
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})


def _as_list(value):
    # IAM/S3 documents allow a single object wherever a list is expected.
    if value is None:
        return ()
    return (value,) if isinstance(value, Mapping) else value


def _policy_is_public(policy):
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, Mapping) and principal.get("AWS") == "*"):
            return True
    return False


def _acl_is_public(params):
    if any(acl in PUBLIC_CANNED_ACLS for acl in params.get("x-amz-acl") or ()):
        return True
    acl = (params.get("AccessControlPolicy") or {}).get("AccessControlList") or {}
    return any(
        (grant.get("Grantee") or {}).get("URI") in PUBLIC_GRANTEES for grant in _as_list(acl.get("Grant"))
    )


def rule(event):
    name = event.get("eventName")
    if name not in WATCHED_CALLS:
        return False
    if event.get("eventSource") != "s3.amazonaws.com" or not cloudtrail_success(event):
        return False
    if name == "DeleteBucketPublicAccessBlock":
        return True
    params = event.get("requestParameters")
    if not params:
        return False
    if name == "PutBucketPolicy":
        return _policy_is_public(params.get("bucketPolicy") or {})
    return _acl_is_public(params)


def title(event):
    return (
        f"S3 bucket [{event.deep_get('requestParameters', 'bucketName')}] exposed publicly via "
        f"[{event.get('eventName')}] by [{actor_name(event)}]"
    )


def dedup(event):
    return event.deep_get("requestParameters", "bucketName", default="<UNKNOWN_BUCKET>")


def alert_context(event):
    context = aws_context(event)
    context["bucket"] = event.deep_get("requestParameters", "bucketName")
    return context
