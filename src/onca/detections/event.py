"""PantherEvent: the object a rule receives, with unified-data-model access and deep_walk."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dateutil import parser as dateparser

from onca.detections.datamodel import DataModel
from onca.detections.errors import PantherError
from onca.detections.immutable import (
    MISSING,
    ImmutableCaseInsensitiveDict,
    json_encoder,
    shallow_copy,
    wrap,
    wrap_dict,
)

__all__ = ["PantherEvent"]

NO_DATA_MODEL = "a data model hasn't been specified for log type"

# How deep_walk reduces the de-duplicated values it found under a list.
_PICKERS: dict[str, Callable[[list[Any]], Any]] = {
    "first": lambda values: values[0],
    "last": lambda values: values[-1],
    "all": lambda values: values[0] if len(values) == 1 else values,
}


def _is_sequence(value: Any) -> bool:
    kind = type(value)
    if kind is list:
        return True
    if kind is str or kind is dict:
        return False
    return isinstance(value, Sequence) and not isinstance(value, str)


def _only_empty_lists(value: Any) -> bool:
    return _is_sequence(value) and all(_only_empty_lists(item) for item in value)


def _own_copy(value: Any, leaf: bool) -> Any:
    """The value as panther's deep_walk holds it: a shallow copy of anything that has copy().

    Inside the walk a copied dict or list behaves exactly like the original, so only leaves (which
    are returned to the caller) and unusual types (whose copy may change type) are copied.
    """
    kind = type(value)
    if kind is str or value is None:
        return value
    if (kind is dict or kind is list) and not leaf:
        return value
    return value.copy() if hasattr(kind, "copy") else value


def _walk(node: Any, keys: tuple[Any, ...], default: Any, return_val: str) -> Any:
    if not keys:
        return default if node is None or _only_empty_lists(node) else node
    if type(node) is dict or (type(node) is not list and isinstance(node, Mapping)):
        rest = keys[1:]
        # A missing key walks on inside default, which is how panther's deep_walk behaves.
        return _walk(_own_copy(node.get(keys[0], default), not rest), rest, default, return_val)
    if not _is_sequence(node):
        return default
    # Ordered de-duplication; unhashable leaves raise TypeError as they do in panther_core.
    found: dict[Any, None] = {}
    for item in node:
        value = _walk(_own_copy(item, False), keys, default, return_val)
        if value is None:
            continue
        if _is_sequence(value):
            for sub_value in value:
                found[sub_value] = None
        else:
            found[value] = None
    if not found:
        return default
    pick = _PICKERS.get(return_val)
    # An unknown return_val yields the literal "all": an upstream quirk rules may depend on.
    return "all" if pick is None else pick(list(found))


class PantherEvent(ImmutableCaseInsensitiveDict):
    """A log event as rules see it: read-only, case-insensitive, with udm() over a data model."""

    __slots__ = ("_view", "data_model", "lookup_function")

    def __init__(self, data: Mapping[str, Any], data_model: DataModel | None = None) -> None:
        # Same state as ImmutableCaseInsensitiveDict.__init__, set inline: one event per log line.
        self._raw = data.copy() if type(data) is dict else shallow_copy(data)
        self._lower = None
        self.data_model = data_model
        # Set by the engine when real lookup tables exist; tests read _mocked_lookup_data_ instead.
        self.lookup_function: Callable[[PantherEvent, str, str], Any] | None = None
        # The plain case-insensitive view handed to data-model methods, made on first use.
        self._view: ImmutableCaseInsensitiveDict | None = None

    json_encoder = staticmethod(json_encoder)

    def udm(self, *keys: str, default: Any = None) -> Any:
        """Read a unified field: the data model first, then ``p_udm``, then the event's own keys.

        Falsy values found through ``p_udm`` or the event count as missing.
        """
        model = self.data_model
        if model is not None and len(keys) == 1:
            name = keys[0]
            paths = model.paths
            methods = model.methods
            if name in paths:
                value, _ = paths[name].find(self._raw, model.data_model_id)
                if value is not MISSING:
                    return wrap(value)
            if name in methods:
                method = methods[name]
                if callable(method):
                    view = self._view
                    if view is None:
                        view = self._view = wrap_dict(self._raw)
                    return wrap(method(view))
            # A mapped name never falls back to p_udm or top-level keys.
            if name in paths or name in methods:
                return default
        if not keys:
            return default
        result = self.deep_get("p_udm", *keys)
        if not result:
            result = self.deep_get(*keys)
        return result if result else default

    def udm_path(self, key: str) -> str | None:
        """The matched JSONPath (without ``$.``), or the method's name, or None when unmapped."""
        model = self.data_model
        if not model:
            # panther_core renders its two-argument error as "message: log type"; this is that text.
            raise PantherError(NO_DATA_MODEL, self._raw.get("p_log_type"))
        if key in model.paths:
            value, full_path = model.paths[key].find(self._raw, model.data_model_id)
            if value is not MISSING:
                return full_path
        method = model.methods.get(key)
        if callable(method):
            return getattr(method, "__name__", repr(method))
        return None

    def deep_walk(self, *keys: Any, default: Any = None, return_val: str = "all") -> Any:
        """Like deep_get, but case-sensitive and descending into lists.

        Values found under lists are flattened and de-duplicated in order, then reduced by
        return_val ("first", "last" or "all"; "all" gives a lone value unwrapped). An empty result,
        an empty list or a list of empty lists gives default. Containers come back raw and mutable.
        """
        return _walk(self._raw, keys, default, return_val)

    def lookup(self, table: str, key: str) -> Any:
        """Look key up in a lookup table; without a lookup function, in ``_mocked_lookup_data_``."""
        if self.lookup_function:
            return self.lookup_function(self, table, key)
        return self.deep_get("_mocked_lookup_data_", table, key)

    def event_time_epoch(self, force_utc: bool = True) -> int:
        """``p_event_time`` as epoch seconds (read as UTC unless told otherwise); 0 if unparseable."""
        try:
            event_time = self.get("p_event_time") or ""
            if force_utc:
                event_time += " UTC"
            return int(dateparser.parse(event_time).timestamp())
        except dateparser.ParserError:
            return 0
