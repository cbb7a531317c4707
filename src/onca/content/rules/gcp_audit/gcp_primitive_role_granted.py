from onca_gcp_helpers import added_bindings, gcp_context, gcp_success, principal

PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor"})
# Consumer accounts are outside the organization's identity controls (no SSO, no offboarding).
CONSUMER_DOMAINS = ("@gmail.com", "@googlemail.com")


def _primitive_grants(event):
    return [(role, member) for role, member in added_bindings(event) if role in PRIMITIVE_ROLES]


def rule(event):
    if not (event.deep_get("protoPayload", "methodName") or "").endswith("SetIamPolicy"):
        return False
    return gcp_success(event) and bool(_primitive_grants(event))


def title(event):
    grants = ", ".join(f"{role} -> {member}" for role, member in _primitive_grants(event))
    return f"[{principal(event)}] granted primitive role(s) [{grants}] on [{_resource(event)}]"


def _resource(event):
    return event.deep_get("protoPayload", "resourceName", default="<UNKNOWN_RESOURCE>")


def dedup(event):
    return _resource(event)


def severity(event):
    if any(member.endswith(CONSUMER_DOMAINS) for _, member in _primitive_grants(event)):
        return "CRITICAL"
    if any(role == "roles/owner" for role, _ in _primitive_grants(event)):
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    context = gcp_context(event)
    context["grants"] = [{"role": role, "member": member} for role, member in _primitive_grants(event)]
    return context
