"""Helpers for Zeek logs (Zeek.Conn, Zeek.DNS, Zeek.HTTP, Zeek.SSL).

Zeek's JSON writer emits the connection 4-tuple as flat keys containing dots ("id.orig_h"), so these are
read with a plain get(), never with a nested path.
"""

from onca_base_helpers import is_public_ip


def is_outbound(event) -> bool:
    """An internal originator talking to a public responder."""
    return not is_public_ip(event.get("id.orig_h")) and is_public_ip(event.get("id.resp_h"))


def zeek_context(event) -> dict:
    return {
        "uid": event.get("uid"),
        "orig_h": event.get("id.orig_h"),
        "orig_p": event.get("id.orig_p"),
        "resp_h": event.get("id.resp_h"),
        "resp_p": event.get("id.resp_p"),
        "proto": event.get("proto"),
        "log_type": event.get("p_log_type"),
    }
