from onca_gcp_helpers import gcp_context, gcp_success, principal

# Compute audit logs name methods "<api version>.compute.firewalls.<verb>" (v1, beta, alpha).
WRITE_VERBS = (".compute.firewalls.insert", ".compute.firewalls.patch", ".compute.firewalls.update")
ADMIN_PORTS = (22, 3389)
WORLD_RANGES = frozenset({"0.0.0.0/0", "::/0"})


def _port_in(spec, port):
    low, _, high = spec.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:
        return False


def _allows_admin_port(allowed):
    protocol = (allowed.get("IPProtocol") or "").lower()
    if protocol == "all":
        return True
    if protocol != "tcp":
        return False
    ports = allowed.get("ports")
    # A tcp rule without ports allows every port.
    if not ports:
        return True
    return any(_port_in(spec, port) for spec in ports for port in ADMIN_PORTS)


def rule(event):
    if not (event.deep_get("protoPayload", "methodName") or "").endswith(WRITE_VERBS):
        return False
    request = event.deep_get("protoPayload", "request")
    if not request or not gcp_success(event):
        return False
    if (request.get("direction") or "INGRESS") != "INGRESS" or request.get("disabled") is True:
        return False
    if not any(r in WORLD_RANGES for r in request.get("sourceRanges") or ()):
        return False
    return any(_allows_admin_port(allowed) for allowed in request.get("alloweds") or ())


def _rule_name(event):
    return event.deep_get("protoPayload", "request", "name") or event.deep_get(
        "protoPayload", "resourceName", default="<UNKNOWN_FIREWALL>"
    )


def title(event):
    return f"GCP firewall rule [{_rule_name(event)}] opens SSH/RDP to the internet ({principal(event)})"


def dedup(event):
    return _rule_name(event)


def alert_context(event):
    context = gcp_context(event)
    context["firewall"] = _rule_name(event)
    context["network"] = event.deep_get("protoPayload", "request", "network")
    return context
