"""``panther_detection_helpers.monitoring``: the metrics decorator that detection helpers apply.

Panther times helpers with Datadog only in its own production environments; Onca has no Datadog, so
the decorator leaves functions untouched (and adds no call overhead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def wrap(name: str, tags: dict[str | bytes, str] | None = None) -> Callable[[F], F]:
    """Decorator factory accepting Panther's metric ``name`` and ``tags``; returns functions unchanged."""

    def decorator(func: F) -> F:
        return func

    return decorator
