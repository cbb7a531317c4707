from onca_base_helpers import is_public_ip
from onca_zeek_helpers import zeek_context

SELF_SIGNED_STATUSES = frozenset({"self signed certificate", "self signed certificate in certificate chain"})


def rule(event):
    if event.get("validation_status") not in SELF_SIGNED_STATUSES:
        return False
    # Internal services commonly use self-signed certificates; on the internet they hint at C2 servers.
    return event.get("established") is True and is_public_ip(event.get("id.resp_h"))


def _server(event):
    return event.get("server_name") or event.get("id.resp_h")


def title(event):
    return f"TLS session to self-signed server [{_server(event)}] from [{event.get('id.orig_h')}]"


def dedup(event):
    return f"{event.get('id.orig_h')}:{_server(event)}"


def alert_context(event):
    context = zeek_context(event)
    context.update(
        {
            "server_name": event.get("server_name"),
            "subject": event.get("subject"),
            "issuer": event.get("issuer"),
            "validation_status": event.get("validation_status"),
            "ja3": event.get("ja3"),
            "ja3s": event.get("ja3s"),
        }
    )
    return context
