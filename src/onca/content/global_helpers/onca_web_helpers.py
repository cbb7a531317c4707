"""Helpers for web access-log detections (Nginx.Access, Apache.AccessCombined).

Rules read these logs only through the data-model names (source_ip, http_method, url_path, http_status,
user_agent, referrer), so one rule covers both servers.
"""

from onca_base_helpers import decode_url


def decoded_url(event) -> str:
    """The request target, percent-decoded and lower-cased."""
    return decode_url(event.udm("url_path"))


def web_context(event) -> dict:
    return {
        "source_ip": event.udm("source_ip"),
        "http_method": event.udm("http_method"),
        "url_path": event.udm("url_path"),
        "http_status": event.udm("http_status"),
        "user_agent": event.udm("user_agent"),
        "referrer": event.udm("referrer"),
        "log_type": event.get("p_log_type"),
    }
