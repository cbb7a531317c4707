from onca_gcp_helpers import gcp_context, gcp_success, principal


def rule(event):
    if event.deep_get("protoPayload", "methodName") != "google.iam.admin.v1.CreateServiceAccountKey":
        return False
    return gcp_success(event)


def _service_account(event):
    return event.deep_get("protoPayload", "request", "name") or event.deep_get(
        "protoPayload", "resourceName", default="<UNKNOWN_SERVICE_ACCOUNT>"
    )


def title(event):
    return f"[{principal(event)}] created a key for service account [{_service_account(event)}]"


def dedup(event):
    return _service_account(event)


def severity(event):
    # A service account minting keys (for itself or others) is the classic lateral-movement pattern.
    if principal(event).endswith(".gserviceaccount.com"):
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    context = gcp_context(event)
    context["service_account"] = _service_account(event)
    context["key_name"] = event.deep_get("protoPayload", "response", "name")
    return context
