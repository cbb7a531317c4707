# Parameters that decide who may reach Onca, where its secrets and errors go, and whether it watches itself.
SENSITIVE = frozenset({
    "OnboardSelf", "SupportRoleIdentityAccountId", "OpsRoleIdentityAccountId", "SentryEnvironment", "SentryDsn",
    "SmtpUrl", "MetadataDatabaseUrl", "LakeLocation", "WebCertificateFile", "WebCertificateKeyFile",
    "CustomDomain", "WebListenAddress",
})


def _changed(event):
    changed = event.deep_get("details", "changed", default=[]) or []
    return sorted(name for name in changed if name in SENSITIVE)


def rule(event):
    return (
        event.get("action") == "deployment.parameters_changed"
        and event.get("outcome") == "success"
        and bool(_changed(event))
    )


def _self_monitoring_turned_off(event):
    return event.deep_get("details", "new", "OnboardSelf") is False


def title(event):
    if _self_monitoring_turned_off(event):
        return f"Onca stopped monitoring its own audit log ([{event.get('target')}] OnboardSelf=false)"
    return f"Sensitive Onca parameters changed on [{event.get('target')}]: {', '.join(_changed(event))}"


def severity(event):
    return "HIGH" if _self_monitoring_turned_off(event) else "DEFAULT"


def alert_context(event):
    return {"stack": event.get("target"), "changed": _changed(event), "actor": event.get("actor")}
