from onca_web_helpers import web_context

# Lower-case substrings of the default User-Agent of common offensive scanners.
SCANNER_AGENTS = (
    "sqlmap",
    "nikto",
    "nmap scripting engine",
    "masscan",
    "zgrab",
    "wpscan",
    "nuclei",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "ffuf",
    "acunetix",
    "netsparker",
    "openvas",
    "w3af",
    "havij",
    "jaeles",
    "whatweb",
)


def _agent(event):
    return (event.udm("user_agent") or "").lower()


def rule(event):
    agent = _agent(event)
    return bool(agent) and any(scanner in agent for scanner in SCANNER_AGENTS)


def _scanner(event):
    agent = _agent(event)
    return next((scanner for scanner in SCANNER_AGENTS if scanner in agent), "<UNKNOWN>")


def title(event):
    return f"Web scanner [{_scanner(event)}] used from [{event.udm('source_ip')}]"


def dedup(event):
    return f"{event.udm('source_ip')}:{_scanner(event)}"


def alert_context(event):
    context = web_context(event)
    context["scanner"] = _scanner(event)
    return context
