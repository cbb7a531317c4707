"""What every route depends on: the metadata session, who is asking (Principal), permission checks, auditing.

Routes declare `principal: Principal = Depends(requires("alerts:read"))` (or `requires(None)` for any
signed-in identity) and `db: Session = Depends(get_db)`. A browser session counts for unsafe methods
only with its CSRF token (header X-CSRF-Token or form field csrf_token); a Bearer API token needs none,
as browsers never attach one by themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from onca.api import sessions, tokens
from onca.api.security import DB_SCOPE_KEY, defer_write
from onca.core import audit
from onca.core.access import PERMISSIONS, ROLES, permissions_of, roles_of

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
OPERATOR_ROLES = frozenset({"Support", "Operations"})


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. `identity` is the user's email (for a token: its owner's)."""

    identity: str
    kind: str  # "session" | "token"
    roles: frozenset[str]
    permissions: frozenset[str]
    csrf_token: str | None
    user_id: int | None = None
    display_name: str = ""
    token_id: int | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions


class LoginRequired(Exception):
    """No usable credentials: 401 for the API, a redirect to `to` (the login page by default) for pages."""

    def __init__(self, reason: str, to: str = "/login") -> None:
        super().__init__(reason)
        self.reason = reason
        self.to = to


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def get_db(request: Request) -> Iterator[Session]:
    """The request's metadata session: committed when the response is below 400, else rolled back."""
    holder = request.scope.get(DB_SCOPE_KEY)
    if holder is None:
        raise RuntimeError("the app lacks its DbSessionPerRequest middleware (use onca.api.app.create_app)")
    if holder["session"] is None:
        holder["session"] = request.app.state.sessions()
    yield holder["session"]


def login_url(request: Request, to: str = "/login") -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{to}?next={quote(target, safe='')}" if request.method == "GET" else to


def principal_of(request: Request, db: Session) -> Principal | None:
    """The caller, from a Bearer token or the session cookie; None without credentials.

    A presented token that is not valid is an error (401), never a silent fall-back to the cookie.
    A session still waiting for its second factor raises LoginRequired pointing at that step.
    """
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, raw = authorization.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise HTTPException(401, "the Authorization header must be 'Bearer <API token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        bearer = tokens.lookup(db, raw.strip())
        if bearer is None:
            raise HTTPException(401, "the API token is not valid (unknown, revoked or expired)",
                                headers={"WWW-Authenticate": "Bearer"})
        found = Principal(bearer.owner.email, "token", bearer.roles, bearer.permissions, None,
                          bearer.owner.id, bearer.owner.display_name, bearer.token.id)
    else:
        current = sessions.lookup(db, request.cookies.get(sessions.COOKIE))
        if current is None:
            return None
        if current.row.stage == "mfa":
            raise LoginRequired("enter the code from your authenticator app", "/login/mfa")
        if current.row.stage == "enrol":
            raise LoginRequired("administrators must set up two-factor authentication first", "/account/mfa")
        roles = frozenset(roles_of(db, current.user.email))
        found = Principal(current.user.email, "session", roles, permissions_of(roles), current.row.csrf_token,
                          current.user.id, current.user.display_name)
    request.state.principal = found
    return found


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a request carries (header, else form field); read before the route runs."""
    header = request.headers.get(CSRF_HEADER)
    if header or request.method not in UNSAFE_METHODS:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _denied(request: Request, principal: Principal, permission: str, reason: str) -> HTTPException:
    audit_event(request, principal, audit.ACCESS_DENIED, f"{request.method} {request.url.path}",
                {"permission": permission, "reason": reason}, outcome="denied")
    return HTTPException(403, reason)


def requires(permission: str | None) -> Callable[..., Principal]:
    """A dependency returning the Principal when it holds `permission` (None: any signed-in identity)."""
    if permission is not None and permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request, db: Annotated[Session, Depends(get_db)],
                   submitted: Annotated[str | None, Depends(submitted_csrf)]) -> Principal:
        principal = principal_of(request, db)
        if principal is None:
            raise LoginRequired("sign in first: this needs a session or an API token")
        if principal.kind == "session" and request.method in UNSAFE_METHODS and submitted != principal.csrf_token:
            raise _denied(request, principal, permission or "session", "the CSRF token is missing or wrong; "
                          "reload the page and try again")
        if permission is not None and permission not in principal.permissions:
            needed = sorted(role for role, perms in ROLES.items() if permission in perms)
            raise _denied(request, principal, permission,
                          f"this needs the permission {permission} (roles: {', '.join(needed)})")
        return principal

    # The console's navigation reads this to show a page only to those who may open it.
    dependency.onca_permission = permission  # type: ignore[attr-defined]
    return dependency


def audit_event(request: Request, principal: Principal | None, action: str, target: str = "",
                details: Mapping[str, Any] | None = None, outcome: str = "success") -> None:
    """One record in Onca's audit log (files and audit_log table) for something done through the web.

    A success is written in the request's transaction, so it is kept exactly when the change is; a
    failure or denial in a transaction of its own after the request's, so it survives the rollback.
    """
    extra = dict(details or {})
    actor = principal.identity if principal else str(extra.pop("actor", ""))
    if principal is not None:
        if principal.token_id is not None:
            extra.setdefault("token_id", principal.token_id)
        operator = principal.roles & OPERATOR_ROLES
        if operator and not principal.roles - OPERATOR_ROLES:
            extra.setdefault("actor_role", sorted(operator)[0])
    home = request.app.state.ctx.home
    ip = client_ip(request)
    holder = request.scope.get(DB_SCOPE_KEY) or {}
    if outcome == "success" and holder.get("session") is not None and not holder.get("settled"):
        audit.record(home, actor, action, target, extra, outcome=outcome, source_ip=ip, session=holder["session"])
        return
    keep(request, lambda own: audit.record(home, actor, action, target, extra, outcome=outcome, source_ip=ip,
                                           session=own))


def keep(request: Request, write: Callable[[Session], object]) -> None:
    """A write that must stay even when the request's own changes are rolled back (see defer_write)."""
    defer_write(request.scope, request.app.state.sessions, write)
