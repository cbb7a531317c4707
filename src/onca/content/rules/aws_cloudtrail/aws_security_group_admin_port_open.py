from onca_aws_helpers import actor_name, aws_context, cloudtrail_success

ADMIN_PORTS = (22, 3389, 5985, 5986)
WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def _world_ranges(permission):
    v4 = (permission.get("ipRanges") or {}).get("items") or ()
    v6 = (permission.get("ipv6Ranges") or {}).get("items") or ()
    return [r.get("cidrIp") for r in v4 if r.get("cidrIp") in WORLD_CIDRS] + [
        r.get("cidrIpv6") for r in v6 if r.get("cidrIpv6") in WORLD_CIDRS
    ]


def _exposes_admin_port(permission):
    if permission.get("ipProtocol") in ("-1", "all"):
        return True
    if permission.get("ipProtocol") != "tcp":
        return False
    low, high = permission.get("fromPort"), permission.get("toPort")
    if low is None or high is None:
        return False
    return any(low <= port <= high for port in ADMIN_PORTS)


def _open_permissions(event):
    items = event.deep_get("requestParameters", "ipPermissions", "items") or ()
    return [p for p in items if _exposes_admin_port(p) and _world_ranges(p)]


def rule(event):
    if event.get("eventName") != "AuthorizeSecurityGroupIngress":
        return False
    return cloudtrail_success(event) and bool(_open_permissions(event))


def title(event):
    return (
        f"Security group [{event.deep_get('requestParameters', 'groupId')}] opened remote-administration "
        f"ports to the internet by [{actor_name(event)}]"
    )


def dedup(event):
    return event.deep_get("requestParameters", "groupId", default="<UNKNOWN_GROUP>")


def severity(event):
    # All protocols/ports open to the world exposes every service on the attached instances.
    if any(p.get("ipProtocol") in ("-1", "all") for p in _open_permissions(event)):
        return "CRITICAL"
    return "DEFAULT"


def alert_context(event):
    context = aws_context(event)
    context["group_id"] = event.deep_get("requestParameters", "groupId")
    context["open_rules"] = [
        {
            "protocol": p.get("ipProtocol"),
            "from_port": p.get("fromPort"),
            "to_port": p.get("toPort"),
            "cidrs": _world_ranges(p),
        }
        for p in _open_permissions(event)
    ]
    return context
