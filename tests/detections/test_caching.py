"""The panther_detection_helpers compatibility modules: caching, mocking, monitoring."""

from __future__ import annotations

import inspect
from unittest.mock import MagicMock, Mock

import pytest

from onca.detections.compat import caching, mocking, monitoring
from onca.detections.kvstore import KVStore, set_default_store

from .conftest import NOW, Clock


@pytest.fixture
def store(clock: Clock) -> KVStore:
    kv = KVStore(clock=clock)
    set_default_store(kv)
    yield kv
    set_default_store(None)
    kv.close()


# Names, order and defaults that detection code may rely on when calling with keywords.
SIGNATURES = {
    "kv_table": "()",
    "ttl_expired": "(response)",
    "get_counter": "(key, force_ttl_check=False)",
    "increment_counter": "(key, val=1, epoch_seconds=None)",
    "reset_counter": "(key)",
    "set_key_expiration": "(key, epoch_seconds)",
    "get_string_set": "(key, force_ttl_check=False)",
    "put_string_set": "(key, val, epoch_seconds=None)",
    "add_to_string_set": "(key, val, epoch_seconds=None)",
    "remove_from_string_set": "(key, val, epoch_seconds=None)",
    "reset_string_set": "(key)",
    "put_dictionary": "(key, val, epoch_seconds=None)",
    "get_dictionary": "(key, force_ttl_check=False)",
    "evaluate_threshold": "(key, threshold=10, expiry_seconds=3600)",
    "check_account_age": "(key)",
}


@pytest.mark.parametrize(("name", "signature"), SIGNATURES.items())
def test_public_signatures(name: str, signature: str) -> None:
    params = inspect.signature(getattr(caching, name)).parameters.values()
    bare = [str(param.replace(annotation=inspect.Parameter.empty)) for param in params]
    assert f"({', '.join(bare)})" == signature


def test_module_exports_exactly_the_helpers() -> None:
    assert sorted(caching.__all__) == sorted(SIGNATURES)


def test_kv_table_is_the_default_store(store: KVStore) -> None:
    assert caching.kv_table() is store


def test_ttl_expired_reads_the_store_items(store: KVStore, clock: Clock) -> None:
    caching.increment_counter("k", epoch_seconds=60)
    assert caching.ttl_expired(store.get_item("k")) is False
    clock.now = NOW + 60
    assert caching.ttl_expired(store.get_item("k")) is True
    assert caching.ttl_expired(store.get_item("never-written")) is False
    assert caching.ttl_expired({"Item": {"key": "k"}}) is False


def test_functions_act_on_the_default_store(store: KVStore) -> None:
    assert caching.increment_counter("c", 2) == 2
    assert caching.get_counter("c", force_ttl_check=True) == 2
    caching.reset_counter("c")
    assert store.get_counter("c") == 0

    caching.put_string_set(key="s", val=["a", "b"], epoch_seconds=3600)
    assert caching.add_to_string_set("s", "c") == {"a", "b", "c"}
    assert caching.remove_from_string_set("s", ["a"]) == {"b", "c"}
    assert caching.get_string_set("s") == {"b", "c"}
    caching.reset_string_set("s")
    assert store.get_string_set("s") == set()

    caching.put_dictionary("d", {"x": 1})
    assert caching.get_dictionary("d") == {"x": 1}
    with pytest.raises(TypeError):
        caching.put_dictionary("d", ["x"])
    with pytest.raises(ValueError):
        caching.put_dictionary("d", {"x": {1}})


def test_set_key_expiration(store: KVStore, clock: Clock) -> None:
    caching.put_dictionary("d", {"x": 1})
    caching.set_key_expiration("d", 30)
    clock.now = NOW + 30
    assert caching.get_dictionary("d", force_ttl_check=True) == {}


def test_check_account_age_with_an_indicator_rule(store: KVStore, clock: Clock) -> None:
    # The pattern of panther-analysis's "new user" indicators: remember a new account for a while,
    # then let other rules ask whether an account is still new.
    def indicator_rule(event: dict) -> bool:
        caching.put_string_set(event["user"], [event["id"]], str(NOW + 3 * 24 * 3600))
        return True

    indicator_rule({"user": "mallory", "id": "evt-1"})
    assert caching.check_account_age("mallory") is True
    assert caching.check_account_age("alice") is False
    assert caching.check_account_age("") is False
    assert caching.check_account_age(None) is False
    assert caching.check_account_age(["mallory"]) is False
    clock.now = NOW + 3 * 24 * 3600
    assert caching.check_account_age("mallory") is False


def test_evaluate_threshold_in_a_brute_force_rule(store: KVStore, clock: Clock) -> None:
    def rule(event: dict) -> bool:
        return event["outcome"] == "FAILURE" and caching.evaluate_threshold(
            f"failed-login:{event['user']}", threshold=3, expiry_seconds=600
        )

    failure = {"user": "bob", "outcome": "FAILURE"}
    assert [rule(failure) for _ in range(4)] == [False, False, True, False]
    clock.now = NOW + 700  # the window lapsed, so counting starts again
    assert [rule(failure) for _ in range(3)] == [False, False, True]
    assert rule({"user": "bob", "outcome": "SUCCESS"}) is False


def test_is_mock_recognises_magic_mocks_only() -> None:
    assert mocking.is_mock(MagicMock(return_value="x")) is True
    assert mocking.is_mock(Mock()) is False
    assert mocking.is_mock(caching.get_counter) is False


def test_monitoring_wrap_returns_the_function_itself() -> None:
    def helper(x: int) -> int:
        return x + 1

    wrapped = monitoring.wrap(name="onca.helper", tags={"team": "detections"})(helper)
    assert wrapped is helper
    assert monitoring.wrap("plain")(helper)(1) == 2
