from onca_web_helpers import web_context


def rule(event):
    status = event.udm("http_status")
    return type(status) is int and status >= 500


def title(event):
    return f"Burst of HTTP 5xx responses to requests from [{event.udm('source_ip')}]"


def dedup(event):
    return event.udm("source_ip") or "<UNKNOWN_IP>"


def alert_context(event):
    return web_context(event)
