"""Suite-wide isolation: nothing a test runs writes into the user's cache directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres import postgres_url  # noqa: F401


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path_factory.mktemp("onca-cache")
    monkeypatch.setenv("ONCA_CACHE_DIR", str(cache))
    return cache
