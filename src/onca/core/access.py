"""Roles and what each may do.

An identity is either a user's email (the user's own role, once the invite is redeemed and while the
account is active) or any identity bound to a role in role_bindings (the Support and Operations
identities from the deployment parameters). Support and Operations exist so that people outside the
security team can keep Onca running without ever seeing the data it protects: neither role holds a
permission that reads logs, alerts, detection content or search results.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.store.models import RoleBinding, User

PERMISSIONS: frozenset[str] = frozenset({
    "logs:read",
    "alerts:read", "alerts:write",
    "detections:read", "detections:write",
    "search:run",
    "sources:read", "sources:write",
    "destinations:read", "destinations:write",
    "users:read", "users:write",
    "deployment:read",
    "health:read", "metrics:read", "errors:read",
    "backups:run", "migrations:run", "reprocessing:run",
})

# Permissions that reveal security data or detection logic; the operator roles must never hold one.
DATA_PERMISSIONS: frozenset[str] = frozenset({
    "logs:read", "alerts:read", "alerts:write", "detections:read", "detections:write", "search:run",
})

_OPERATING = frozenset({"health:read", "metrics:read", "deployment:read"})

ROLES: dict[str, frozenset[str]] = {
    "Admin": PERMISSIONS,
    "Analyst": frozenset({
        "logs:read", "alerts:read", "alerts:write", "detections:read", "detections:write", "search:run",
        "sources:read", "destinations:read", "health:read", "metrics:read",
    }),
    "ReadOnly": frozenset({
        "logs:read", "alerts:read", "detections:read", "search:run", "sources:read", "destinations:read",
        "health:read",
    }),
    "Support": _OPERATING | {"errors:read"},
    "Operations": _OPERATING | {"backups:run", "migrations:run", "reprocessing:run"},
}

assert not (ROLES["Support"] | ROLES["Operations"]) & DATA_PERMISSIONS, "operator roles must not see data"


class AccessDenied(PermissionError):
    """`identity` may not do `permission`; `reason` says why in words a person can act on."""

    def __init__(self, identity: str, permission: str, reason: str) -> None:
        self.identity = identity
        self.permission = permission
        self.reason = reason
        super().__init__(f"access denied: {identity or '(anonymous)'} may not {permission}: {reason}")


def _check_permission(permission: str) -> None:
    # A typo in a permission name must fail loudly, not silently deny (or worse, be granted by accident).
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r} (known: {', '.join(sorted(PERMISSIONS))})")


def normalize_identity(identity: str) -> str:
    """How identities are stored and compared: trimmed, and emails lower-cased (their case never matters)."""
    text = (identity or "").strip()
    return text.lower() if "@" in text else text


def _user(session: Session, identity: str) -> User | None:
    key = normalize_identity(identity)
    if "@" not in key:
        return None
    return session.scalars(select(User).where(User.email == key)).first()


def roles_of(session: Session, identity: str) -> set[str]:
    """Every role `identity` holds now: an active user's own role plus any role bindings."""
    if not identity or not identity.strip():
        return set()
    roles: set[str] = set()
    user = _user(session, identity)
    if user is not None and user.status == "active" and user.role in ROLES:
        roles.add(user.role)
    bound = session.scalars(select(RoleBinding.role).where(RoleBinding.identity == normalize_identity(identity)))
    roles.update(role for role in bound if role in ROLES)
    return roles


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    return frozenset(granted)


def explain(session: Session, identity: str, permission: str) -> tuple[bool, str]:
    """(allowed, reason): the decision and a sentence saying what it rests on."""
    _check_permission(permission)
    roles = roles_of(session, identity)
    if not roles:
        user = _user(session, identity) if identity else None
        if user is not None and user.status == "invited":
            return False, "the invite has not been accepted yet"
        if user is not None and user.status == "disabled":
            return False, "the account is disabled"
        return False, "no role is bound to this identity"
    holders = sorted(role for role in roles if permission in ROLES[role])
    if holders:
        return True, f"granted by role {holders[0]}"
    needed = sorted(role for role, perms in ROLES.items() if permission in perms)
    return False, f"role {', '.join(sorted(roles))} does not include it (needs one of: {', '.join(needed)})"


def authorize(session: Session, identity: str, permission: str) -> bool:
    """Whether `identity` (a user email or a role-bound identity) may do `permission`."""
    return explain(session, identity, permission)[0]


def require(session: Session, identity: str, permission: str) -> None:
    """Raise AccessDenied unless `identity` may do `permission`."""
    allowed, reason = explain(session, identity, permission)
    if not allowed:
        raise AccessDenied(identity, permission, reason)


def bindings(session: Session, *, role: str | None = None, source: str | None = None) -> list[RoleBinding]:
    query = select(RoleBinding).order_by(RoleBinding.id)
    if role is not None:
        query = query.where(RoleBinding.role == role)
    if source is not None:
        query = query.where(RoleBinding.source == source)
    return list(session.scalars(query))


def bind_role(session: Session, identity: str, role: str, source: str = "") -> bool:
    """Grant `role` to `identity`; False when that binding already existed (it is left as it is)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    key = normalize_identity(identity)
    if not key:
        raise ValueError("an identity is required")
    existing = session.scalars(select(RoleBinding).where(RoleBinding.identity == key, RoleBinding.role == role))
    if existing.first() is not None:
        return False
    session.add(RoleBinding(identity=key, role=role, source=source))
    session.flush()
    return True


def unbind_role(session: Session, identity: str, role: str, source: str | None = None) -> bool:
    """Revoke `role` from `identity` (only a binding made by `source`, when given); False when none was there."""
    query = select(RoleBinding).where(RoleBinding.identity == normalize_identity(identity), RoleBinding.role == role)
    if source is not None:
        query = query.where(RoleBinding.source == source)
    found = list(session.scalars(query))
    for binding in found:
        session.delete(binding)
    session.flush()
    return bool(found)
