"""Console pages for people and access: users and role bindings, API tokens, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.api import auth, user_admin
from onca.api.audit_log import AuditFilter, audit_json, search
from onca.api.deps import Principal, get_db, requires
from onca.api.user_admin import Refused
from onca.core.access import ROLES, bindings
from onca.store.models import User
from onca.web.render import redirect, render

router = APIRouter(include_in_schema=False)

Db = Annotated[Session, Depends(get_db)]
SignedIn = Annotated[Principal, Depends(requires(None))]
UsersReader = Annotated[Principal, Depends(requires("users:read"))]
UsersWriter = Annotated[Principal, Depends(requires("users:write"))]
AUDIT_PAGE = 50


def _users_page(request: Request, db: Session, principal: Principal, status_code: int = 200,
                **extra: Any) -> HTMLResponse:
    users = list(db.scalars(select(User).order_by(User.email)))
    return render(request, "users.html", principal, status_code=status_code, users=users, roles=list(ROLES),
                  bindings=[user_admin.binding_json(b) for b in bindings(db)],
                  require_mfa=auth.require_mfa_for_admin(db), me=principal.user_id, **extra)


def _failed(db: Session, where: str, err: Refused) -> Response:
    db.rollback()  # nothing half-done is kept, although the answer is a redirect
    return redirect(where, err.message, "error")


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, db: Db, principal: UsersReader) -> HTMLResponse:
    return _users_page(request, db, principal)


@router.post("/users", response_class=HTMLResponse)
def invite(request: Request, db: Db, principal: UsersWriter, email: Annotated[str, Form(max_length=320)],
           role: Annotated[str, Form(max_length=32)],
           display_name: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        user, link = user_admin.invite_user(request, db, principal, email, role, display_name)
    except Refused as err:
        return _failed(db, "/users", err)
    # The link is shown on this answer only (no redirect: it is never stored anywhere to show again).
    return _users_page(request, db, principal, invited={"email": user.email, **link})


@router.post("/users/{user_id}", response_class=HTMLResponse)
def change_user(request: Request, user_id: int, db: Db, principal: UsersWriter,
                action: Annotated[str, Form(max_length=32)],
                role: Annotated[str, Form(max_length=32)] = "") -> Response:
    try:
        user = user_admin.get_user_or_404(db, user_id)
        if action == "role":
            user_admin.update_user(request, db, principal, user, role=role)
            message = f"{user.email} is now {user.role}."
        elif action in ("disable", "enable"):
            user_admin.update_user(request, db, principal, user, status="disabled" if action == "disable" else "active")
            message = f"{user.email} is {user.status}."
        elif action == "mfa-reset":
            user_admin.reset_mfa(request, db, principal, user)
            message = f"The second factor of {user.email} is removed."
        elif action == "reinvite":
            link = user_admin.reinvite(request, db, principal, user)
            return _users_page(request, db, principal, invited={"email": user.email, **link})
        else:
            raise Refused(400, f"unknown action {action!r}")
    except Refused as err:
        return _failed(db, "/users", err)
    return redirect("/users", message)


@router.post("/role-bindings")
def add_binding(request: Request, db: Db, principal: UsersWriter, identity: Annotated[str, Form(max_length=128)],
                role: Annotated[str, Form(max_length=32)]) -> Response:
    try:
        binding = user_admin.add_binding(request, db, principal, identity, role)
    except Refused as err:
        return _failed(db, "/users", err)
    return redirect("/users", f"{binding.identity} now holds {binding.role}.")


@router.post("/role-bindings/{binding_id}/delete")
def remove_binding(request: Request, binding_id: int, db: Db, principal: UsersWriter) -> Response:
    try:
        user_admin.remove_binding(request, db, principal, binding_id)
    except Refused as err:
        return _failed(db, "/users", err)
    return redirect("/users", "The role binding is removed.")


@router.post("/settings/auth")
def auth_settings(request: Request, db: Db, principal: UsersWriter,
                  require_mfa_for_admin: Annotated[str, Form()] = "") -> Response:
    required = require_mfa_for_admin == "on"
    user_admin.set_mfa_policy(request, db, principal, required)
    return redirect("/users", "Administrators must now use two-factor authentication." if required
                    else "Two-factor authentication is optional for administrators.")


def _tokens_page(request: Request, db: Session, principal: Principal, everyone: bool, status_code: int = 200,
                 **extra: Any) -> HTMLResponse:
    listed = [user_admin.token_json(token, owner) for token, owner in
              user_admin.visible_tokens(db, principal, everyone)]
    grantable = [role for role, perms in ROLES.items() if perms <= principal.permissions]
    return render(request, "tokens.html", principal, status_code=status_code, tokens=listed, roles=grantable,
                  everyone=everyone and principal.can("users:read"), max_days=user_admin.MAX_TOKEN_DAYS, **extra)


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, db: Db, principal: SignedIn, everyone: Annotated[bool, Query(alias="all")] = False
                ) -> HTMLResponse:
    return _tokens_page(request, db, principal, everyone)


@router.post("/tokens", response_class=HTMLResponse)
def create_token(request: Request, db: Db, principal: SignedIn, name: Annotated[str, Form(max_length=200)],
                 role: Annotated[str, Form(max_length=32)] = "",
                 expires_in_days: Annotated[str, Form(max_length=4)] = "") -> Response:
    try:
        days = int(expires_in_days) if expires_in_days.strip() else None
    except ValueError:
        return redirect("/tokens", "The expiry must be a number of days.", "error")
    try:
        token, secret = user_admin.create_token(request, db, principal, name, role or None, days)
    except Refused as err:
        return _failed(db, "/tokens", err)
    return _tokens_page(request, db, principal, False, created={"name": token.name, "role": token.role,
                                                                "secret": secret})


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, db: Db, principal: SignedIn) -> Response:
    try:
        token = user_admin.revoke_token(request, db, principal, token_id)
    except Refused as err:
        return _failed(db, "/tokens", err)
    return redirect("/tokens", f"The token {token.name} is revoked.")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, db: Db, principal: UsersReader,
               actor: Annotated[str, Query(max_length=320)] = "", action: Annotated[str, Query(max_length=128)] = "",
               outcome: Annotated[str, Query(pattern="^(|success|failure|denied)$")] = "",
               since: datetime | None = None, page: Annotated[int, Query(ge=1)] = 1) -> HTMLResponse:
    rows, total = search(db, AuditFilter(actor=actor, action=action, outcome=outcome, since=since), page, AUDIT_PAGE)
    query = urlencode({k: v for k, v in {"actor": actor, "action": action, "outcome": outcome,
                                         "since": since.isoformat() if since else ""}.items() if v})
    return render(request, "audit.html", principal, records=[audit_json(row) for row in rows], total=total,
                  page=page, has_next=page * AUDIT_PAGE < total, base_query=query,
                  filters={"actor": actor, "action": action, "outcome": outcome})
