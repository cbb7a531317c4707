import re

from onca_web_helpers import decoded_url, web_context

# Keyword pairs and functions that only appear in injected SQL, not in ordinary query strings.
SQLI_PATTERN = re.compile(
    r"union(?:\s|/\*.*?\*/)+(?:all(?:\s|/\*.*?\*/)+)?select"
    r"|'\s*(?:or|and)\s*'?\d+'?\s*=\s*'?\d+"
    r"|\bor\s+1\s*=\s*1\b"
    r"|\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d"
    r"|waitfor\s+delay\s+'"
    r"|information_schema\."
    r"|\b(?:extractvalue|updatexml)\s*\("
    r"|;\s*(?:drop|truncate)\s+table\b"
)


def rule(event):
    url = decoded_url(event)
    # Cheap gate: every pattern above needs a query string or path parameter with one of these characters.
    if not url or ("?" not in url and "'" not in url and ";" not in url):
        return False
    return SQLI_PATTERN.search(url) is not None


def title(event):
    return f"SQL injection attempt from [{event.udm('source_ip')}]"


def dedup(event):
    return event.udm("source_ip") or "<UNKNOWN_IP>"


def severity(event):
    # Database errors surfacing as 500s are how error-based injection is confirmed.
    status = event.udm("http_status")
    if type(status) is int and status >= 500:
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    context = web_context(event)
    match = SQLI_PATTERN.search(decoded_url(event))
    context["matched"] = match.group(0) if match else None
    return context
