"""The access design as a table, checked against the running app: every route x role x way of signing in.

EXPECTED maps (METHOD, route path) to what it needs: a permission from core.access.PERMISSIONS,
SIGNED_IN (any signed-in identity) or PUBLIC (no sign-in; the route checks whatever it needs itself).
For each role the route must be allowed exactly when the role holds the permission (a refusal is a 403
with an access.denied audit record); anonymous requests get 401 (API) or a redirect to /login (pages).
A route of the app missing from the table fails the test, so a new route cannot skip the review.

Adding a route: one line in EXPECTED; if its path has parameters or it needs a body, one line in
EXAMPLES giving a concrete request ({"url": ..., "json": ...} or {"url": ..., "data": ...}).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from onca.api.routing import flat_routes
from onca.core.access import ROLES
from onca.store.models import AuditLog

from .conftest import bearer_token, db, make_user, session_cookie

PUBLIC = "public"
SIGNED_IN = "signed-in"
DETECTION = "Onca.AWS.AccessKeyCreatedForOtherUser"  # one of Onca's own detections

EXPECTED: dict[tuple[str, str], str] = {
    # alerts and the overview (webalerts); the overview's alert panels show only with alerts:read
    ("GET", "/"): "health:read",
    ("GET", "/api/v1/alerts"): "alerts:read",
    ("GET", "/api/v1/alerts/{alert_id}"): "alerts:read",
    ("PATCH", "/api/v1/alerts/{alert_id}"): "alerts:write",
    ("POST", "/api/v1/alerts/bulk"): "alerts:write",
    ("GET", "/alerts"): "alerts:read",
    ("GET", "/alerts/{alert_id}"): "alerts:read",
    ("POST", "/alerts/{alert_id}"): "alerts:write",
    ("POST", "/alerts/bulk"): "alerts:write",
    # FastAPI's own documentation routes
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    # sign-in pages (webcore): they check the half-finished session themselves
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/mfa"): PUBLIC,
    ("POST", "/login/mfa"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/invite"): PUBLIC,
    ("POST", "/invite"): PUBLIC,
    ("GET", "/account/mfa"): PUBLIC,
    ("POST", "/account/mfa"): PUBLIC,
    ("GET", "/account"): SIGNED_IN,
    # users, roles, tokens, audit (webcore)
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/users"): "users:read",
    ("POST", "/api/v1/users"): "users:write",
    ("GET", "/api/v1/users/{user_id}"): "users:read",
    ("PATCH", "/api/v1/users/{user_id}"): "users:write",
    ("POST", "/api/v1/users/{user_id}/invite"): "users:write",
    ("POST", "/api/v1/users/{user_id}/mfa-reset"): "users:write",
    ("GET", "/api/v1/roles"): "users:read",
    ("POST", "/api/v1/role-bindings"): "users:write",
    ("DELETE", "/api/v1/role-bindings/{binding_id}"): "users:write",
    ("GET", "/api/v1/tokens"): SIGNED_IN,
    ("POST", "/api/v1/tokens"): SIGNED_IN,
    ("DELETE", "/api/v1/tokens/{token_id}"): SIGNED_IN,
    ("GET", "/api/v1/settings/auth"): "users:read",
    ("PUT", "/api/v1/settings/auth"): "users:write",
    ("GET", "/api/v1/audit"): "users:read",
    ("GET", "/users"): "users:read",
    ("POST", "/users"): "users:write",
    ("POST", "/users/{user_id}"): "users:write",
    ("POST", "/role-bindings"): "users:write",
    ("POST", "/role-bindings/{binding_id}/delete"): "users:write",
    ("POST", "/settings/auth"): "users:write",
    ("GET", "/tokens"): SIGNED_IN,
    ("POST", "/tokens"): SIGNED_IN,
    ("POST", "/tokens/{token_id}/revoke"): SIGNED_IN,
    ("GET", "/audit"): "users:read",
    # detections and search (webdetect)
    ("GET", "/api/v1/detections"): "detections:read",
    ("GET", "/api/v1/detections/{detection_id}"): "detections:read",
    ("POST", "/api/v1/detections/{detection_id}/enable"): "detections:write",
    ("POST", "/api/v1/detections/{detection_id}/disable"): "detections:write",
    ("POST", "/api/v1/detections/{detection_id}/tests/run"): "detections:read",
    ("POST", "/api/v1/detections/{detection_id}/test-event"): "detections:read",
    ("POST", "/api/v1/search/sql"): "search:run",
    ("GET", "/api/v1/search/indicators"): "search:run",
    ("GET", "/api/v1/search/tables"): "search:run",
    ("GET", "/detections"): "detections:read",
    ("GET", "/detections/{detection_id}"): "detections:read",
    ("POST", "/detections/{detection_id}/enable"): "detections:write",
    ("POST", "/detections/{detection_id}/disable"): "detections:write",
    ("POST", "/detections/{detection_id}/tests"): "detections:read",
    ("POST", "/detections/{detection_id}/event"): "detections:read",
    ("GET", "/search"): "search:run",
    ("POST", "/search"): "search:run",
    # sources, destinations, deployment (webops)
    ("GET", "/api/v1/sources"): "sources:read",
    ("POST", "/api/v1/sources"): "sources:write",
    ("GET", "/api/v1/sources/health"): "health:read",
    ("GET", "/api/v1/sources/{name}"): "sources:read",
    ("PATCH", "/api/v1/sources/{name}"): "sources:write",
    ("DELETE", "/api/v1/sources/{name}"): "sources:write",
    ("POST", "/api/v1/sources/{name}/token"): "sources:write",
    ("GET", "/api/v1/sources/{name}/quarantine"): "logs:read",
    ("GET", "/api/v1/destinations"): "destinations:read",
    ("POST", "/api/v1/destinations"): "destinations:write",
    ("GET", "/api/v1/destinations/kinds"): "destinations:read",
    ("GET", "/api/v1/destinations/{name}"): "destinations:read",
    ("PUT", "/api/v1/destinations/{name}"): "destinations:write",
    ("DELETE", "/api/v1/destinations/{name}"): "destinations:write",
    ("POST", "/api/v1/destinations/{name}/test"): "destinations:write",
    ("GET", "/api/v1/deployment/status"): "deployment:read",
    ("GET", "/api/v1/deployment/events"): "deployment:read",
    ("GET", "/api/v1/deployment/diagnose"): "deployment:read",
    ("GET", "/api/v1/deployment/upgrade-plan"): "deployment:read",
    ("GET", "/sources"): "sources:read",
    ("POST", "/sources"): "sources:write",
    ("GET", "/sources/{name}"): "sources:read",
    ("POST", "/sources/{name}/token"): "sources:write",
    ("POST", "/sources/{name}/enabled"): "sources:write",
    ("POST", "/sources/{name}/delete"): "sources:write",
    ("GET", "/destinations"): "destinations:read",
    ("GET", "/destinations/new"): "destinations:write",
    ("POST", "/destinations/new"): "destinations:write",
    ("GET", "/destinations/{name}/edit"): "destinations:write",
    ("POST", "/destinations/{name}/edit"): "destinations:write",
    ("POST", "/destinations/{name}/test"): "destinations:write",
    ("POST", "/destinations/{name}/delete"): "destinations:write",
    ("GET", "/deployment"): "deployment:read",
}

NO_ID = "999999"
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    # users, roles, tokens (webcore): NO_ID does not exist, so allowed requests answer 404
    ("POST", "/api/v1/users"): {"json": {"email": "matrix-new@example.com", "role": "ReadOnly"}},
    ("GET", "/api/v1/users/{user_id}"): {"url": f"/api/v1/users/{NO_ID}"},
    ("PATCH", "/api/v1/users/{user_id}"): {"url": f"/api/v1/users/{NO_ID}", "json": {"role": "ReadOnly"}},
    ("POST", "/api/v1/users/{user_id}/invite"): {"url": f"/api/v1/users/{NO_ID}/invite"},
    ("POST", "/api/v1/users/{user_id}/mfa-reset"): {"url": f"/api/v1/users/{NO_ID}/mfa-reset"},
    ("POST", "/api/v1/role-bindings"): {"json": {"identity": "matrix-vendor", "role": "Support"}},
    ("DELETE", "/api/v1/role-bindings/{binding_id}"): {"url": f"/api/v1/role-bindings/{NO_ID}"},
    ("POST", "/api/v1/tokens"): {"json": {"name": "matrix", "role": "Support"}},
    ("DELETE", "/api/v1/tokens/{token_id}"): {"url": f"/api/v1/tokens/{NO_ID}"},
    ("PUT", "/api/v1/settings/auth"): {"json": {"require_mfa_for_admin": False}},
    ("POST", "/users"): {"data": {"email": "matrix-page@example.com", "role": "ReadOnly"}},
    ("POST", "/users/{user_id}"): {"url": f"/users/{NO_ID}", "data": {"action": "disable"}},
    ("POST", "/role-bindings"): {"data": {"identity": "matrix-page-vendor", "role": "Support"}},
    ("POST", "/role-bindings/{binding_id}/delete"): {"url": f"/role-bindings/{NO_ID}/delete"},
    ("POST", "/settings/auth"): {"data": {}},
    ("POST", "/tokens"): {"data": {"name": "matrix", "role": "Support"}},
    ("POST", "/tokens/{token_id}/revoke"): {"url": f"/tokens/{NO_ID}/revoke"},
    # alerts (webalerts): an unknown alert id, so allowed requests answer 404
    ("GET", "/api/v1/alerts/{alert_id}"): {"url": "/api/v1/alerts/" + "0" * 32},
    ("PATCH", "/api/v1/alerts/{alert_id}"): {"url": "/api/v1/alerts/" + "0" * 32, "json": {"status": "TRIAGED"}},
    ("POST", "/api/v1/alerts/bulk"): {"json": {"ids": ["0" * 32], "status": "TRIAGED"}},
    ("GET", "/alerts/{alert_id}"): {"url": "/alerts/" + "0" * 32},
    ("POST", "/alerts/{alert_id}"): {"url": "/alerts/" + "0" * 32, "data": {"status": "TRIAGED"}},
    ("POST", "/alerts/bulk"): {"data": {"ids": ["0" * 32], "status": "TRIAGED"}},
    # detections and search (webdetect)
    ("GET", "/api/v1/detections/{detection_id}"): {"url": f"/api/v1/detections/{DETECTION}"},
    ("POST", "/api/v1/detections/{detection_id}/enable"): {"url": f"/api/v1/detections/{DETECTION}/enable"},
    ("POST", "/api/v1/detections/{detection_id}/disable"): {"url": f"/api/v1/detections/{DETECTION}/disable"},
    ("POST", "/api/v1/detections/{detection_id}/tests/run"): {"url": f"/api/v1/detections/{DETECTION}/tests/run"},
    ("POST", "/api/v1/detections/{detection_id}/test-event"): {"url": f"/api/v1/detections/{DETECTION}/test-event",
                                                               "json": {"event": {"eventName": "ListUsers"}}},
    ("POST", "/api/v1/search/sql"): {"json": {"sql": "SELECT 1 AS one"}},
    ("GET", "/api/v1/search/indicators"): {"url": "/api/v1/search/indicators?ip=198.51.100.23"},
    ("GET", "/detections/{detection_id}"): {"url": f"/detections/{DETECTION}"},
    ("POST", "/detections/{detection_id}/enable"): {"url": f"/detections/{DETECTION}/enable", "data": {}},
    ("POST", "/detections/{detection_id}/disable"): {"url": f"/detections/{DETECTION}/disable", "data": {}},
    ("POST", "/detections/{detection_id}/tests"): {"url": f"/detections/{DETECTION}/tests", "data": {}},
    ("POST", "/detections/{detection_id}/event"): {"url": f"/detections/{DETECTION}/event",
                                                   "data": {"event": '{"eventName": "ListUsers"}'}},
    ("POST", "/search"): {"data": {"sql": "SELECT 1 AS one"}},
    # sources, destinations, deployment (webops): "onca-main-audit" is the deployed audit source; "nope" does
    # not exist, so allowed changes answer 404/422 and change nothing
    ("POST", "/api/v1/sources"): {"json": {"name": "matrix", "kind": "carrier-pigeon", "log_types": ["Nope"]}},
    ("GET", "/api/v1/sources/{name}"): {"url": "/api/v1/sources/onca-main-audit"},
    ("PATCH", "/api/v1/sources/{name}"): {"url": "/api/v1/sources/nope", "json": {"enabled": True}},
    ("DELETE", "/api/v1/sources/{name}"): {"url": "/api/v1/sources/nope"},
    ("POST", "/api/v1/sources/{name}/token"): {"url": "/api/v1/sources/nope/token"},
    ("GET", "/api/v1/sources/{name}/quarantine"): {"url": "/api/v1/sources/onca-main-audit/quarantine"},
    ("POST", "/api/v1/destinations"): {"json": {"name": "matrix", "kind": "carrier-pigeon"}},
    ("GET", "/api/v1/destinations/{name}"): {"url": "/api/v1/destinations/nope"},
    ("PUT", "/api/v1/destinations/{name}"): {"url": "/api/v1/destinations/nope", "json": {"kind": "slack"}},
    ("DELETE", "/api/v1/destinations/{name}"): {"url": "/api/v1/destinations/nope"},
    ("POST", "/api/v1/destinations/{name}/test"): {"url": "/api/v1/destinations/nope/test"},
    ("POST", "/sources"): {"data": {"name": "matrix", "kind": "carrier-pigeon", "log_types": "Nope"}},
    ("GET", "/sources/{name}"): {"url": "/sources/onca-main-audit"},
    ("POST", "/sources/{name}/token"): {"url": "/sources/nope/token", "data": {}},
    ("POST", "/sources/{name}/enabled"): {"url": "/sources/nope/enabled", "data": {"enabled": "true"}},
    ("POST", "/sources/{name}/delete"): {"url": "/sources/nope/delete", "data": {}},
    ("POST", "/destinations/new"): {"data": {"name": "matrix", "kind": "carrier-pigeon"}},
    ("GET", "/destinations/{name}/edit"): {"url": "/destinations/nope/edit"},
    ("POST", "/destinations/{name}/edit"): {"url": "/destinations/nope/edit", "data": {"kind": "slack"}},
    ("POST", "/destinations/{name}/test"): {"url": "/destinations/nope/test", "data": {}},
    ("POST", "/destinations/{name}/delete"): {"url": "/destinations/nope/delete", "data": {}},
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in flat_routes(app):
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                found.add((method, route.path))  # type: ignore[attr-defined]
    return found


def call(test_client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    example = EXAMPLES.get((method, path), {})
    url = example.get("url", path)
    assert "{" not in url, f"{method} {path} needs an example url in EXAMPLES"
    return test_client.request(method, url, json=example.get("json"), data=example.get("data"),
                               headers=headers, follow_redirects=False)


def denials(app: FastAPI) -> int:
    with db(app) as session:
        return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied"))


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    routes = app_routes(app)
    assert sorted(routes - set(EXPECTED)) == [], "routes missing from EXPECTED"
    assert sorted(set(EXPECTED) - routes) == [], "EXPECTED names routes the app does not have"
    assert all(need in (PUBLIC, SIGNED_IN) or any(need in perms for perms in ROLES.values())
               for need in EXPECTED.values())


def test_anonymous_requests_are_refused(app: FastAPI, anon: TestClient) -> None:
    for (method, path), need in sorted(EXPECTED.items()):
        answer = call(anon, method, path)
        if need == PUBLIC:
            assert answer.status_code < 500, (method, path, answer.status_code, answer.text)
        elif path.startswith("/api/"):
            assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
        else:
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), (method, path)


def allowed(answer: Any) -> bool:
    return answer.status_code not in (401, 403) and not answer.headers.get("location", "").startswith("/login")


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_gets_exactly_its_permissions(app: FastAPI, role: str) -> None:
    email = make_user(app, role, f"matrix-{role.lower()}@example.com")
    token = bearer_token(app, email, role)
    wrong: list[str] = []
    with TestClient(app) as browser, TestClient(app) as automation:
        for (method, path), need in sorted(EXPECTED.items()):
            if need == PUBLIC:
                continue
            expected = need == SIGNED_IN or need in ROLES[role]
            ways = [("session", browser, None)]
            if path.startswith("/api/"):
                ways.append(("token", automation, {"Authorization": f"Bearer {token}"}))
            for way, test_client, headers in ways:
                if way == "session":  # a fresh session each time: some routes end or change it
                    cookie, csrf = session_cookie(app, email)
                    test_client.cookies.set("onca_session", cookie)
                    headers = {"X-CSRF-Token": csrf}
                before = denials(app)
                answer = call(test_client, method, path, headers)
                if allowed(answer) != expected:
                    wrong.append(f"{role} {way} {method} {path}: {answer.status_code} (expected "
                                 f"{'allowed' if expected else 'refused'})")
                elif not expected and (answer.status_code != 403 or denials(app) != before + 1):
                    wrong.append(f"{role} {way} {method} {path}: refused with {answer.status_code} and "
                                 f"{denials(app) - before} access.denied record(s), expected 403 and one")
    assert wrong == []
