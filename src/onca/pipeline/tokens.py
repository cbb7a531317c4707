"""Per-source bearer tokens for HTTP push intake.

A token is shown once, when issued; only its sha256 is kept, in the source's config
(`sources.config["token_sha256"]`). Issuing again replaces the token (rotation); `revoke_token` removes it.
Tokens carry a fixed prefix so secret scanners can recognise a leaked one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from onca.store.db import session_scope
from onca.store.models import Source

TOKEN_PREFIX = "onca_src_"
CONFIG_KEY = "token_sha256"


class UnknownSource(LookupError):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _source(session: Session, source_name: str) -> Source:
    source = session.scalar(select(Source).where(Source.name == source_name))
    if source is None:
        raise UnknownSource(source_name)
    return source


def issue_token(session: Session, source_name: str) -> str:
    """A new token for the source (replacing any previous one); the caller commits the session."""
    source = _source(session, source_name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    # A new dict: JsonText has no mutation tracking, so the column must be reassigned to be saved.
    source.config = {**(source.config or {}), CONFIG_KEY: token_hash(token)}
    return token


def revoke_token(session: Session, source_name: str) -> None:
    source = _source(session, source_name)
    config = dict(source.config or {})
    config.pop(CONFIG_KEY, None)
    source.config = config


def _matches(stored: object, digest: str) -> bool:
    return isinstance(stored, str) and hmac.compare_digest(stored.encode(), digest.encode())


def verify(session: Session, token: str) -> Source | None:
    """The enabled source this token belongs to, or None. Every stored hash is compared in constant time."""
    if not token:
        return None
    digest = token_hash(token)
    found = None
    for source in session.scalars(select(Source)):
        # No early exit: the time taken does not depend on which source (if any) matched.
        if _matches((source.config or {}).get(CONFIG_KEY), digest) and source.enabled:
            found = source
    return found


@dataclass(frozen=True, slots=True)
class KnownSource:
    name: str
    enabled: bool
    token_sha256: str | None


class TokenIndex:
    """What the HTTP intake asks per request, answered from memory and reloaded from the database every
    `ttl` seconds (so a new, rotated or revoked token takes effect within `ttl` without a query per request).
    """

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._sources: dict[str, KnownSource] = {}

    def _current(self) -> dict[str, KnownSource]:
        now = time.monotonic()
        if now - self._loaded_at < self.ttl:
            return self._sources
        with self._lock:
            if now - self._loaded_at >= self.ttl:
                with session_scope(self.engine) as session:
                    self._sources = {
                        s.name: KnownSource(s.name, s.enabled, (s.config or {}).get(CONFIG_KEY))
                        for s in session.scalars(select(Source))
                    }
                self._loaded_at = time.monotonic()
        return self._sources

    def refresh(self) -> None:
        self._loaded_at = -1e18

    def source(self, name: str) -> KnownSource | None:
        return self._current().get(name)

    def authenticate(self, token: str) -> KnownSource | None:
        """The enabled source holding this token, or None (constant-time comparison against every source)."""
        if not token:
            return None
        digest = token_hash(token)
        found = None
        for known in self._current().values():
            if _matches(known.token_sha256, digest) and known.enabled:
                found = known
        return found
