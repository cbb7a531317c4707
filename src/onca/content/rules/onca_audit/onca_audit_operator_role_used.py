OPERATOR_ROLES = frozenset({"Support", "Operations"})


def _role(event):
    return event.deep_get("details", "actor_role", default="")


def rule(event):
    return _role(event) in OPERATOR_ROLES


def title(event):
    verb = "refused" if event.get("outcome") == "denied" else "used"
    return f"Onca [{_role(event)}] role {verb} by [{event.get('actor')}]: [{event.get('action')}]"


def severity(event):
    # An operator identity reaching for something its role does not allow is worth a closer look.
    return "MEDIUM" if event.get("outcome") == "denied" else "DEFAULT"


def dedup(event):
    return f"{event.get('actor')}:{_role(event)}"


def alert_context(event):
    return {
        "actor": event.get("actor"),
        "role": _role(event),
        "action": event.get("action"),
        "target": event.get("target"),
        "outcome": event.get("outcome"),
        "source_ip": event.get("source_ip", ""),
    }
