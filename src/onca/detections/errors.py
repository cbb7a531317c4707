"""Exceptions raised to detection code and by the engine, named as detection authors know them."""

from __future__ import annotations


class PantherError(Exception):
    """An error in how detection code used the runtime (for example udm_path without a data model).

    Detection code may inspect `args` (message first, details after), so the details stay separate
    arguments and are joined only when printed.
    """

    def __str__(self) -> str:
        if len(self.args) > 1:
            return f"{self.args[0]}: {', '.join(map(str, self.args[1:]))}"
        return str(self.args[0]) if self.args else ""


class FunctionReturnTypeError(Exception):
    """A detection function returned a value of the wrong type."""


class UnknownDestinationError(Exception):
    """destinations() named a destination that is not configured."""


class ContentError(Exception):
    """A content file cannot be loaded: the message says which file, which key and what is wrong."""
