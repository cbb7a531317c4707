"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): SHA-1, 30-second steps, 6 digits.

These are the parameters every authenticator app supports by default, so the otpauth URI needs no extras.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
# One step either side absorbs clock drift between the server and the phone without widening much.
DRIFT_STEPS = 1


def new_secret() -> str:
    """A random 160-bit secret in base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    text = secret.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(secret: str, counter: int) -> str:
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def current_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // STEP_SECONDS)


def code_at(secret: str, at: float | None = None) -> str:
    return hotp(secret, current_step(at))


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step whose code is `code` (within the drift window), else None; compared in constant time."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = current_step(at)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            found = step
    return found


def otpauth_uri(secret: str, account: str, issuer: str = "Onca") -> str:
    """The URI authenticator apps import (usually as a QR code; it can also be typed in)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS,
                       "period": STEP_SECONDS})
    return f"otpauth://totp/{label}?{query}"
