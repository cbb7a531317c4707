def rule(event):
    return event.get("action") == "deployment.rolled_back"


def _status(event):
    return event.deep_get("details", "status", default="")


def title(event):
    return f"Onca deployment [{event.get('target')}] rolled back ({_status(event) or 'status unknown'})"


def severity(event):
    # A rollback that itself failed leaves the deployment inconsistent until someone acts.
    return "HIGH" if str(_status(event)).endswith("FAILED") else "DEFAULT"


def alert_context(event):
    return {
        "stack": event.get("target"),
        "status": _status(event),
        "reason": event.deep_get("details", "reason", default=""),
        "actor": event.get("actor"),
    }
