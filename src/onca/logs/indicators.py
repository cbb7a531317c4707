"""Indicator scanners: the `indicators:` of a string field fill the p_any_* columns of its row.

A scanner looks at one string value and yields (p_any column, normalised value) pairs. Results are cached
per scanner (values such as source IPs, account IDs and user names repeat across a batch), so the cost per
field is a dict lookup once a value has been seen; the caches are bounded and simply cleared when full.
Normal forms: IP addresses in ipaddress' canonical text (IPv6 compressed, IPv4-mapped kept), domains and
hashes lower-cased, everything else as given (trimmed).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

IP = "p_any_ip_addresses"
DOMAIN = "p_any_domain_names"
USERNAME = "p_any_usernames"
EMAIL = "p_any_emails"
MD5 = "p_any_md5_hashes"
SHA1 = "p_any_sha1_hashes"
SHA256 = "p_any_sha256_hashes"
ACCOUNT = "p_any_aws_account_ids"
ARN = "p_any_aws_arns"
INSTANCE = "p_any_aws_instance_ids"
TRACE = "p_any_trace_ids"

INDICATOR_FIELDS: tuple[str, ...] = (IP, DOMAIN, USERNAME, EMAIL, MD5, SHA1, SHA256, ACCOUNT, ARN, INSTANCE, TRACE)

Found = tuple[tuple[str, str], ...]
_NONE: Found = ()
_CACHE_LIMIT = 50_000

_HEX32 = re.compile(r"[0-9a-fA-F]{32}\Z")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}\Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_ACCOUNT_ID = re.compile(r"\d{12}\Z")
_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")
_INSTANCE_IN_ARN = re.compile(r"(?:^|[/:])(i-(?:[0-9a-f]{17}|[0-9a-f]{8}))(?:$|[/:])")
# A DNS name: labels of letters, digits, '-' and '_' (a single-label host name such as web-02 counts, as in
# Panther's hostname scanner), the last label starting with a letter so numbers and IPs never qualify.
_DOMAIN = re.compile(r"(?=.{1,253}\Z)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                     r"(?:[A-Za-z](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)\.?\Z")
_EMAIL = re.compile(r"[^@\s<>\"',;]+@([^@\s<>\"',;]+)\Z")
_IP_START = frozenset("0123456789abcdefABCDEF:")


def _ip(text: str) -> str | None:
    if not text or text[0] not in _IP_START:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _domain(text: str) -> str | None:
    if _DOMAIN.match(text):
        return text.rstrip(".").lower()
    return None


def scan_ip(value: str) -> Found:
    address = _ip(value.strip())
    return ((IP, address),) if address else _NONE


def scan_domain(value: str) -> Found:
    name = _domain(value.strip())
    return ((DOMAIN, name),) if name else _NONE


def scan_hostname(value: str) -> Found:
    """A host is either an IP address or a domain name."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = _ip(text)
    if address:
        return ((IP, address),)
    name = _domain(text)
    return ((DOMAIN, name),) if name else _NONE


def scan_url(value: str) -> Found:
    text = value.strip()
    if "://" not in text:
        # A scheme-less reference such as "example.com/path" still names a host.
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return _NONE
    return scan_hostname(host) if host else _NONE


def scan_net_addr(value: str) -> Found:
    """host, host:port, [v6]:port or a bare IPv6 address."""
    text = value.strip()
    if text.startswith("["):
        end = text.find("]")
        return scan_hostname(text[1:end]) if end > 0 else _NONE
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return scan_hostname(text)


def _hash(pattern: re.Pattern[str], column: str) -> Callable[[str], Found]:
    def scan(value: str) -> Found:
        text = value.strip()
        return ((column, text.lower()),) if pattern.match(text) else _NONE

    return scan


def scan_trace_id(value: str) -> Found:
    text = value.strip()
    return ((TRACE, text),) if text else _NONE


def scan_username(value: str) -> Found:
    text = value.strip()
    return ((USERNAME, text),) if text else _NONE


def scan_email(value: str) -> Found:
    text = value.strip()
    match = _EMAIL.match(text)
    return ((EMAIL, text),) if match and _domain(match.group(1)) else _NONE


def scan_aws_account_id(value: str) -> Found:
    text = value.strip()
    return ((ACCOUNT, text),) if _ACCOUNT_ID.match(text) else _NONE


def scan_aws_instance_id(value: str) -> Found:
    text = value.strip()
    return ((INSTANCE, text),) if _INSTANCE_ID.match(text) else _NONE


def scan_aws_arn(value: str) -> Found:
    """arn:partition:service:region:account-id:resource — the ARN, its account and any instance ID in it."""
    text = value.strip()
    if not text.startswith("arn:"):
        return _NONE
    parts = text.split(":", 5)
    if len(parts) < 6 or not parts[1] or not parts[2]:
        return _NONE
    found: list[tuple[str, str]] = [(ARN, text)]
    if _ACCOUNT_ID.match(parts[4]):
        found.append((ACCOUNT, parts[4]))
    instance = _INSTANCE_IN_ARN.search(parts[5])
    if instance:
        found.append((INSTANCE, instance.group(1)))
    return tuple(found)


SCANNERS: dict[str, Callable[[str], Found]] = {
    "ip": scan_ip,
    "domain": scan_domain,
    "hostname": scan_hostname,
    "url": scan_url,
    "net_addr": scan_net_addr,
    "md5": _hash(_HEX32, MD5),
    "sha1": _hash(_HEX40, SHA1),
    "sha256": _hash(_HEX64, SHA256),
    "trace_id": scan_trace_id,
    "aws_arn": scan_aws_arn,
    "aws_account_id": scan_aws_account_id,
    "aws_instance_id": scan_aws_instance_id,
    "email": scan_email,
    "username": scan_username,
}
"""Scanner name (as written in a schema's `indicators:`) -> scanner."""


def combined_scanner(names: Sequence[str]) -> Callable[[str], Found]:
    """One cached scanner running every named scanner, for a field with several indicators. Fields with the
    same scanners share it, across schemas and files: its cache outlives one file (S3 delivers CloudTrail in
    files of a few hundred events that mention the same users, roles and addresses again and again)."""
    return _combined_scanner(tuple(names))


@functools.cache
def _combined_scanner(names: tuple[str, ...]) -> Callable[[str], Found]:
    parts = [SCANNERS[name] for name in names]
    cache: dict[str, Found] = {}

    def scan(value: str) -> Found:
        found = cache.get(value)
        if found is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            found = parts[0](value) if len(parts) == 1 else tuple(pair for part in parts for pair in part(value))
            cache[value] = found
        return found

    scan.cache = cache  # type: ignore[attr-defined]  # the hot path reads it without the call
    scan.parts = tuple(parts)  # type: ignore[attr-defined]  # which scanners: column-wise shortcuts depend on it
    return scan


def scan_values(names: list[str], value: str) -> dict[str, list[str]]:
    """Every indicator `names` find in `value`, by p_any column (for tests and tools; rows use the compiled form)."""
    out: dict[str, list[str]] = {}
    for column, found in combined_scanner(names)(value):
        out.setdefault(column, []).append(found)
    return out
