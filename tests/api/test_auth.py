"""Signing in and staying safe: passwords, lockout, invites, CSRF, sessions, TOTP MFA, headers, body limits."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from onca.api import totp
from onca.api.throttle import FREE_FAILURES
from onca.core.users import create_invite, get_user
from onca.store.models import AuditLog, LoginThrottle, WebSession, utcnow

from .conftest import ADMIN_EMAIL, CSRF_INPUT, PASSWORD, db, make_user

SECRET_SHOWN = re.compile(r'<div class="secret">([A-Z2-7]+)</div>')


def audit_rows(app: FastAPI, action: str) -> list[AuditLog]:
    with db(app) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def post_login(browser: TestClient, email: str, password: str, next_url: str = "/account") -> object:
    page = browser.get("/login")
    token = CSRF_INPUT.search(page.text)
    assert token, page.text
    return browser.post("/login", data={"email": email, "password": password, "next": next_url,
                                        "csrf_token": token.group(1)}, follow_redirects=False)


def test_login_success_and_failure(app: FastAPI, anon: TestClient) -> None:
    email = make_user(app, "Analyst")
    wrong = post_login(anon, email, "not the password at all")
    assert wrong.status_code == 401 and "Wrong email or password." in wrong.text
    assert "onca_session" not in wrong.cookies
    right = post_login(anon, email, PASSWORD, next_url="/tokens")
    assert right.status_code == 303 and right.headers["location"] == "/tokens"
    cookie = right.headers["set-cookie"]
    assert "onca_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain HTTP here; the TLS server test checks Secure
    assert anon.get("/api/v1/me").json()["identity"] == email
    failures = [r for r in audit_rows(app, "user.login") if r.details["outcome"] == "failure"]
    successes = [r for r in audit_rows(app, "user.login") if r.details["outcome"] == "success"]
    assert [(r.target, r.details["reason"]) for r in failures] == [
        (email, "wrong email or password, or the account is not active")]
    assert [r.actor for r in successes] == [email]
    # An open redirect through ?next= is not possible.
    assert post_login(TestClient(app), email, PASSWORD, next_url="//evil.example/").headers["location"] == "/"


def test_repeated_failures_lock_the_account(app: FastAPI, anon: TestClient) -> None:
    email = make_user(app, "ReadOnly")
    for _ in range(FREE_FAILURES):
        assert post_login(anon, email, "wrong password number x").status_code == 401
    locked = post_login(anon, email, PASSWORD)  # even the right password is refused while locked
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    reasons = [r.details["reason"] for r in audit_rows(app, "user.login")]
    assert reasons.count("locked out after repeated failures") == 1
    with db(app) as session:
        row = session.get(LoginThrottle, f"account:{email}")
        assert row is not None and row.failures == FREE_FAILURES and row.locked_until is not None
        first_lock = row.locked_until - row.last_failure_at
        row.locked_until = utcnow() - timedelta(seconds=1)  # the lock ran out
    assert first_lock == timedelta(seconds=30)
    assert post_login(anon, email, "wrong again, doubling").status_code == 401
    with db(app) as session:
        row = session.get(LoginThrottle, f"account:{email}")
        assert row is not None and row.locked_until - row.last_failure_at == timedelta(seconds=60)
        row.locked_until = utcnow() - timedelta(seconds=1)
    assert post_login(anon, email, PASSWORD).status_code == 303
    with db(app) as session:
        assert session.get(LoginThrottle, f"account:{email}") is None  # success clears the account's count


def test_invite_link_sets_the_password_then_signs_in(app: FastAPI, anon: TestClient) -> None:
    with db(app) as session:
        admin = get_user(session, ADMIN_EMAIL)
        assert admin is not None and admin.status == "invited"  # as `onca deploy` left it
        token = create_invite(session, admin)
    page = anon.get(f"/invite?token={token}")
    assert page.status_code == 200 and ADMIN_EMAIL in page.text
    form = CSRF_INPUT.search(page.text)
    assert form
    fields = {"token": token, "csrf_token": form.group(1)}
    differ = anon.post("/invite", data={**fields, "password": PASSWORD, "confirm": PASSWORD + "x"})
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    short = anon.post("/invite", data={**fields, "password": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    done = anon.post("/invite", data={**fields, "password": PASSWORD, "confirm": PASSWORD}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    me = anon.get("/api/v1/me").json()
    assert me["identity"] == ADMIN_EMAIL and me["roles"] == ["Admin"]
    assert anon.get(f"/invite?token={token}").status_code == 400  # used up
    assert [r.target for r in audit_rows(app, "user.invite_redeemed")] == [ADMIN_EMAIL]
    # Log out (with the session's CSRF token), then the password works on the login form.
    csrf = CSRF_INPUT.search(anon.get("/account").text)
    assert csrf
    out = anon.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert anon.get("/account", follow_redirects=False).status_code == 303
    assert [r.actor for r in audit_rows(app, "user.logout")] == [ADMIN_EMAIL]
    assert post_login(anon, ADMIN_EMAIL, PASSWORD).status_code == 303


def test_csrf_is_required_for_session_changes(app: FastAPI, client, token_client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    bare = TestClient(app, cookies=dict(admin.cookies))  # same session, no X-CSRF-Token header
    refused = bare.post("/api/v1/tokens", json={"name": "ci"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    form = bare.post("/tokens", data={"name": "ci"})
    assert form.status_code == 403 and "CSRF" in form.text
    wrong = bare.post("/tokens", data={"name": "ci", "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert admin.post("/api/v1/tokens", json={"name": "ci"}).status_code == 201
    assert bare.post("/tokens", data={"name": "ci2", "csrf_token": admin.csrf_token}).status_code == 200
    assert token_client("Admin").post("/api/v1/tokens", json={"name": "from a token"}).status_code == 201
    denied = audit_rows(app, "access.denied")
    assert len(denied) == 3 and all("CSRF" in r.details["reason"] for r in denied)
    # The login form has its own (pre-session) CSRF token.
    assert TestClient(app).post("/login", data={"email": ADMIN_EMAIL, "password": PASSWORD}).status_code == 403


def test_sessions_end_when_idle_disabled_or_signed_out(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    browser = client("Analyst")
    assert browser.get("/api/v1/me").status_code == 200
    with db(app) as session:
        for row in session.scalars(select(WebSession)):
            row.last_seen_at = utcnow() - timedelta(hours=2)
    assert browser.get("/api/v1/me").status_code == 401
    assert browser.get("/account", follow_redirects=False).headers["location"] == "/login?next=%2Faccount"
    other = client("ReadOnly")
    admin = client("Admin")
    with db(app) as session:
        user = get_user(session, other.email)
        assert user is not None
        user_id = user.id
    assert admin.patch(f"/api/v1/users/{user_id}", json={"status": "disabled"}).status_code == 200
    assert other.get("/api/v1/me").status_code == 401


def enrol(browser: TestClient) -> str:
    page = browser.get("/account/mfa")
    found = SECRET_SHOWN.search(page.text)
    assert page.status_code == 200 and found, page.text
    secret = found.group(1)
    assert f"otpauth://totp/Onca:{browser.email}?secret={secret}&amp;issuer=Onca" in page.text  # type: ignore[attr-defined]
    wrong = browser.post("/account/mfa", data={"code": "000000" if totp.code_at(secret) != "000000" else "111111",
                                               "csrf_token": browser.csrf_token})  # type: ignore[attr-defined]
    assert wrong.status_code == 400 and "does not match" in wrong.text
    done = browser.post("/account/mfa", data={"code": totp.code_at(secret), "csrf_token": browser.csrf_token},  # type: ignore[attr-defined]
                        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    return secret


def test_mfa_enrolment_then_login_needs_a_code(app: FastAPI, client, anon: TestClient) -> None:  # type: ignore[no-untyped-def]
    browser = client("Analyst")
    secret = enrol(browser)
    with db(app) as session:
        user = get_user(session, browser.email)
        assert user is not None and user.mfa_secret and secret not in user.mfa_secret  # stored encrypted
    assert [r.target for r in audit_rows(app, "user.mfa_enrolled")] == [browser.email]
    step = post_login(anon, browser.email, PASSWORD, next_url="/tokens")
    assert step.status_code == 303 and step.headers["location"] == "/login/mfa?next=%2Ftokens"
    # Half signed in: nothing but the code page.
    assert anon.get("/api/v1/me").status_code == 401
    assert anon.get("/account", follow_redirects=False).headers["location"].startswith("/login/mfa")
    page = anon.get("/login/mfa")
    csrf = CSRF_INPUT.search(page.text)
    assert csrf
    reused = anon.post("/login/mfa", data={"code": totp.code_at(secret), "csrf_token": csrf.group(1)})
    assert reused.status_code == 401 and "not valid" in reused.text  # the enrolment already used this step
    later = totp.code_at(secret, time.time() + totp.STEP_SECONDS)
    done = anon.post("/login/mfa", data={"code": later, "next": "/tokens", "csrf_token": csrf.group(1)},
                     follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/tokens"
    assert anon.get("/api/v1/me").json()["identity"] == browser.email
    logins = [(r.details["outcome"], r.details.get("mfa")) for r in audit_rows(app, "user.login")
              if r.target == browser.email]
    assert logins == [("success", False), ("failure", None), ("success", True)]


def test_admins_must_enrol_when_the_setting_says_so(app: FastAPI, client, anon: TestClient) -> None:  # type: ignore[no-untyped-def]
    first = client("Admin")
    assert first.put("/api/v1/settings/auth", json={"require_mfa_for_admin": True}).json() == {
        "require_mfa_for_admin": True}
    assert [r.details["value"] for r in audit_rows(app, "setting.changed")] == [True]
    email = make_user(app, "Admin", "second-admin@example.com")
    step = post_login(anon, email, PASSWORD)
    assert step.status_code == 303 and step.headers["location"] == "/account/mfa"
    assert anon.get("/api/v1/me").status_code == 401
    assert anon.get("/users", follow_redirects=False).headers["location"].startswith("/account/mfa")
    page = anon.get("/account/mfa")
    secret = SECRET_SHOWN.search(page.text)
    csrf = CSRF_INPUT.search(page.text)
    assert secret and csrf
    done = anon.post("/account/mfa", data={"code": totp.code_at(secret.group(1)), "csrf_token": csrf.group(1)},
                     follow_redirects=False)
    assert done.status_code == 303
    assert anon.get("/api/v1/me").json()["identity"] == email
    assert client("Analyst").get("/api/v1/me").status_code == 200  # the policy is for administrators only


def test_totp_matches_rfc_6238() -> None:
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # "12345678901234567890", the RFC's SHA-1 key
    vectors = {59: "94287082", 1111111109: "07081804", 1234567890: "89005924", 2000000000: "69279037"}
    for at, code in vectors.items():
        assert totp.code_at(secret, at) == code[-totp.DIGITS:]
        assert totp.matching_step(secret, code[-totp.DIGITS:], at) == at // 30
    assert totp.matching_step(secret, "12345", 59) is None


def test_security_headers_on_every_answer(app: FastAPI, anon: TestClient, client) -> None:  # type: ignore[no-untyped-def]
    answers = [anon.get("/login"), anon.get("/api/v1/me"), anon.get("/static/onca.css"), anon.get("/nowhere"),
               client("ReadOnly").get("/users")]
    assert [a.status_code for a in answers] == [200, 401, 200, 404, 403]
    for answer in answers:
        headers = answer.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in headers  # only over TLS
    assert answers[1].json() == {"detail": "sign in first: this needs a session or an API token"}
    assert answers[0].headers["cache-control"] == "no-store"


def test_oversized_and_malformed_bodies_get_a_reason(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    big = admin.post("/api/v1/tokens", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                     headers={"content-type": "application/json"})
    assert big.status_code == 413 and "too large" in big.json()["detail"]

    def chunks():  # no Content-Length: counted while it streams in
        for _ in range(40):
            yield b"x" * 65536

    streamed = admin.post("/api/v1/tokens", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    broken = admin.post("/api/v1/tokens", content=b'{"name": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


def test_what_users_type_is_never_rendered_as_html(app: FastAPI, client) -> None:  # type: ignore[no-untyped-def]
    admin = client("Admin")
    evil = '<script>alert("x")</script>'
    created = admin.post("/api/v1/users", json={"email": "mallory@example.com", "role": "ReadOnly",
                                                "display_name": evil})
    assert created.status_code == 201
    assert admin.post("/api/v1/tokens", json={"name": evil}).status_code == 201
    assert admin.post("/api/v1/role-bindings", json={"identity": evil, "role": "Support"}).status_code == 201
    for page in ("/users", "/tokens?all=true", "/audit", f"/audit?actor={evil}"):
        text = admin.get(page).text
        assert "<script>" not in text, page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in admin.get("/users").text
    failed = TestClient(app).get("/login")
    csrf = CSRF_INPUT.search(failed.text)
    assert csrf
    answer = TestClient(app, cookies=dict(failed.cookies)).post(
        "/login", data={"email": evil, "password": "x", "csrf_token": csrf.group(1), "next": evil})
    assert answer.status_code == 401 and "<script>" not in answer.text


def test_login_page_redirects_a_signed_in_user(client) -> None:  # type: ignore[no-untyped-def]
    browser = client("ReadOnly")
    assert browser.get("/login?next=/tokens", follow_redirects=False).headers["location"] == "/tokens"


def test_a_crash_is_a_500_with_the_headers_and_no_details(app: FastAPI) -> None:
    @app.get("/api/v1/test-crash")
    def crash() -> None:
        raise RuntimeError("secret internals")

    answer = TestClient(app, raise_server_exceptions=False).get("/api/v1/test-crash")
    assert answer.status_code == 500 and "secret internals" not in answer.text
    assert answer.json() == {"detail": "internal error: the request failed on the server"}
    assert answer.headers["x-frame-options"] == "DENY"


def test_api_reference_is_served_without_external_script(anon: TestClient) -> None:
    page = anon.get("/api/docs")
    assert page.status_code == 200
    assert "/api/v1/alerts" in page.text and "PATCH" in page.text
    assert "<script" not in page.text and "cdn." not in page.text  # works offline, under the CSP
    assert anon.get("/api/openapi.json").json()["paths"]["/api/v1/alerts"]["get"]
