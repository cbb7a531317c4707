"""Users and their one-time invites.

An invite is a random token shown (or emailed) once; only its sha256 is stored, so a copy of the
metadata database does not hand out accounts. Redeeming sets the password (argon2id) and activates
the user; a token works once and only until it expires, and a newer invite supersedes older ones.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.store.models import Invite, User

ROLES = ("Admin", "Analyst", "ReadOnly", "Support", "Operations")
DEFAULT_INVITE_TTL = timedelta(days=7)
# Length, not composition rules: long passphrases beat forced symbols (NIST SP 800-63B).
MIN_PASSWORD_LENGTH = 12
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()


class InviteError(ValueError):
    """An invite token that cannot be used, with the reason (unknown, expired, already used...)."""


class UserError(ValueError):
    """A user operation that cannot be done as asked."""


def now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without a zone; everything Onca stores is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalize_email(email: str) -> str:
    address = (email or "").strip().lower()
    if not _EMAIL.match(address):
        raise UserError(f"{email!r} is not an email address")
    return address


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def get_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == (email or "").strip().lower())).first()


def create_user(session: Session, email: str, role: str, display_name: str = "") -> User:
    """A new invited user (no password yet). Raises UserError if the email is taken or the role unknown."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    address = normalize_email(email)
    if get_user(session, address) is not None:
        raise UserError(f"a user {address} already exists")
    stamp = now()
    user = User(email=address, display_name=display_name or address.split("@")[0], role=role,
                status="invited", created_at=stamp, updated_at=stamp)
    session.add(user)
    session.flush()
    return user


def ensure_first_admin(session: Session, email: str) -> tuple[User, bool]:
    """The first administrator, created as an invited Admin unless a user with that email exists.

    Returns (user, created). Idempotent: running it again finds the same user and changes nothing,
    whatever state the user reached meanwhile (an existing account is never demoted or reset).
    """
    address = normalize_email(email)
    existing = get_user(session, address)
    if existing is not None:
        return existing, False
    return create_user(session, address, "Admin"), True


def create_invite(session: Session, user: User, ttl: timedelta = DEFAULT_INVITE_TTL) -> str:
    """A fresh one-time token for `user` (returned in clear once; only its sha256 is stored).

    Earlier unused invites of the user are expired, so only the newest link works.
    """
    if user.status == "disabled":
        raise UserError(f"{user.email} is disabled; enable the account before inviting it")
    if ttl <= timedelta(0):
        raise UserError("an invite must be valid for a positive time")
    stamp = now()
    for old in session.scalars(select(Invite).where(Invite.user_id == user.id, Invite.used_at.is_(None))):
        if _aware(old.expires_at) > stamp:
            old.expires_at = stamp
    token = secrets.token_urlsafe(32)
    session.add(Invite(user_id=user.id, token_hash=token_hash(token), created_at=stamp, expires_at=stamp + ttl))
    session.flush()
    return token


def pending_invite(session: Session, user: User) -> Invite | None:
    """The user's newest invite that can still be redeemed, if any."""
    stamp = now()
    invites = session.scalars(select(Invite).where(Invite.user_id == user.id, Invite.used_at.is_(None))
                              .order_by(Invite.created_at.desc(), Invite.id.desc()))
    return next((inv for inv in invites if _aware(inv.expires_at) > stamp), None)


def invite_url(address: str, tls: bool, token: str) -> str:
    """The link that redeems `token`: https when TLS is on, on the custom domain or listen address.

    A wildcard listen address (0.0.0.0, [::]) is not reachable as such, so the link names the loopback
    address instead; the operator reads it on the machine that runs Onca.
    """
    host = (address or "").strip().rstrip("/")
    for wildcard, loopback in (("0.0.0.0", "127.0.0.1"), ("[::]", "[::1]")):
        if host == wildcard or host.startswith(wildcard + ":"):
            host = loopback + host[len(wildcard):]
    scheme = "https" if tls else "http"
    return f"{scheme}://{host}/invite?token={token}"


def public_address(params: dict) -> tuple[str, bool]:
    """(host[:port], tls) where people reach the console, from the deployment parameters."""
    tls = bool(params.get("WebCertificateFile")) and bool(params.get("WebCertificateKeyFile"))
    domain = (params.get("CustomDomain") or "").strip()
    return (domain or (params.get("WebListenAddress") or "127.0.0.1:8000")), tls


def redeem_invite(session: Session, token: str, password: str) -> User:
    """Set the password of the invite's user and activate the account; the token is used up.

    Raises InviteError (unknown, expired, already used, account disabled) or UserError (weak password).
    """
    invite = session.scalars(select(Invite).where(Invite.token_hash == token_hash(token or ""))).first()
    if invite is None:
        raise InviteError("this invite link is not valid; ask an administrator for a new one")
    if invite.used_at is not None:
        raise InviteError("this invite link was already used; ask an administrator for a new one")
    stamp = now()
    if _aware(invite.expires_at) <= stamp:
        raise InviteError("this invite link has expired; ask an administrator for a new one")
    user = session.get(User, invite.user_id)
    if user is None or user.status == "disabled":
        raise InviteError("the account of this invite is disabled or gone")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    invite.used_at = stamp
    user.password_hash = _hasher.hash(password)
    user.status = "active"
    user.updated_at = stamp
    session.flush()
    return user


def verify_password(session: Session, email: str, password: str) -> User | None:
    """The active user when the password is right, else None (no hint which part was wrong)."""
    user = get_user(session, email)
    if user is None or user.status != "active" or not user.password_hash:
        # Hash anyway so that unknown accounts take as long as known ones.
        _hasher.hash(password or "")
        return None
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        user.updated_at = now()
    return user


def set_status(session: Session, user: User, status: str) -> None:
    if status not in ("invited", "active", "disabled"):
        raise UserError(f"unknown status {status!r}")
    user.status = status
    user.updated_at = now()
    session.flush()


def delete_user(session: Session, user: User) -> None:
    """Remove a user and their invites."""
    for invite in session.scalars(select(Invite).where(Invite.user_id == user.id)):
        session.delete(invite)
    session.flush()
    session.delete(user)
    session.flush()
