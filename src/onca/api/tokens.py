"""API tokens: a random secret shown once, kept as its sha256, acting as its owner within a role.

A token's role may not reach beyond its creator's permissions, and it keeps no power its owner lost:
at each use the effective permissions are the token role's intersected with the owner's current ones,
so disabling or demoting a user disarms their tokens at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.core.access import ROLES, permissions_of, roles_of
from onca.core.users import token_hash
from onca.store.models import ApiToken, User, utcnow

PREFIX = "onca_"
MAX_NAME = 200


class TokenError(ValueError):
    """A token that cannot be created as asked (with the reason)."""


@dataclass(frozen=True)
class Bearer:
    """A valid token, its owner and what it may do now."""

    token: ApiToken
    owner: User
    roles: frozenset[str]
    permissions: frozenset[str]


def create(db: Session, owner: User, name: str, role: str, owner_permissions: frozenset[str],
           expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token; returns (row, secret). The secret exists only in this return value."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise TokenError(f"a token needs a name of 1 to {MAX_NAME} characters")
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if not ROLES[role] <= owner_permissions:
        raise TokenError(f"a token cannot have more rights than its creator: role {role} holds "
                         f"{', '.join(sorted(ROLES[role] - owner_permissions))}, which you do not")
    if expires_at is not None and expires_at <= utcnow():
        raise TokenError("the expiry must be in the future")
    raw = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, owner_id=owner.id, role=role, token_hash=token_hash(raw), prefix=raw[:len(PREFIX) + 4],
                   created_at=utcnow(), expires_at=expires_at)
    db.add(row)
    db.flush()
    return row, raw


def lookup(db: Session, raw: str) -> Bearer | None:
    """The live token for a presented secret, else None (unknown, revoked, expired, owner not active)."""
    if not raw or len(raw) > 200:
        return None
    row = db.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(raw))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    owner = db.get(User, row.owner_id)
    if owner is None or owner.status != "active":
        return None
    owner_roles = roles_of(db, owner.email)
    permissions = ROLES[row.role] & permissions_of(owner_roles)
    if not permissions:
        return None
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return Bearer(row, owner, frozenset({row.role}), permissions)


def revoke(db: Session, token: ApiToken) -> bool:
    """False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    db.flush()
    return True


def listed(db: Session, owner_id: int | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if owner_id is not None:
        query = query.where(ApiToken.owner_id == owner_id)
    return list(db.scalars(query))
