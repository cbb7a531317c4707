"""Fixtures for the API and console tests: a deployed home, the app, and clients signed in per role.

`client("Analyst")` signs in through the real login form and sends the session's CSRF token on every
request (header X-CSRF-Token; `client.csrf_token` holds it for forms). `token_client("ReadOnly")` uses
a Bearer API token. `anon` has no credentials. Users get the password PASSWORD.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onca.api import tokens
from onca.api.app import create_app
from onca.core.access import ROLES, permissions_of
from onca.core.users import create_invite, create_user, get_user, redeem_invite, token_hash
from onca.deploy.stacks import Deployment

PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "admin@example.com"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def deploy_home(home: Path, **params: str) -> Path:
    """Deploy Onca (with its content) into `home`; FirstUserEmail is ADMIN_EMAIL (still invited)."""
    deployment = Deployment(home)
    try:
        outcome = deployment.deploy("onca-main", {"FirstUserEmail": ADMIN_EMAIL, "WebListenAddress": free_address(),
                                                  **params})
    finally:
        deployment.close()
    assert outcome.status == "CREATE_COMPLETE", outcome.error
    return home


def db(app: FastAPI) -> AbstractContextManager[Session]:
    """`with db(app) as session:` — a committed-on-success metadata session of the app's deployment."""
    return app.state.sessions.begin()


def make_user(app: FastAPI, role: str, email: str | None = None, display_name: str = "") -> str:
    """An active user of `role` with PASSWORD (created through an invite, as people are); returns the email."""
    assert role in ROLES, role
    address = email or f"{role.lower()}@example.com"
    with db(app) as session:
        user = get_user(session, address) or create_user(session, address, role, display_name)
        if user.status != "active":
            redeem_invite(session, create_invite(session, user), PASSWORD)
    return address


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token (also sent as X-CSRF-Token from now on)."""
    page = client.get("/login")
    prelogin = CSRF_INPUT.search(page.text)
    assert prelogin, page.text
    answer = client.post("/login", data={"email": email, "password": password, "next": "/account",
                                         "csrf_token": prelogin.group(1)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    account = client.get("/account")
    found = CSRF_INPUT.search(account.text)
    assert account.status_code == 200 and found, account.text
    client.headers["X-CSRF-Token"] = found.group(1)
    return found.group(1)


def bearer_token(app: FastAPI, email: str, role: str, name: str = "test token") -> str:
    with db(app) as session:
        owner = get_user(session, email)
        assert owner is not None
        _, secret = tokens.create(session, owner, name, role, permissions_of({owner.role}))
    return secret


@pytest.fixture
def web_home(tmp_path: Path) -> Path:
    return deploy_home(tmp_path / "home")


@pytest.fixture
def app(web_home: Path) -> Iterator[FastAPI]:
    application = create_app(web_home)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


class SignedInClient(TestClient):
    email: str
    csrf_token: str


@pytest.fixture
def client(app: FastAPI) -> Iterator[Callable[..., SignedInClient]]:
    """`client("Analyst")` (or client(role, email=...)): a TestClient signed in as a user of that role."""
    opened: list[TestClient] = []

    def signed_in(role: str, email: str | None = None) -> SignedInClient:
        address = make_user(app, role, email)
        test_client = SignedInClient(app)
        opened.append(test_client)
        test_client.email = address
        test_client.csrf_token = login(test_client, address)
        return test_client

    yield signed_in
    for test_client in opened:
        test_client.close()


@pytest.fixture
def token_client(app: FastAPI) -> Iterator[Callable[..., TestClient]]:
    """`token_client("ReadOnly")`: a TestClient sending a Bearer API token of that role (owned by a user of it)."""
    opened: list[TestClient] = []

    def with_token(role: str, email: str | None = None) -> TestClient:
        address = make_user(app, role, email)
        test_client = TestClient(app, headers={"Authorization": f"Bearer {bearer_token(app, address, role)}"})
        opened.append(test_client)
        return test_client

    yield with_token
    for test_client in opened:
        test_client.close()


def session_cookie(app: FastAPI, email: str) -> tuple[str, str]:
    """(cookie value, CSRF token) of a fresh signed-in session for `email`, made without the login form.

    For tests that need many sessions (the role matrix); everything else signs in with `login`.
    """
    from onca.api import sessions
    from onca.store.models import WebSession

    with db(app) as session:
        user = get_user(session, email)
        assert user is not None and user.status == "active"
        raw = sessions.create(session, user)
        row = session.get(WebSession, token_hash(raw))
        assert row is not None
        return raw, row.csrf_token
