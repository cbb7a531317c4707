"""``panther_detection_helpers.mocking``: lets detection code tell a test mock from a real function."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock


def is_mock(func: Any) -> bool:
    """True when ``func`` is a test mock (the harness builds mocks as ``unittest.mock.MagicMock``)."""
    return isinstance(func, MagicMock)
