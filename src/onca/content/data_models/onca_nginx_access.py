"""Data-model methods for Nginx.Access: nginx logs the raw request line, not its parts."""


def _request_parts(event) -> tuple[str, str]:
    # "GET /path?q=1 HTTP/1.1" -> ("GET", "/path?q=1"); a line without a protocol (HTTP/0.9 or a probe
    # sending garbage) keeps everything after the method as the target.
    method, _, rest = (event.get("request") or "").partition(" ")
    target, sep, protocol = rest.rpartition(" ")
    if not sep or not protocol.startswith("HTTP/"):
        target = rest
    return method, target


def get_http_method(event):
    return _request_parts(event)[0] or None


def get_url_path(event):
    return _request_parts(event)[1] or None
