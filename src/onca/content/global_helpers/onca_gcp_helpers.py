"""Helpers for GCP.AuditLog detections."""


def gcp_success(event) -> bool:
    """An audit entry with no status, or status code 0 (OK), records a call that succeeded."""
    return not event.deep_get("protoPayload", "status", "code")


def principal(event) -> str:
    return event.deep_get(
        "protoPayload", "authenticationInfo", "principalEmail", default="<UNKNOWN_PRINCIPAL>"
    )


def added_bindings(event) -> list[tuple[str, str]]:
    """(role, member) pairs that a SetIamPolicy call added, from the audit log's policy delta."""
    deltas = event.deep_get("protoPayload", "serviceData", "policyDelta", "bindingDeltas") or ()
    return [
        (delta.get("role", ""), delta.get("member", "")) for delta in deltas if delta.get("action") == "ADD"
    ]


def gcp_context(event) -> dict:
    return {
        "methodName": event.deep_get("protoPayload", "methodName"),
        "serviceName": event.deep_get("protoPayload", "serviceName"),
        "resourceName": event.deep_get("protoPayload", "resourceName"),
        "principal": principal(event),
        "caller_ip": event.deep_get("protoPayload", "requestMetadata", "callerIp"),
        "user_agent": event.deep_get("protoPayload", "requestMetadata", "callerSuppliedUserAgent"),
        "project_id": event.deep_get("resource", "labels", "project_id"),
    }
