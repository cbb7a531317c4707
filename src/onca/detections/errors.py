"""Exceptions raised to detection code and by the engine, named as detection authors know them."""

from __future__ import annotations


class PantherError(Exception):
    """An error in how detection code used the runtime (for example udm_path without a data model)."""


class FunctionReturnTypeError(Exception):
    """A detection function returned a value of the wrong type."""


class UnknownDestinationError(Exception):
    """destinations() named a destination that is not configured."""


class ContentError(Exception):
    """A content file cannot be loaded: the message says which file, which key and what is wrong."""
