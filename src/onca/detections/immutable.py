"""Read-only views over event data, behaving like panther_core's immutable containers.

Rules read events millions of times, so every lookup here is written for the common case: the
exact key is present, or the value is a scalar that needs no wrapping. Nested containers are
wrapped on the fly when read: an exact ``dict`` becomes an ``ImmutableCaseInsensitiveDict`` and an
exact ``list`` becomes an ``ImmutableList``; subclasses and every other type are returned as they are.

Unlike panther_core, a nested wrapper created while reading shares the event's raw dict instead of
copying it. Nothing in the runtime mutates event data, so the copy would only cost time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from copy import deepcopy
from typing import Any

# Sentinel for "key absent", distinct from a stored None.
MISSING: Any = object()

# Types whose equality with a wrapped container is the same as with the raw one, so membership
# tests can run on the raw tuple at C speed.
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})

_new = object.__new__


def shallow_copy(container: Any) -> Any:
    # Anything with a copy() method is copied, everything else is kept as given.
    return container.copy() if hasattr(type(container), "copy") else container


def wrap_dict(raw: dict) -> ImmutableCaseInsensitiveDict:
    # Internal constructor: wraps without the shallow copy the public constructor makes.
    view = _new(ImmutableCaseInsensitiveDict)
    view._raw = raw
    view._lower = None
    return view


def wrap(value: Any) -> Any:
    """Return value as detection code must see it: exact dicts and lists wrapped, the rest unchanged."""
    kind = type(value)
    if kind is dict:
        return wrap_dict(value)
    if kind is list:
        return ImmutableList(value)
    return value


def fold_key(raw: Mapping, key: Any) -> Any:
    """Find the key of raw that equals key case-insensitively, first in insertion order; else MISSING.

    Used on nested dicts that are read once, where building a lower-case map would not pay off.
    Non-string keys met before the match raise AttributeError, as panther_core's lookup does.
    """
    if not raw:
        return MISSING
    wanted = key.lower()
    for original in raw:
        if original.lower() == wanted:
            return original
    return MISSING


class _IncrementalFold(dict):
    """A lower-case key map built key by key, for dicts holding keys that have no lower().

    panther_core always builds its map this way, so a non-string key raises AttributeError only
    when a lookup reaches it, and later lookups resume after it. Mirroring that keeps errors (and
    recoveries) where detection code met them under Panther.
    """

    __slots__ = ("_pending",)

    def __init__(self, raw: Mapping) -> None:
        super().__init__()
        self._pending = iter(raw)

    def resume(self, wanted: Any) -> Any:
        for original in self._pending:
            folded = original.lower()
            if folded not in self:
                self[folded] = original
                if folded == wanted:
                    return original
        return MISSING


class ImmutableContainerMixin:
    """Common base of the read-only containers; json_encoder unwraps anything deriving from it."""

    __slots__ = ("_raw",)
    _raw: Any


class ImmutableCaseInsensitiveDict(ImmutableContainerMixin, Mapping):
    """Read-only mapping whose lookups ignore the case of string keys.

    The exact key is tried first. Otherwise the key is compared lower-cased; when several keys
    collide that way, the first in insertion order wins.
    """

    __slots__ = ("_lower",)

    def __init__(self, container: Any) -> None:
        self._raw = shallow_copy(container)
        # Lower-cased key -> original key, built on the first case-insensitive miss.
        self._lower: dict[Any, Any] | None = None

    def _fold(self, key: Any) -> Any:
        raw = self._raw
        if not raw:
            return MISSING
        wanted = key.lower()
        lower = self._lower
        if lower is None:
            try:
                # Reversed, so the first key in insertion order is the one left in the map.
                lower = {original.lower(): original for original in reversed(raw)}
            except (AttributeError, TypeError):
                lower = _IncrementalFold(raw)
            self._lower = lower
        found = lower.get(wanted, MISSING)
        if found is MISSING and type(lower) is _IncrementalFold:
            return lower.resume(wanted)
        return found

    def __getitem__(self, key: Any) -> Any:
        # get() repeats this body rather than sharing a helper: rules call both millions of times,
        # and one more call layer on this path costs more than the repetition.
        raw = self._raw
        if key in raw:
            value = raw[key]
            kind = type(value)
            # Scalars first: they are most of what rules read.
            if kind is not dict and kind is not list:
                return value
        else:
            lower = self._lower
            # Inlined common case of _fold: the lower-case map is already built.
            original = lower.get(key.lower(), MISSING) if type(lower) is dict else self._fold(key)
            if original is MISSING:
                raise KeyError(key)
            value = raw[original]
            kind = type(value)
        if kind is dict:
            return wrap_dict(value)
        if kind is list:
            return ImmutableList(value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self._raw
        if key in raw:
            value = raw[key]
            kind = type(value)
            # Scalars first: they are most of what rules read.
            if kind is not dict and kind is not list:
                return value
        else:
            lower = self._lower
            # Inlined common case of _fold: the lower-case map is already built.
            original = lower.get(key.lower(), MISSING) if type(lower) is dict else self._fold(key)
            if original is MISSING:
                return default
            value = raw[original]
            kind = type(value)
        if kind is dict:
            return wrap_dict(value)
        if kind is list:
            return ImmutableList(value)
        return value

    def __contains__(self, key: Any) -> bool:
        return key in self._raw or self._fold(key) is not MISSING

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw})"

    def deep_get(self, *keys: Any, default: Any = None) -> Any:
        """Follow keys through nested mappings case-insensitively.

        A missing key yields default, a non-mapping on the way yields default, and a final None
        becomes default. Lists are not indexed. When default itself is a mapping the walk goes on
        inside it (with that mapping's own get), as panther_core's reduce over get() does.
        """
        current: Any = self._raw
        # True while current is a raw dict reached through this container (a case-insensitive view).
        viewed = True
        for key in keys:
            if viewed:
                if key in current:
                    value = current[key]
                else:
                    original = self._fold(key) if current is self._raw else fold_key(current, key)
                    if original is MISSING:
                        current = default
                        viewed = False
                        continue
                    value = current[original]
                kind = type(value)
                if kind is dict:
                    current = value
                    continue
                viewed = False
                current = ImmutableList(value) if kind is list else value
            elif isinstance(current, Mapping):
                current = current.get(key, default)
            else:
                current = default
        if viewed:
            return self if current is self._raw else wrap_dict(current)
        if current is None:
            return default
        return current

    def to_dict(self) -> dict:
        """A deep, mutable copy."""
        return dict(deepcopy(self._raw))

    copy = to_dict

    def raw_view(self) -> Any:
        """The wrapped dict itself, without copying: treat it as read-only."""
        return self._raw


class ImmutableList(ImmutableContainerMixin, Sequence):
    """Read-only sequence stored as a tuple. Slicing returns a raw tuple of raw items."""

    __slots__ = ()

    def __init__(self, container: Any) -> None:
        self._raw = tuple(container)

    def __getitem__(self, index: Any) -> Any:
        value = self._raw[index]
        kind = type(value)
        if kind is dict:
            return wrap_dict(value)
        if kind is list:
            return ImmutableList(value)
        return value

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[Any]:
        for value in self._raw:
            kind = type(value)
            if kind is dict:
                yield wrap_dict(value)
            elif kind is list:
                yield ImmutableList(value)
            else:
                yield value

    def __contains__(self, value: Any) -> bool:
        if type(value) in _PLAIN_SCALARS:
            return value in self._raw
        # Compare against wrapped items: an ImmutableList equals a tuple where a raw list would not.
        return any(item is value or item == value for item in self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImmutableList):
            return self._raw == other._raw
        if isinstance(other, (tuple, list)):
            return len(self._raw) == len(other) and self._raw == tuple(other)
        return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw})"

    def as_list(self) -> list:
        """A deep, mutable copy."""
        return list(deepcopy(self._raw))

    copy = as_list


def json_encoder(obj: Any) -> Any:
    """``json.dumps(x, default=json_encoder)`` hook that unwraps the immutable containers."""
    if isinstance(obj, ImmutableContainerMixin):
        return obj._raw
    raise TypeError(f"object of type {type(obj)} is not JSON serializable")
