"""Every role against every permission, on a real migrated metadata database."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from onca.core import access
from onca.core.users import create_user, set_status

# Written out by hand (not derived from access.ROLES) so a change to the roles has to change this too.
EXPECTED = {
    "Admin": set(access.PERMISSIONS),
    "Analyst": {"logs:read", "alerts:read", "alerts:write", "detections:read", "detections:write", "search:run",
                "sources:read", "destinations:read", "health:read", "metrics:read"},
    "ReadOnly": {"logs:read", "alerts:read", "detections:read", "search:run", "sources:read", "destinations:read",
                 "health:read"},
    "Support": {"health:read", "metrics:read", "deployment:read", "errors:read"},
    "Operations": {"health:read", "metrics:read", "deployment:read", "backups:run", "migrations:run",
                   "reprocessing:run"},
}
ALL = sorted(access.PERMISSIONS)


def test_permission_list_is_the_documented_one() -> None:
    assert set(ALL) == {
        "logs:read", "alerts:read", "alerts:write", "detections:read", "detections:write", "search:run",
        "sources:read", "sources:write", "destinations:read", "destinations:write", "users:read", "users:write",
        "deployment:read", "health:read", "metrics:read", "errors:read", "backups:run", "migrations:run",
        "reprocessing:run",
    }
    assert set(access.ROLES) == set(EXPECTED)


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("permission", ALL)
def test_user_role_matrix(session: Session, role: str, permission: str) -> None:
    user = create_user(session, f"{role.lower()}@example.com", role)
    set_status(session, user, "active")
    assert access.authorize(session, user.email, permission) is (permission in EXPECTED[role])


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("permission", ALL)
def test_bound_identity_matrix(session: Session, role: str, permission: str) -> None:
    access.bind_role(session, "team-x", role, "test")
    assert access.authorize(session, "team-x", permission) is (permission in EXPECTED[role])


@pytest.mark.parametrize("role", ["Support", "Operations"])
@pytest.mark.parametrize("permission", ["logs:read", "alerts:read", "alerts:write", "detections:read",
                                        "detections:write", "search:run"])
def test_operator_roles_never_see_data(session: Session, role: str, permission: str) -> None:
    access.bind_role(session, "vendor-support", role, "parameter:SupportRoleIdentityAccountId")
    with pytest.raises(access.AccessDenied) as caught:
        access.require(session, "vendor-support", permission)
    err = caught.value
    assert (err.identity, err.permission) == ("vendor-support", permission)
    assert f"vendor-support may not {permission}" in str(err)
    assert f"role {role} does not include it" in str(err)


def test_require_passes_and_explains(session: Session) -> None:
    access.bind_role(session, "vendor-support", "Support", "test")
    access.require(session, "vendor-support", "health:read")
    assert access.explain(session, "vendor-support", "errors:read") == (True, "granted by role Support")


def test_roles_combine_user_role_and_bindings(session: Session) -> None:
    user = create_user(session, "Ops.Person@Example.com", "ReadOnly")
    set_status(session, user, "active")
    access.bind_role(session, "OPS.person@example.com", "Operations", "test")  # emails compare case-insensitively
    assert access.roles_of(session, "ops.person@example.com") == {"ReadOnly", "Operations"}
    assert access.authorize(session, "ops.person@example.com", "backups:run")
    assert access.authorize(session, "ops.person@example.com", "logs:read")
    assert not access.authorize(session, "ops.person@example.com", "users:write")


def test_invited_disabled_and_unknown_identities_are_refused(session: Session) -> None:
    invited = create_user(session, "new@example.com", "Admin")
    disabled = create_user(session, "gone@example.com", "Admin")
    set_status(session, disabled, "disabled")
    cases = {invited.email: "the invite has not been accepted yet", disabled.email: "the account is disabled",
             "stranger": "no role is bound to this identity", "": "no role is bound to this identity"}
    for identity, reason in cases.items():
        assert not access.authorize(session, identity, "health:read")
        with pytest.raises(access.AccessDenied, match=reason):
            access.require(session, identity, "health:read")


def test_unknown_permission_is_an_error_not_a_denial(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown permission 'logs:reed'"):
        access.authorize(session, "anyone", "logs:reed")


def test_bind_and_unbind(session: Session) -> None:
    assert access.bind_role(session, "ops", "Operations", "a")
    assert not access.bind_role(session, "ops", "Operations", "b")  # already bound: left as it is
    assert not access.unbind_role(session, "ops", "Operations", source="b")  # only the owner's binding goes
    assert access.unbind_role(session, "ops", "Operations", source="a")
    assert access.roles_of(session, "ops") == set()
    with pytest.raises(ValueError, match="unknown role"):
        access.bind_role(session, "ops", "Root", "a")
