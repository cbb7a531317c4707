"""Users, role bindings, API tokens and the audit log through the API and the console pages."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from onca.api.app import create_app
from onca.core.users import get_user
from onca.store.models import AuditLog

from .conftest import CSRF_INPUT, PASSWORD, db, deploy_home, login, make_user

INVITE_LINK = re.compile(r"http://[^/\s<]+/invite\?token=[A-Za-z0-9_-]+")


def audit_actions(app: FastAPI, *prefixes: str) -> list[tuple[str, str, str]]:
    with db(app) as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id))
        return [(r.actor, r.action, r.target) for r in rows if r.action.startswith(prefixes)]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def user_id(app: FastAPI, email: str) -> int:
    with db(app) as session:
        user = get_user(session, email)
        assert user is not None
        return user.id


def test_token_is_shown_once_and_works_as_bearer(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    analyst = client("Analyst")
    created = analyst.post("/api/v1/tokens", json={"name": "ci", "role": "ReadOnly", "expires_in_days": 30})
    assert created.status_code == 201
    secret = created.json()["secret"]
    token = created.json()["token"]
    assert secret.startswith("onca_") and token["prefix"] == secret[:9] and token["role"] == "ReadOnly"
    listed = analyst.get("/api/v1/tokens")
    assert [t["name"] for t in listed.json()] == ["ci"] and secret not in listed.text
    assert secret not in analyst.get("/tokens").text
    bearer = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    me = bearer.get("/api/v1/me").json()
    assert me["kind"] == "token" and me["identity"] == analyst.email and me["roles"] == ["ReadOnly"]
    assert "alerts:write" not in me["permissions"] and "alerts:read" in me["permissions"]
    assert bearer.patch("/api/v1/alerts/" + "0" * 32, json={"status": "CLOSED"}).status_code == 403
    with db(app) as session:  # only a hash is stored
        assert secret not in str(session.execute(select(AuditLog.details)).all())
    assert analyst.delete(f"/api/v1/tokens/{token['id']}").json()["state"] == "revoked"
    assert bearer.get("/api/v1/me").status_code == 401
    assert analyst.delete(f"/api/v1/tokens/{token['id']}").status_code == 409
    assert TestClient(app, headers={"Authorization": "Bearer onca_made_up"}).get("/api/v1/me").status_code == 401
    assert TestClient(app, headers={"Authorization": "Basic x"}).get("/api/v1/me").status_code == 401
    assert [(a, t) for a, _, t in audit_actions(app, "token.")] == [(analyst.email, "ci"), (analyst.email, "ci")]


def test_a_token_cannot_exceed_its_creator(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    analyst = client("Analyst")
    for role in ("Admin", "Support", "Operations"):  # each holds something an Analyst does not
        refused = analyst.post("/api/v1/tokens", json={"name": "up", "role": role})
        assert refused.status_code == 422 and "more rights than its creator" in refused.json()["detail"]
    secret = analyst.post("/api/v1/tokens", json={"name": "same"}).json()["secret"]  # default: the creator's role
    bearer = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    assert bearer.get("/api/v1/me").json()["roles"] == ["Analyst"]
    assert bearer.post("/api/v1/tokens", json={"name": "up", "role": "Admin"}).status_code == 422
    # Demoting the owner takes the rights away from the token too.
    admin = client("Admin")
    assert admin.patch(f"/api/v1/users/{user_id(app, analyst.email)}", json={"role": "ReadOnly"}).status_code == 200
    assert "alerts:write" not in bearer.get("/api/v1/me").json()["permissions"]
    assert admin.patch(f"/api/v1/users/{user_id(app, analyst.email)}", json={"status": "disabled"}).status_code == 200
    assert bearer.get("/api/v1/me").status_code == 401


def test_support_and_operations_never_reach_data(app: FastAPI, client, token_client) -> None:  # type: ignore[no-untyped-def]
    data_requests = [("GET", "/api/v1/alerts", None), ("GET", "/api/v1/alerts/" + "0" * 32, None),
                     ("POST", "/api/v1/search/sql", {"sql": "SELECT 1"}), ("GET", "/api/v1/detections", None),
                     ("GET", "/api/v1/detections/Onca.AWS.AccessKeyCreatedForOtherUser", None),
                     ("GET", "/api/v1/audit", None), ("GET", "/api/v1/users", None)]
    for role in ("Support", "Operations"):
        for test_client in (client(role), token_client(role)):
            for method, url, body in data_requests:
                answer = test_client.request(method, url, json=body)
                assert answer.status_code == 403, (role, method, url, answer.status_code)
            assert test_client.get("/api/v1/me").json()["roles"] == [role]
        browser = client(role, f"{role.lower()}-pages@example.com")
        for page in ("/alerts", "/search", "/detections", "/users", "/audit"):
            assert browser.get(page).status_code == 403, (role, page)
    with db(app) as session:
        denied = list(session.scalars(select(AuditLog).where(AuditLog.action == "access.denied")))
    assert len(denied) == 2 * (2 * len(data_requests) + 5)
    assert {r.details.get("actor_role") for r in denied} == {"Support", "Operations"}


def test_admin_invites_changes_and_disables_users(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    invited = admin.post("/api/v1/users", json={"email": "New.Person@Example.com", "role": "Analyst",
                                                "display_name": "New Person"})
    assert invited.status_code == 201
    body = invited.json()
    assert body["user"]["email"] == "new.person@example.com" and body["user"]["status"] == "invited"
    assert INVITE_LINK.fullmatch(body["invite_url"]) and body["emailed"] is False
    assert admin.post("/api/v1/users", json={"email": "new.person@example.com", "role": "Analyst"}).status_code == 409
    assert admin.post("/api/v1/users", json={"email": "nope", "role": "Analyst"}).status_code == 422
    assert admin.post("/api/v1/users", json={"email": "x@example.com", "role": "God"}).status_code == 422
    new_id = body["user"]["id"]
    again = admin.post(f"/api/v1/users/{new_id}/invite").json()["invite_url"]
    # The first link no longer works; the second sets the password.
    person = TestClient(app)
    assert person.get(path_of(body["invite_url"])).status_code == 400
    page = person.get(path_of(again))
    csrf = CSRF_INPUT.search(page.text)
    assert page.status_code == 200 and csrf
    token = again.split("token=")[1]
    assert person.post("/invite", data={"token": token, "password": PASSWORD, "confirm": PASSWORD,
                                        "csrf_token": csrf.group(1)}).status_code == 200
    assert person.get("/api/v1/me").json()["roles"] == ["Analyst"]
    assert admin.post(f"/api/v1/users/{new_id}/invite").status_code == 409  # already accepted

    assert admin.patch(f"/api/v1/users/{new_id}", json={"role": "Admin"}).json()["role"] == "Admin"
    assert person.get("/api/v1/me").status_code == 401  # a role change signs the user out
    assert admin.patch(f"/api/v1/users/{new_id}", json={"status": "disabled"}).json()["status"] == "disabled"
    assert admin.patch(f"/api/v1/users/{new_id}", json={"status": "active"}).json()["status"] == "active"
    assert admin.patch(f"/api/v1/users/{new_id}", json={"role": "Boss"}).status_code == 422
    assert admin.patch("/api/v1/users/999999", json={"role": "Admin"}).status_code == 404
    users = {u["email"]: u for u in admin.get("/api/v1/users").json()}
    assert users["new.person@example.com"]["role"] == "Admin" and "password_hash" not in users[admin.email]
    actions = [(action, target) for _, action, target in audit_actions(app, "user.", "role.")
               if target == "new.person@example.com"]
    assert actions == [("user.created", "new.person@example.com"), ("user.invited", "new.person@example.com"),
                       ("user.invited", "new.person@example.com"), ("user.invite_redeemed", "new.person@example.com"),
                       ("user.login", "new.person@example.com"), ("role.revoked", "new.person@example.com"),
                       ("role.granted", "new.person@example.com"), ("user.disabled", "new.person@example.com"),
                       ("user.enabled", "new.person@example.com")]


def test_the_last_admin_stays(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    me = user_id(app, admin.email)
    for change in ({"role": "Analyst"}, {"status": "disabled"}):
        refused = admin.patch(f"/api/v1/users/{me}", json=change)
        assert refused.status_code == 409 and "at least one active Admin" in refused.json()["detail"]
    make_user(app, "Admin", "second@example.com")
    assert admin.patch(f"/api/v1/users/{me}", json={"role": "Analyst"}).status_code == 200


def test_role_bindings(tmp_path: Path) -> None:
    home = deploy_home(tmp_path / "bound", SupportRoleIdentityAccountId="support@vendor.example")
    app = create_app(home)
    try:
        admin = TestClient(app)
        login(admin, make_user(app, "Admin"))
        roles = admin.get("/api/v1/roles").json()
        assert set(roles["roles"]) == {"Admin", "Analyst", "ReadOnly", "Support", "Operations"}
        assert not set(roles["roles"]["Support"]) & set(roles["data_permissions"])
        (deployed,) = roles["bindings"]
        assert deployed["identity"] == "support@vendor.example" and deployed["managed_by_deployment"]
        refused = admin.delete(f"/api/v1/role-bindings/{deployed['id']}")
        assert refused.status_code == 409 and "onca deploy" in refused.json()["detail"]
        added = admin.post("/api/v1/role-bindings", json={"identity": "Ops@Vendor.Example", "role": "Operations"})
        assert added.status_code == 201 and added.json()["identity"] == "ops@vendor.example"
        assert admin.post("/api/v1/role-bindings", json={"identity": "ops@vendor.example",
                                                         "role": "Operations"}).status_code == 409
        assert admin.delete(f"/api/v1/role-bindings/{added.json()['id']}").status_code == 204
        assert [(a, t) for _, a, t in audit_actions(app, "role.") if t == "ops@vendor.example"] == [
            ("role.granted", "ops@vendor.example"), ("role.revoked", "ops@vendor.example")]
    finally:
        app.state.engine.dispose()


def test_audit_log_filters_and_pages(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    for number in range(7):
        admin.post("/api/v1/tokens", json={"name": f"t{number}"})
    first = admin.get("/api/v1/audit", params={"action": "token.created", "limit": 5}).json()
    assert first["total"] == 7 and first["has_next"] and [i["target"] for i in first["items"]] == [
        "t6", "t5", "t4", "t3", "t2"]
    second = admin.get("/api/v1/audit", params={"action": "token.created", "limit": 5, "page": 2}).json()
    assert [i["target"] for i in second["items"]] == ["t1", "t0"] and not second["has_next"]
    assert second["items"][0]["actor"] == admin.email and second["items"][0]["source_ip"] == "testclient"
    logins = admin.get("/api/v1/audit", params={"action": "user.", "actor": admin.email}).json()
    assert {i["action"] for i in logins["items"]} == {"user.login"}
    assert admin.get("/api/v1/audit", params={"outcome": "denied"}).json()["total"] == 0
    assert admin.get("/api/v1/audit", params={"outcome": "maybe"}).status_code == 422
    page = admin.get("/audit", params={"action": "token.created"})
    assert page.status_code == 200 and page.text.count('>token.created</td>') == 7


def test_console_pages_for_users_and_tokens(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    page = admin.get("/users")
    assert page.status_code == 200 and admin.email in page.text and 'href="/users"' in page.text
    invited = admin.post("/users", data={"email": "page@example.com", "role": "ReadOnly",
                                         "csrf_token": admin.csrf_token})
    assert invited.status_code == 200 and INVITE_LINK.search(invited.text)
    assert INVITE_LINK.search(admin.get("/users").text) is None  # shown once
    new_id = user_id(app, "page@example.com")
    changed = admin.post(f"/users/{new_id}", data={"action": "role", "role": "Analyst",
                                                    "csrf_token": admin.csrf_token})
    assert changed.status_code == 200 and "page@example.com is now Analyst." in changed.text
    refused = admin.post(f"/users/{user_id(app, admin.email)}", data={"action": "disable",
                                                                       "csrf_token": admin.csrf_token})
    assert "at least one active Admin must remain" in refused.text
    created = admin.post("/tokens", data={"name": "deploy bot", "role": "ReadOnly", "expires_in_days": "7",
                                          "csrf_token": admin.csrf_token})
    secret = re.search(r'<div class="secret">(onca_[^<]+)</div>', created.text)
    assert created.status_code == 200 and secret
    assert secret.group(1) not in admin.get("/tokens").text
    token_id = admin.get("/api/v1/tokens").json()[0]["id"]
    revoked = admin.post(f"/tokens/{token_id}/revoke", data={"csrf_token": admin.csrf_token})
    assert "is revoked" in revoked.text
    policy = admin.post("/settings/auth", data={"require_mfa_for_admin": "on", "csrf_token": admin.csrf_token})
    assert "must now use two-factor" in policy.text
    # The navigation only offers what the role may open.
    support = client("Support").get("/account").text
    assert 'href="/users"' not in support and 'href="/audit"' not in support and 'href="/alerts"' not in support
