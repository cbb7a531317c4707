"""The first admin, invites (hashed, single use, expiring) and passwords."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.core import users
from onca.core.access import authorize
from onca.store.models import Invite, User


def test_first_admin_is_idempotent(session: Session) -> None:
    admin, created = users.ensure_first_admin(session, " Admin@Example.com ")
    assert created and (admin.email, admin.role, admin.status) == ("admin@example.com", "Admin", "invited")
    again, created_again = users.ensure_first_admin(session, "admin@example.com")
    assert not created_again and again.id == admin.id
    assert len(session.scalars(select(User)).all()) == 1


def test_first_admin_never_resets_an_existing_account(session: Session) -> None:
    admin, _ = users.ensure_first_admin(session, "admin@example.com")
    users.redeem_invite(session, users.create_invite(session, admin), "correct horse battery")
    again, created = users.ensure_first_admin(session, "admin@example.com")
    assert not created and again.status == "active" and again.password_hash


def test_invite_stores_only_the_hash(session: Session) -> None:
    admin, _ = users.ensure_first_admin(session, "admin@example.com")
    token = users.create_invite(session, admin)
    stored = session.scalars(select(Invite)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert len(token) >= 40 and stored.used_at is None
    assert timedelta(days=6, hours=23) < stored.expires_at - stored.created_at <= users.DEFAULT_INVITE_TTL


def test_redeem_activates_once(session: Session) -> None:
    admin, _ = users.ensure_first_admin(session, "admin@example.com")
    token = users.create_invite(session, admin)
    assert not authorize(session, "admin@example.com", "users:write")
    user = users.redeem_invite(session, token, "correct horse battery")
    assert user.status == "active" and user.password_hash.startswith("$argon2id$")
    assert authorize(session, "admin@example.com", "users:write")
    assert users.verify_password(session, "ADMIN@example.com", "correct horse battery") is not None
    assert users.verify_password(session, "admin@example.com", "wrong password!!") is None
    with pytest.raises(users.InviteError, match="already used"):
        users.redeem_invite(session, token, "another long password")
    assert users.verify_password(session, "admin@example.com", "another long password") is None


def test_expired_invite_is_refused(session: Session) -> None:
    admin, _ = users.ensure_first_admin(session, "admin@example.com")
    token = users.create_invite(session, admin, ttl=timedelta(hours=1))
    invite = session.scalars(select(Invite)).one()
    invite.expires_at = users.now() - timedelta(seconds=1)
    session.flush()
    with pytest.raises(users.InviteError, match="expired"):
        users.redeem_invite(session, token, "correct horse battery")
    assert session.get(User, admin.id).status == "invited"


def test_unknown_token_and_weak_password(session: Session) -> None:
    admin, _ = users.ensure_first_admin(session, "admin@example.com")
    token = users.create_invite(session, admin)
    with pytest.raises(users.InviteError, match="not valid"):
        users.redeem_invite(session, token + "x", "correct horse battery")
    with pytest.raises(users.UserError, match="at least 12"):
        users.redeem_invite(session, token, "short")
    # A refused password does not use the invite up.
    assert users.redeem_invite(session, token, "correct horse battery").status == "active"


def test_new_invite_supersedes_older_ones(session: Session) -> None:
    admin, _ = users.ensure_first_admin(session, "admin@example.com")
    first = users.create_invite(session, admin)
    second = users.create_invite(session, admin)
    with pytest.raises(users.InviteError, match="expired"):
        users.redeem_invite(session, first, "correct horse battery")
    assert users.pending_invite(session, admin).token_hash == users.token_hash(second)
    users.redeem_invite(session, second, "correct horse battery")
    assert users.pending_invite(session, admin) is None


def test_disabled_user_cannot_redeem(session: Session) -> None:
    user = users.create_user(session, "analyst@example.com", "Analyst")
    token = users.create_invite(session, user)
    users.set_status(session, user, "disabled")
    with pytest.raises(users.InviteError, match="disabled"):
        users.redeem_invite(session, token, "correct horse battery")
    with pytest.raises(users.UserError, match="disabled"):
        users.create_invite(session, user)


def test_create_user_checks(session: Session) -> None:
    users.create_user(session, "a@example.com", "Analyst")
    with pytest.raises(users.UserError, match="already exists"):
        users.create_user(session, "A@example.com", "ReadOnly")
    with pytest.raises(users.UserError, match="unknown role"):
        users.create_user(session, "b@example.com", "Root")
    with pytest.raises(users.UserError, match="not an email"):
        users.create_user(session, "not-an-email", "Analyst")


def test_delete_user_removes_invites(session: Session) -> None:
    user = users.create_user(session, "a@example.com", "Analyst")
    users.create_invite(session, user)
    users.delete_user(session, user)
    assert session.scalars(select(Invite)).all() == [] and users.get_user(session, "a@example.com") is None


@pytest.mark.parametrize(("address", "tls", "expected"), [
    ("onca.example.com", True, "https://onca.example.com/invite?token=T"),
    ("127.0.0.1:8000", False, "http://127.0.0.1:8000/invite?token=T"),
    ("0.0.0.0:8443", True, "https://127.0.0.1:8443/invite?token=T"),
    ("[::]:8000", False, "http://[::1]:8000/invite?token=T"),
])
def test_invite_url(address: str, tls: bool, expected: str) -> None:
    assert users.invite_url(address, tls, "T") == expected


def test_public_address_prefers_the_custom_domain() -> None:
    assert users.public_address({"WebListenAddress": "127.0.0.1:9000"}) == ("127.0.0.1:9000", False)
    assert users.public_address({"WebListenAddress": "127.0.0.1:9000", "CustomDomain": "siem.example.com",
                                 "WebCertificateFile": "c.pem", "WebCertificateKeyFile": "k.pem"}) == (
        "siem.example.com", True)
