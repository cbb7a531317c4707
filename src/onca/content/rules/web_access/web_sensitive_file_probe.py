from onca_web_helpers import decoded_url, web_context

# Files that should never be web-accessible; a 200 means secrets or source code were served.
SENSITIVE_SUFFIXES = (
    "/.env",
    "/.git/config",
    "/.git/head",
    "/.aws/credentials",
    "/.htpasswd",
    "/.ssh/id_rsa",
    "/id_rsa",
    "/wp-config.php.bak",
    "/wp-config.php~",
    "/config.php.bak",
    "/.ds_store",
    "/backup.sql",
    "/dump.sql",
    "/.npmrc",
    "/.docker/config.json",
)


def _path(event):
    return decoded_url(event).split("?", 1)[0]


def rule(event):
    path = _path(event)
    return bool(path) and path.endswith(SENSITIVE_SUFFIXES)


def title(event):
    return f"Request for sensitive file [{_path(event)}] from [{event.udm('source_ip')}]"


def dedup(event):
    return f"{event.udm('source_ip')}:{event.udm('http_status')}"


def severity(event):
    if event.udm("http_status") == 200:
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    return web_context(event)
