"""The app's routes as a flat list (FastAPI keeps included routers as nested, lazily expanded entries)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from starlette.routing import BaseRoute


def _flatten(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        nested = getattr(route, "original_router", None)  # an included router: its own routes, full paths
        if nested is not None:
            yield from _flatten(nested.routes)
        else:
            yield route


def flat_routes(app: FastAPI) -> list[BaseRoute]:
    return list(_flatten(app.routes))
