import ipaddress

from onca_zeek_helpers import zeek_context

EXECUTABLE_MIME_TYPES = frozenset(
    {
        "application/x-dosexec",
        "application/x-executable",
        "application/x-elf",
        "application/x-mach-o-executable",
        "application/x-sh",
        "application/x-msdownload",
    }
)
EXECUTABLE_EXTENSIONS = (".exe", ".dll", ".scr", ".ps1", ".hta", ".sh", ".elf", ".bin", ".msi")


def _host_ip(host):
    """The IP literal in a Host header ("203.0.113.5", "203.0.113.5:8080", "[2001:db8::1]"), else None."""
    candidate = host.strip("[]")
    for value in (candidate, candidate.rsplit(":", 1)[0].strip("[]")):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            continue
    return None


def _is_executable(event):
    if any(mime in EXECUTABLE_MIME_TYPES for mime in event.get("resp_mime_types") or ()):
        return True
    return (event.get("uri") or "").split("?", 1)[0].lower().endswith(EXECUTABLE_EXTENSIONS)


def rule(event):
    host = event.get("host")
    # Cheap gate: an IP literal starts with a digit (IPv4) or a bracket/hex digit (IPv6).
    if not host or not (host[0].isdigit() or host[0] == "["):
        return False
    address = _host_ip(host)
    if address is None or not address.is_global:
        return False
    return event.get("status_code") == 200 and _is_executable(event)


def title(event):
    return (
        f"[{event.get('id.orig_h')}] downloaded an executable from bare IP "
        f"[{event.get('host')}{event.get('uri')}]"
    )


def dedup(event):
    return f"{event.get('id.orig_h')}:{event.get('host')}"


def alert_context(event):
    context = zeek_context(event)
    context.update(
        {
            "host": event.get("host"),
            "uri": event.get("uri"),
            "user_agent": event.get("user_agent"),
            "resp_mime_types": list(event.get("resp_mime_types") or ()),
            "response_body_len": event.get("response_body_len"),
        }
    )
    return context
