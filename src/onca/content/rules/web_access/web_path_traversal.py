from onca_web_helpers import decoded_url, web_context

# Checked against the decoded, lower-cased request target. "..\\" covers IIS-style back-ends behind a proxy.
TRAVERSAL_MARKERS = ("../", "..\\", "/etc/passwd", "/etc/shadow", "/proc/self/environ", "win.ini", "boot.ini")


def rule(event):
    url = decoded_url(event)
    return bool(url) and any(marker in url for marker in TRAVERSAL_MARKERS)


def title(event):
    return f"Path traversal attempt from [{event.udm('source_ip')}]: [{event.udm('url_path')}]"


def dedup(event):
    return event.udm("source_ip") or "<UNKNOWN_IP>"


def severity(event):
    # A 200 to a traversal request may mean the file was served.
    if event.udm("http_status") == 200:
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    return web_context(event)
