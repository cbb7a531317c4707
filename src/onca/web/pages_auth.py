"""Sign-in pages: login, the TOTP step, logout, the invite link, the account page and MFA enrolment.

Before sign-in there is no session to hold a CSRF token, so the login and invite forms use a
double-submit cookie: a random value in a SameSite cookie that the form must repeat.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.api import auth, sessions, totp
from onca.api.deps import LoginRequired, Principal, audit_event, get_db, principal_of, requires
from onca.core import audit
from onca.core.users import MIN_PASSWORD_LENGTH, InviteError, UserError, redeem_invite, token_hash
from onca.store.models import Invite, User, utcnow
from onca.web.render import redirect, render, safe_next

router = APIRouter(include_in_schema=False)

PRELOGIN_COOKIE = "onca_prelogin"
Db = Annotated[Session, Depends(get_db)]


def _prelogin_token(request: Request) -> str:
    return request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)


def _prelogin_ok(request: Request, submitted: str) -> bool:
    expected = request.cookies.get(PRELOGIN_COOKIE) or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), (submitted or "").encode())


def _with_prelogin(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(PRELOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


def _after_password(request: Request, user: User, stage: str, raw: str, target: str) -> Response:
    if stage == "mfa":
        response: Response = RedirectResponse(f"/login/mfa?next={quote(target, safe='')}", status_code=303)
    elif stage == "enrol":
        response = redirect("/account/mfa", "Administrators must set up two-factor authentication.", "warning")
    else:
        response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(request, response, raw)
    response.delete_cookie(PRELOGIN_COOKIE, path="/")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, db: Db, next: str = "/") -> Response:
    target = safe_next(next)
    try:
        if principal_of(request, db) is not None:
            return RedirectResponse(target, status_code=303)
    except (LoginRequired, HTTPException):
        pass  # a half-finished sign-in (MFA due) or a stale token: sign in afresh
    token = _prelogin_token(request)
    page = render(request, "login.html", None, csrf_token=token, next=target, email="", error=None)
    return _with_prelogin(request, page, token)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, db: Db, email: Annotated[str, Form(max_length=320)] = "",
          password: Annotated[str, Form(max_length=1024)] = "", next: Annotated[str, Form()] = "/",
          csrf_token: Annotated[str, Form()] = "") -> Response:
    target = safe_next(next)
    token = _prelogin_token(request)
    if not _prelogin_ok(request, csrf_token):
        page = render(request, "login.html", None, status_code=403, csrf_token=token, next=target, email=email,
                      error="The sign-in form expired. Please try again.")
        return _with_prelogin(request, page, token)
    try:
        user, stage = auth.password_step(request, db, email, password)
    except auth.SignInRefused as refused:
        page = render(request, "login.html", None, status_code=refused.status_code, csrf_token=token, next=target,
                      email=email, error=refused.message)
        return _with_prelogin(request, page, token)
    sessions.end(db, request.cookies.get(sessions.COOKIE))
    raw = auth.signed_in(request, user, stage, db)
    return _after_password(request, user, stage, raw, target)


def _partial(request: Request, db: Session, *stages: str) -> sessions.Current | None:
    current = sessions.lookup(db, request.cookies.get(sessions.COOKIE))
    return current if current is not None and current.row.stage in stages else None


@router.get("/login/mfa", response_class=HTMLResponse)
def mfa_page(request: Request, db: Db, next: str = "/") -> Response:
    current = _partial(request, db, "mfa")
    if current is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "login_mfa.html", None, csrf_token=current.row.csrf_token, next=safe_next(next),
                  email=current.user.email, error=None)


@router.post("/login/mfa", response_class=HTMLResponse)
def mfa(request: Request, db: Db, code: Annotated[str, Form(max_length=16)] = "",
        next: Annotated[str, Form()] = "/", csrf_token: Annotated[str, Form()] = "") -> Response:
    current = _partial(request, db, "mfa")
    if current is None:
        return redirect("/login", "Your sign-in expired. Please start again.", "warning")
    if not hmac.compare_digest(current.row.csrf_token.encode(), csrf_token.encode()):
        return render(request, "login_mfa.html", None, status_code=403, csrf_token=current.row.csrf_token,
                      next=safe_next(next), email=current.user.email, error="The form expired. Please try again.")
    try:
        auth.mfa_step(request, db, current.user, code)
    except auth.SignInRefused as refused:
        return render(request, "login_mfa.html", None, status_code=refused.status_code,
                      csrf_token=current.row.csrf_token, next=safe_next(next), email=current.user.email,
                      error=refused.message)
    user = current.user
    raw = sessions.promote(db, current)
    auth.user_login_succeeded(request, user, mfa=True)
    response = RedirectResponse(safe_next(next), status_code=303)
    auth.set_session_cookie(request, response, raw)
    return response


@router.post("/logout")
def logout(request: Request, db: Db, csrf_token: Annotated[str, Form()] = "") -> Response:
    current = sessions.lookup(db, request.cookies.get(sessions.COOKIE))
    submitted = request.headers.get("x-csrf-token") or csrf_token
    if current is not None:
        if not hmac.compare_digest(current.row.csrf_token.encode(), submitted.encode()):
            return redirect("/", "Sign-out failed: the form expired. Please try again.", "error")
        sessions.end(db, request.cookies.get(sessions.COOKIE))
        audit_event(request, None, auth.USER_LOGOUT, current.user.email, {"actor": current.user.email})
    response = redirect("/login", "You are signed out.", "info")
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


def _pending_invite(db: Session, token: str) -> tuple[Invite | None, User | None]:
    invite = db.scalars(select(Invite).where(Invite.token_hash == token_hash(token or ""))).first()
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        return None, None
    user = db.get(User, invite.user_id)
    return (invite, user) if user is not None and user.status != "disabled" else (None, None)


@router.get("/invite", response_class=HTMLResponse)
def invite_page(request: Request, db: Db, token: str = "") -> Response:
    invite, user = _pending_invite(db, token)
    prelogin = _prelogin_token(request)
    error = None if invite else "This invite link is not valid, was already used or has expired. " \
                                "Ask an administrator for a new one."
    page = render(request, "invite.html", None, status_code=200 if invite else 400, csrf_token=prelogin,
                  token=token if invite else "", valid=invite is not None, email=user.email if user else "",
                  min_length=MIN_PASSWORD_LENGTH, error=error)
    return _with_prelogin(request, page, prelogin)


@router.post("/invite", response_class=HTMLResponse)
def accept_invite(request: Request, db: Db, token: Annotated[str, Form(max_length=200)] = "",
                  password: Annotated[str, Form(max_length=1024)] = "",
                  confirm: Annotated[str, Form(max_length=1024)] = "",
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    prelogin = _prelogin_token(request)
    invite, user = _pending_invite(db, token)

    def again(message: str, status_code: int) -> Response:
        page = render(request, "invite.html", None, status_code=status_code, csrf_token=prelogin, token=token,
                      valid=invite is not None, email=user.email if user else "", min_length=MIN_PASSWORD_LENGTH,
                      error=message)
        return _with_prelogin(request, page, prelogin)

    if not _prelogin_ok(request, csrf_token):
        return again("The form expired. Please try again.", 403)
    if password != confirm:
        return again("The two passwords differ.", 400)
    try:
        user = redeem_invite(db, token, password)
    except (InviteError, UserError) as err:
        return again(str(err).capitalize() + ".", 400)
    audit_event(request, None, audit.USER_INVITE_REDEEMED, user.email, {"actor": user.email})
    stage = "enrol" if user.role == "Admin" and auth.require_mfa_for_admin(db) else "full"
    raw = auth.signed_in(request, user, stage, db)
    return _after_password(request, user, stage, raw, "/")


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, db: Db, principal: Annotated[Principal, Depends(requires(None))]) -> Response:
    user = db.get(User, principal.user_id) if principal.user_id else None
    return render(request, "account.html", principal, user=user, mfa_enabled=bool(user and user.mfa_secret),
                  mfa_required=bool(user and user.role == "Admin" and auth.require_mfa_for_admin(db)))


@router.get("/account/mfa", response_class=HTMLResponse)
def mfa_setup_page(request: Request, db: Db) -> Response:
    current = _partial(request, db, "full", "enrol")
    if current is None:
        return RedirectResponse("/login?next=%2Faccount%2Fmfa", status_code=303)
    if current.row.stage == "full":
        principal_of(request, db)  # for the navigation of a signed-in user
    secret = totp.new_secret()
    current.row.pending_mfa_secret = auth.seal(request, secret)
    return _mfa_setup(request, current, secret, None, 200)


def _mfa_setup(request: Request, current: sessions.Current, secret: str, error: str | None,
               status_code: int) -> Response:
    principal = getattr(request.state, "principal", None)
    return render(request, "mfa_setup.html", principal, status_code=status_code, csrf_token=current.row.csrf_token,
                  secret=secret, uri=totp.otpauth_uri(secret, current.user.email), error=error,
                  enrolling=current.row.stage == "enrol", already=bool(current.user.mfa_secret))


@router.post("/account/mfa", response_class=HTMLResponse)
def mfa_setup(request: Request, db: Db, code: Annotated[str, Form(max_length=16)] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
    current = _partial(request, db, "full", "enrol")
    if current is None:
        return RedirectResponse("/login", status_code=303)
    if current.row.stage == "full":
        principal_of(request, db)
    secret = auth.unseal(request, current.row.pending_mfa_secret or "")
    if secret is None:
        return redirect("/account/mfa", "Start the set-up again.", "warning")
    if not hmac.compare_digest(current.row.csrf_token.encode(), csrf_token.encode()):
        return _mfa_setup(request, current, secret, "The form expired. Please try again.", 403)
    if not auth.confirm_enrolment(request, db, current, code):
        return _mfa_setup(request, current, secret, "That code does not match. Check the clock of your phone "
                          "and enter the current code.", 400)
    user = current.user
    audit_event(request, None, auth.USER_MFA_ENROLLED, user.email, {"actor": user.email})
    response = redirect("/account", "Two-factor authentication is on.", "success")
    if current.row.stage == "enrol":
        auth.set_session_cookie(request, response, sessions.promote(db, current))
        auth.user_login_succeeded(request, user, mfa=True)
    return response
