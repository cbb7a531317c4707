"""API: the signed-in identity, users, roles and role bindings, API tokens, and the sign-in policy."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.api import auth, user_admin
from onca.api.deps import Principal, get_db, requires
from onca.api.user_admin import Refused
from onca.core.access import DATA_PERMISSIONS, ROLES, bindings
from onca.store.models import User

router = APIRouter(prefix="/api/v1", tags=["users"])

Db = Annotated[Session, Depends(get_db)]
SignedIn = Annotated[Principal, Depends(requires(None))]
UsersReader = Annotated[Principal, Depends(requires("users:read"))]
UsersWriter = Annotated[Principal, Depends(requires("users:write"))]
Role = Literal["Admin", "Analyst", "ReadOnly", "Support", "Operations"]


def _refused(err: Refused) -> HTTPException:
    return HTTPException(err.status_code, err.message)


class NewUser(BaseModel):
    email: str = Field(max_length=320)
    role: Role
    display_name: str = Field("", max_length=200)


class UserChange(BaseModel):
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    display_name: str | None = Field(None, max_length=200)


class NewBinding(BaseModel):
    identity: str = Field(min_length=1, max_length=128)
    role: Role


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role | None = None
    expires_in_days: int | None = Field(None, ge=1, le=user_admin.MAX_TOKEN_DAYS)


class AuthSettings(BaseModel):
    require_mfa_for_admin: bool


@router.get("/me")
def me(principal: SignedIn) -> dict[str, Any]:
    return {"identity": principal.identity, "kind": principal.kind, "display_name": principal.display_name,
            "roles": sorted(principal.roles), "permissions": sorted(principal.permissions),
            "token_id": principal.token_id}


@router.get("/users")
def list_users(db: Db, principal: UsersReader) -> list[dict[str, Any]]:
    return [user_admin.user_json(user) for user in db.scalars(select(User).order_by(User.email))]


@router.post("/users", status_code=201)
def invite_user(request: Request, body: NewUser, db: Db, principal: UsersWriter) -> dict[str, Any]:
    """Create an invited user; the answer holds the one-time invite link (shown once, never stored)."""
    try:
        user, invite = user_admin.invite_user(request, db, principal, body.email, body.role, body.display_name)
    except Refused as err:
        raise _refused(err) from err
    return {"user": user_admin.user_json(user), **invite}


@router.get("/users/{user_id}")
def get_user(user_id: int, db: Db, principal: UsersReader) -> dict[str, Any]:
    try:
        return user_admin.user_json(user_admin.get_user_or_404(db, user_id))
    except Refused as err:
        raise _refused(err) from err


@router.patch("/users/{user_id}")
def change_user(request: Request, user_id: int, body: UserChange, db: Db, principal: UsersWriter) -> dict[str, Any]:
    try:
        user = user_admin.get_user_or_404(db, user_id)
        user_admin.update_user(request, db, principal, user, role=body.role, status=body.status,
                               display_name=body.display_name)
    except Refused as err:
        raise _refused(err) from err
    return user_admin.user_json(user)


@router.post("/users/{user_id}/invite")
def reinvite_user(request: Request, user_id: int, db: Db, principal: UsersWriter) -> dict[str, Any]:
    """A fresh invite link for a user who has not accepted yet (older links stop working)."""
    try:
        return user_admin.reinvite(request, db, principal, user_admin.get_user_or_404(db, user_id))
    except Refused as err:
        raise _refused(err) from err


@router.post("/users/{user_id}/mfa-reset")
def reset_mfa(request: Request, user_id: int, db: Db, principal: UsersWriter) -> dict[str, Any]:
    """Remove a user's second factor (a lost phone); they set it up again at their next sign-in."""
    try:
        user = user_admin.get_user_or_404(db, user_id)
        user_admin.reset_mfa(request, db, principal, user)
    except Refused as err:
        raise _refused(err) from err
    return user_admin.user_json(user)


@router.get("/roles")
def list_roles(db: Db, principal: UsersReader) -> dict[str, Any]:
    return {"roles": {name: sorted(perms) for name, perms in ROLES.items()},
            "data_permissions": sorted(DATA_PERMISSIONS),
            "bindings": [user_admin.binding_json(binding) for binding in bindings(db)]}


@router.post("/role-bindings", status_code=201)
def add_binding(request: Request, body: NewBinding, db: Db, principal: UsersWriter) -> dict[str, Any]:
    """Bind an identity (e.g. the Support vendor's account) to a role."""
    try:
        return user_admin.binding_json(user_admin.add_binding(request, db, principal, body.identity, body.role))
    except Refused as err:
        raise _refused(err) from err


@router.delete("/role-bindings/{binding_id}", status_code=204)
def remove_binding(request: Request, binding_id: int, db: Db, principal: UsersWriter) -> None:
    try:
        user_admin.remove_binding(request, db, principal, binding_id)
    except Refused as err:
        raise _refused(err) from err


@router.get("/tokens")
def list_tokens(db: Db, principal: SignedIn,
                everyone: Annotated[bool, Query(alias="all")] = False) -> list[dict[str, Any]]:
    """Your API tokens (with all=true and users:read: everyone's). Secrets are never listed."""
    pairs = user_admin.visible_tokens(db, principal, everyone)
    return [user_admin.token_json(token, owner) for token, owner in pairs]


@router.post("/tokens", status_code=201)
def create_token(request: Request, body: NewToken, db: Db, principal: SignedIn) -> dict[str, Any]:
    """A new token acting as you, with a role no broader than your own rights. `secret` is shown only here."""
    try:
        token, secret = user_admin.create_token(request, db, principal, body.name, body.role, body.expires_in_days)
    except Refused as err:
        raise _refused(err) from err
    return {"token": user_admin.token_json(token, principal.identity), "secret": secret}


@router.delete("/tokens/{token_id}")
def revoke_token(request: Request, token_id: int, db: Db, principal: SignedIn) -> dict[str, Any]:
    try:
        token = user_admin.revoke_token(request, db, principal, token_id)
    except Refused as err:
        raise _refused(err) from err
    return user_admin.token_json(token)


@router.get("/settings/auth")
def auth_settings(db: Db, principal: UsersReader) -> dict[str, Any]:
    return {"require_mfa_for_admin": auth.require_mfa_for_admin(db)}


@router.put("/settings/auth")
def change_auth_settings(request: Request, body: AuthSettings, db: Db, principal: UsersWriter) -> dict[str, Any]:
    user_admin.set_mfa_policy(request, db, principal, body.require_mfa_for_admin)
    return {"require_mfa_for_admin": auth.require_mfa_for_admin(db)}
