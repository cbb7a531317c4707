"""Signing in: the password step (rate-limited), the TOTP step, MFA enrolment and the MFA policy setting.

The page routes (onca.web.pages_auth) call these; every outcome is written to the audit log as
user.login (success or failure, target = the account, details.reason on failure).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response
from sqlalchemy.orm import Session

from onca.api import sessions, throttle, totp
from onca.api.deps import audit_event, client_ip, keep
from onca.core import audit
from onca.core.users import verify_password
from onca.deploy.components.bootstrap import load_fernet
from onca.store.models import MfaReplay, Setting, User, utcnow

REQUIRE_MFA_FOR_ADMIN = "auth.require_mfa_for_admin"
USER_LOGOUT = "user.logout"
USER_MFA_ENROLLED = "user.mfa_enrolled"
USER_MFA_RESET = "user.mfa_reset"
SETTING_CHANGED = "setting.changed"


class SignInRefused(Exception):
    """A sign-in step that failed, with the message to show and the HTTP status to answer with."""

    def __init__(self, message: str, status_code: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def require_mfa_for_admin(db: Session) -> bool:
    setting = db.get(Setting, REQUIRE_MFA_FOR_ADMIN)
    return bool(setting and setting.value)


def set_require_mfa_for_admin(db: Session, value: bool) -> bool:
    """Set the policy; True when it changed."""
    setting = db.get(Setting, REQUIRE_MFA_FOR_ADMIN)
    if setting is not None and bool(setting.value) == value:
        return False
    if setting is None:
        db.add(Setting(key=REQUIRE_MFA_FOR_ADMIN, value=value))
    else:
        setting.value = value
    db.flush()
    return True


def _fernet(request: Request) -> Fernet:
    return load_fernet(request.app.state.ctx.home)


def seal(request: Request, secret: str) -> str:
    """A TOTP secret encrypted with the deployment's keyring (the database alone cannot mint codes)."""
    return _fernet(request).encrypt(secret.encode("ascii")).decode("ascii")


def unseal(request: Request, sealed: str) -> str | None:
    try:
        return _fernet(request).decrypt(sealed.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        return None


def _refuse(request: Request, account: str, reason: str, message: str, status_code: int = 401,
            count: bool = True) -> SignInRefused:
    """Record a failed step (audit, and the throttle unless the attempt was refused by it) and return the error."""
    if count:
        keys = throttle.keys(account, client_ip(request))
        keep(request, lambda own: throttle.failed(own, *keys))
    audit_event(request, None, audit.USER_LOGIN, account, {"actor": account, "reason": reason}, outcome="failure")
    return SignInRefused(message, status_code)


def _check_lockout(request: Request, db: Session, account: str) -> None:
    until = throttle.locked_until(db, *throttle.keys(account, client_ip(request)))
    if until is not None:
        wait = max(1, int((until - utcnow()).total_seconds()))
        raise _refuse(request, account, "locked out after repeated failures",
                      f"Too many failed sign-ins. Try again in {wait} seconds.", 429, count=False)


def password_step(request: Request, db: Session, email: str, password: str) -> tuple[User, str]:
    """The user and the stage their new session starts in (full, mfa or enrol); raises SignInRefused."""
    account = (email or "").strip().lower()[:320]
    _check_lockout(request, db, account)
    user = verify_password(db, account, password)
    if user is None:
        raise _refuse(request, account, "wrong email or password, or the account is not active",
                      "Wrong email or password.")
    throttle.succeeded(db, throttle.keys(account, "")[0])
    if user.mfa_secret:
        return user, "mfa"
    if user.role == "Admin" and require_mfa_for_admin(db):
        return user, "enrol"
    return user, "full"


def mfa_step(request: Request, db: Session, user: User, code: str, at: float | None = None) -> None:
    """Accept a TOTP code for `user` once (a code already used cannot sign in again); raises SignInRefused."""
    _check_lockout(request, db, user.email)
    secret = unseal(request, user.mfa_secret or "")
    step = totp.matching_step(secret, code, at) if secret else None
    replay = db.get(MfaReplay, user.id)
    if step is None or (replay is not None and step <= replay.last_step):
        raise _refuse(request, user.email, "wrong or reused two-factor code", "That code is not valid. "
                      "Enter the current code from your authenticator app.")
    if replay is None:
        db.add(MfaReplay(user_id=user.id, last_step=step))
    else:
        replay.last_step = step
    db.flush()


def confirm_enrolment(request: Request, db: Session, current: sessions.Current, code: str) -> bool:
    """Make the session's pending secret the user's second factor when `code` matches it."""
    secret = unseal(request, current.row.pending_mfa_secret or "")
    step = totp.matching_step(secret, code) if secret else None
    if step is None:
        return False
    current.user.mfa_secret = current.row.pending_mfa_secret
    current.user.updated_at = utcnow()
    current.row.pending_mfa_secret = None
    replay = db.get(MfaReplay, current.user.id)
    if replay is None:
        db.add(MfaReplay(user_id=current.user.id, last_step=step))
    else:
        replay.last_step = step
    db.flush()
    return True


def signed_in(request: Request, user: User, stage: str, db: Session) -> str:
    """A new session (cookie value) after a successful step; audits the completed sign-in."""
    sessions.purge_expired(db)  # sign-ins are rare enough to carry the clean-up of dead sessions
    raw = sessions.create(db, user, stage=stage, source_ip=client_ip(request),
                          user_agent=request.headers.get("user-agent", ""))
    if stage == "full":
        user_login_succeeded(request, user)
    return raw


def user_login_succeeded(request: Request, user: User, mfa: bool = False) -> None:
    audit_event(request, None, audit.USER_LOGIN, user.email, {"actor": user.email, "mfa": mfa})


def set_session_cookie(request: Request, response: Response, raw: str) -> None:
    """HttpOnly, SameSite=Lax, Secure when served over TLS; no Max-Age, so it ends with the browser too."""
    response.set_cookie(sessions.COOKIE, raw, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        path="/")
