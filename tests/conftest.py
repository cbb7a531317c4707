"""Suite-wide isolation: nothing a test runs writes into the user's cache directory."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from onca.store.db import make_engine, migrate, session_scope
from tests.postgres import postgres_url  # noqa: F401


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path_factory.mktemp("onca-cache")
    monkeypatch.setenv("ONCA_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def database_url(home: Path) -> str:
    """A migrated SQLite metadata database in the test's `home` (each test folder defines `home`)."""
    url = f"sqlite:///{home / 'metadata.db'}"
    migrate(url)
    return url


@pytest.fixture
def session_factory(database_url: str) -> Iterator[Callable[[], Any]]:
    """`with session_factory() as session:` — a committed-on-success session on the test database."""
    engine = make_engine(database_url)
    yield lambda: session_scope(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1 (a free port) for the AWS APIs, one per test module."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
