"""Dependency-free helpers shared by every Onca detection.

Everything here is called from rule() on hot paths, so the functions avoid allocations where they can
and cache pure results.
"""

import ipaddress
from functools import lru_cache
from urllib.parse import unquote_plus

# Attackers nest percent-encoding to slip past naive filters; three rounds undo every real-world case
# seen in scanner traffic without letting a crafted input loop for long.
_MAX_DECODE_ROUNDS = 3


@lru_cache(maxsize=8192)
def is_public_ip(value: str | None) -> bool:
    """True for a globally routable address; False for private/reserved/unparsable input."""
    if not value:
        return False
    try:
        return ipaddress.ip_address(value).is_global
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def decode_url(value: str | None) -> str:
    """Percent/plus-decode repeatedly and lower-case, so pattern checks see what the server saw."""
    if not value:
        return ""
    decoded = value
    for _ in range(_MAX_DECODE_ROUNDS):
        step = unquote_plus(decoded)
        if step == decoded:
            break
        decoded = step
    return decoded.lower()


def registered_domain(fqdn: str | None) -> str:
    """Last two labels of a DNS name ("a.b.example.com" -> "example.com").

    Deliberately ignores the public-suffix list: dedup keys only need to be stable, not exact.
    """
    if not fqdn:
        return ""
    labels = fqdn.rstrip(".").lower().rsplit(".", 2)
    return ".".join(labels[-2:])


def to_int(value: object) -> int | None:
    """Best-effort int conversion for fields that arrive as numbers or numeric strings."""
    if type(value) is int:
        return value
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
