"""User, role binding, token and auth-setting changes made through the API or the console.

Each function changes the metadata session and writes its audit records through audit_event; it
raises Refused (HTTP status + a sentence) for requests that cannot be done. API routes and pages both
call these, so the two can never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onca.api import auth, sessions, tokens
from onca.api.deps import Principal, audit_event
from onca.core import audit
from onca.core.access import ROLES, bind_role, normalize_identity
from onca.core.mail import MailError, invite_message, send_mail
from onca.core.users import (
    UserError,
    create_invite,
    create_user,
    invite_url,
    pending_invite,
    public_address,
    set_status,
)
from onca.store.models import ApiToken, RoleBinding, User, utcnow

CONSOLE_SOURCE = "console"  # role bindings made by people, as opposed to the deployment parameters
USER_ENABLED = "user.enabled"
TOKEN_REVOKED = "token.revoked"
MAX_TOKEN_DAYS = 366


class Refused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "display_name": user.display_name, "role": user.role,
            "status": user.status, "mfa_enabled": bool(user.mfa_secret),
            "created_at": user.created_at.isoformat(), "updated_at": user.updated_at.isoformat()}


def token_json(token: ApiToken, owner_email: str = "") -> dict[str, Any]:
    """A token as listed: never its secret (only the first characters, to tell tokens apart)."""
    expired = token.expires_at is not None and token.expires_at <= utcnow()
    state = "revoked" if token.revoked_at else "expired" if expired else "active"
    return {"id": token.id, "name": token.name, "role": token.role, "prefix": token.prefix, "owner": owner_email,
            "state": state, "created_at": token.created_at.isoformat(),
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
            "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None}


def binding_json(binding: RoleBinding) -> dict[str, Any]:
    return {"id": binding.id, "identity": binding.identity, "role": binding.role, "source": binding.source,
            "managed_by_deployment": binding.source != CONSOLE_SOURCE,
            "created_at": binding.created_at.isoformat()}


def get_user_or_404(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise Refused(404, f"no user with id {user_id}")
    return user


def _send_invite(request: Request, db: Session, user: User) -> dict[str, Any]:
    """A new invite link for `user` (returned once), emailed when the deployment has SMTP."""
    try:
        token = create_invite(db, user)
    except UserError as err:
        raise Refused(409, str(err)) from err
    invite = pending_invite(db, user)
    expires = invite.expires_at.isoformat(timespec="seconds") if invite else ""
    params = dict(request.app.state.ctx.params)
    address, tls = public_address(params)
    url = invite_url(address, tls, token)
    emailed = False
    if params.get("SmtpUrl"):
        subject, body = invite_message(user.email, url, expires)
        try:
            send_mail(str(params["SmtpUrl"]), str(params.get("SmtpFrom") or "onca@localhost"), user.email, subject,
                      body)
            emailed = True
        except MailError:
            emailed = False  # the link is shown to the admin, who can pass it on
    return {"invite_url": url, "expires_at": expires, "emailed": emailed}


def invite_user(request: Request, db: Session, principal: Principal, email: str, role: str,
                display_name: str = "") -> tuple[User, dict[str, Any]]:
    try:
        user = create_user(db, email, role, display_name.strip()[:200])
    except UserError as err:
        raise Refused(409 if "already exists" in str(err) else 422, str(err)) from err
    audit_event(request, principal, audit.USER_CREATED, user.email, {"role": role})
    invite = _send_invite(request, db, user)
    audit_event(request, principal, audit.USER_INVITED, user.email,
                {"expires_at": invite["expires_at"], "emailed": invite["emailed"]})
    return user, invite


def reinvite(request: Request, db: Session, principal: Principal, user: User) -> dict[str, Any]:
    if user.status != "invited":
        raise Refused(409, f"{user.email} already accepted an invite (status {user.status})")
    invite = _send_invite(request, db, user)
    audit_event(request, principal, audit.USER_INVITED, user.email,
                {"expires_at": invite["expires_at"], "emailed": invite["emailed"]})
    return invite


def _active_admins(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(User).where(User.role == "Admin", User.status == "active")) or 0


def update_user(request: Request, db: Session, principal: Principal, user: User, *, role: str | None = None,
                status: str | None = None, display_name: str | None = None) -> User:
    """Change role, status (active | disabled) and/or display name; the last active Admin stays one."""
    if role is not None and role not in ROLES:
        raise Refused(422, f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if status is not None and status not in ("active", "disabled"):
        raise Refused(422, "status must be active or disabled")
    losing_admin = user.role == "Admin" and user.status == "active" and (
        (role is not None and role != "Admin") or status == "disabled")
    if losing_admin and _active_admins(db) <= 1:
        raise Refused(409, "at least one active Admin must remain: make someone else Admin first")
    if display_name is not None and display_name.strip() != user.display_name:
        user.display_name = display_name.strip()[:200]
        user.updated_at = utcnow()
        audit_event(request, principal, "user.updated", user.email, {"display_name": user.display_name})
    if role is not None and role != user.role:
        old = user.role
        user.role = role
        user.updated_at = utcnow()
        audit_event(request, principal, audit.ROLE_REVOKED, user.email, {"role": old, "source": "user"})
        audit_event(request, principal, audit.ROLE_GRANTED, user.email, {"role": role, "source": "user"})
        sessions.end_all(db, user.id)  # its sessions carried the old role's rights
    if status == "disabled" and user.status != "disabled":
        set_status(db, user, "disabled")
        sessions.end_all(db, user.id)
        audit_event(request, principal, audit.USER_DISABLED, user.email, {})
    elif status == "active" and user.status == "disabled":
        # Only an account that had set a password is active again; otherwise it goes back to invited.
        set_status(db, user, "active" if user.password_hash else "invited")
        audit_event(request, principal, USER_ENABLED, user.email, {"status": user.status})
    db.flush()
    return user


def reset_mfa(request: Request, db: Session, principal: Principal, user: User) -> None:
    if not user.mfa_secret:
        raise Refused(409, f"{user.email} has no second factor set up")
    user.mfa_secret = None
    user.updated_at = utcnow()
    sessions.end_all(db, user.id)
    audit_event(request, principal, auth.USER_MFA_RESET, user.email, {})


def add_binding(request: Request, db: Session, principal: Principal, identity: str, role: str) -> RoleBinding:
    key = normalize_identity(identity)
    if not key or len(key) > 128:
        raise Refused(422, "an identity of 1 to 128 characters is required")
    if role not in ROLES:
        raise Refused(422, f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if not bind_role(db, key, role, CONSOLE_SOURCE):
        raise Refused(409, f"{key} already holds {role}")
    audit_event(request, principal, audit.ROLE_GRANTED, key, {"role": role, "source": CONSOLE_SOURCE})
    return db.scalars(select(RoleBinding).where(RoleBinding.identity == key, RoleBinding.role == role)).one()


def remove_binding(request: Request, db: Session, principal: Principal, binding_id: int) -> None:
    binding = db.get(RoleBinding, binding_id)
    if binding is None:
        raise Refused(404, f"no role binding with id {binding_id}")
    if binding.source != CONSOLE_SOURCE:
        raise Refused(409, f"this binding comes from the deployment parameter {binding.source}: change the "
                           "parameter and run `onca deploy` instead")
    db.delete(binding)
    db.flush()
    audit_event(request, principal, audit.ROLE_REVOKED, binding.identity, {"role": binding.role,
                                                                          "source": CONSOLE_SOURCE})


def create_token(request: Request, db: Session, principal: Principal, name: str, role: str | None,
                 expires_in_days: int | None) -> tuple[ApiToken, str]:
    owner = db.get(User, principal.user_id) if principal.user_id else None
    if owner is None:
        raise Refused(403, "only a user can own API tokens")
    chosen = role or owner.role
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise Refused(422, f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}")
    expires_at: datetime | None = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        token, secret = tokens.create(db, owner, name, chosen, principal.permissions, expires_at)
    except tokens.TokenError as err:
        raise Refused(422, str(err)) from err
    audit_event(request, principal, audit.TOKEN_CREATED, token.name,
                {"role": token.role, "token_id": token.id,
                 "expires_at": token.expires_at.isoformat() if token.expires_at else None})
    return token, secret


def visible_tokens(db: Session, principal: Principal, everyone: bool) -> list[tuple[ApiToken, str]]:
    """The principal's own tokens, or everyone's for those who may read users."""
    owner_id = None if everyone and principal.can("users:read") else principal.user_id
    owners = dict(db.execute(select(User.id, User.email)).tuples().all())
    return [(token, owners.get(token.owner_id, "")) for token in tokens.listed(db, owner_id)]


def revoke_token(request: Request, db: Session, principal: Principal, token_id: int) -> ApiToken:
    token = db.get(ApiToken, token_id)
    # Someone else's token is "not found" unless you may manage users: no probing of token ids.
    if token is None or (token.owner_id != principal.user_id and not principal.can("users:write")):
        raise Refused(404, f"no API token with id {token_id}")
    if not tokens.revoke(db, token):
        raise Refused(409, "the token was already revoked")
    audit_event(request, principal, TOKEN_REVOKED, token.name, {"token_id": token.id, "role": token.role})
    return token


def set_mfa_policy(request: Request, db: Session, principal: Principal, required: bool) -> None:
    if auth.set_require_mfa_for_admin(db, required):
        audit_event(request, principal, auth.SETTING_CHANGED, auth.REQUIRE_MFA_FOR_ADMIN, {"value": required})
