PRIVILEGED_ROLES = frozenset({"Admin", "Operations"})
DEPLOYER = "onca-deploy"


def _role(event):
    return event.deep_get("details", "role", default="")


def rule(event):
    if event.get("outcome") != "success" or _role(event) not in PRIVILEGED_ROLES:
        return False
    if event.get("action") == "role.granted":
        return True
    # The first administrator is created by the deployer; an Admin created by a person is a grant too.
    return event.get("action") == "user.created" and event.get("actor") != DEPLOYER


def title(event):
    return f"Onca role [{_role(event)}] granted to [{event.get('target')}] by [{event.get('actor')}]"


def severity(event):
    return "HIGH" if _role(event) == "Admin" else "MEDIUM"


def alert_context(event):
    return {
        "actor": event.get("actor"),
        "grantee": event.get("target"),
        "role": _role(event),
        "source": event.deep_get("details", "source", default=""),
        "source_ip": event.get("source_ip", ""),
    }
