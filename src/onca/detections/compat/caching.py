"""``panther_detection_helpers.caching``: the key-value store API that detections call.

Every function delegates to ``onca.detections.kvstore.default_store()``. Where Panther's version reads
DynamoDB, which keeps expired items around until its TTL sweep deletes them, Onca's store treats an
expired item as gone at once; ``force_ttl_check`` is accepted for compatibility and changes nothing.
Counters come back as int (Panther returns ``decimal.Decimal``, which compares equal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from onca.detections.kvstore import KVStore, default_store

__all__ = [
    "add_to_string_set",
    "check_account_age",
    "evaluate_threshold",
    "get_counter",
    "get_dictionary",
    "get_string_set",
    "increment_counter",
    "kv_table",
    "put_dictionary",
    "put_string_set",
    "remove_from_string_set",
    "reset_counter",
    "reset_string_set",
    "set_key_expiration",
    "ttl_expired",
]


def kv_table() -> KVStore:
    """The store behind these functions (Panther returns its DynamoDB table here)."""
    return default_store()


def ttl_expired(response: Mapping[str, Any]) -> bool:
    """Whether an item from ``kv_table().get_item(key)`` has passed its expiry time.

    An item without an expiry time, or a response without an item, is not expired.
    """
    expiration = response.get("Item", {}).get("expiresAt", 0)
    return bool(expiration) and float(expiration) <= default_store().now()


def get_counter(key: str, force_ttl_check: bool = False) -> int:
    """The counter's value, 0 when the key is missing or expired."""
    return default_store().get_counter(key)


def increment_counter(key: str, val: int = 1, epoch_seconds: int | None = None) -> int:
    """Add ``val`` to the counter, refresh its expiry, return the new value (an expired one restarts)."""
    return default_store().increment_counter(key, val, epoch_seconds)


def reset_counter(key: str) -> None:
    """Remove the counter, keeping the key's expiry and other values."""
    default_store().reset_counter(key)


def set_key_expiration(key: str, epoch_seconds: int | None) -> None:
    """Set when the key expires: seconds from now below 604,801, else an epoch time; None is 90 days."""
    default_store().set_key_expiration(key, epoch_seconds)


def get_string_set(key: str, force_ttl_check: bool = False) -> set[str]:
    """The string set, empty when the key is missing or expired."""
    return default_store().get_string_set(key)


def put_string_set(key: str, val: Iterable[str], epoch_seconds: int | None = None) -> None:
    """Overwrite the key's item with this string set; an empty ``val`` only resets the set."""
    default_store().put_string_set(key, val, epoch_seconds)


def add_to_string_set(key: str, val: str | Iterable[str], epoch_seconds: int | None = None) -> set[str]:
    """Add a str or several, refresh the expiry, and return the new set."""
    return default_store().add_to_string_set(key, val, epoch_seconds)


def remove_from_string_set(key: str, val: str | Iterable[str], epoch_seconds: int | None = None) -> set[str]:
    """Remove a str or several, refresh the expiry, and return what is left."""
    return default_store().remove_from_string_set(key, val, epoch_seconds)


def reset_string_set(key: str) -> None:
    """Remove the string set, keeping the key's expiry and other values."""
    default_store().reset_string_set(key)


def put_dictionary(key: str, val: Mapping[str, Any], epoch_seconds: int | None = None) -> None:
    """Overwrite the key's item with a JSON-serialisable dict (TypeError / ValueError otherwise)."""
    default_store().put_dictionary(key, val, epoch_seconds)


def get_dictionary(key: str, force_ttl_check: bool = False) -> dict[str, Any]:
    """The stored dict, ``{}`` when the key is missing or expired."""
    return default_store().get_dictionary(key)


def evaluate_threshold(key: str, threshold: int = 10, expiry_seconds: int = 3600) -> bool:
    """Count one occurrence; True (and the counter reset) once the count reaches ``threshold``."""
    return default_store().evaluate_threshold(key, threshold, expiry_seconds)


def check_account_age(key: Any) -> bool:
    """True when ``key`` is a non-empty str whose string set is non-empty.

    The "new user/account" indicator rules store such sets, so True means the account is new.
    """
    return isinstance(key, str) and key != "" and bool(default_store().get_string_set(key))
