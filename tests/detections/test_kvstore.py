"""The SQLite key-value store behind detection state: TTLs, counters, sets, dictionaries, processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest

from onca.detections import kvstore
from onca.detections.kvstore import DEFAULT_TTL_SECONDS, KVStore, normalize_ttl

from .conftest import NOW, Clock


@pytest.fixture
def store(clock: Clock) -> KVStore:
    with KVStore(clock=clock) as kv:
        yield kv


# -- TTL normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch_seconds", "expected"),
    [
        (None, NOW + DEFAULT_TTL_SECONDS),
        (Decimal(60), NOW + DEFAULT_TTL_SECONDS),  # not an int after conversion: the default
        ([60], NOW + DEFAULT_TTL_SECONDS),
        (0, NOW),
        (3600, NOW + 3600),
        (-5, NOW - 5),
        (604_800, NOW + 604_800),  # seven days: still relative
        (604_801, 604_801),  # from here on: an absolute epoch time
        (1_800_000_000, 1_800_000_000),
        ("3600", NOW + 3600),
        ("12.7", NOW + 12),
        ("1e9", 1_000_000_000),
        (12.9, NOW + 12),
        (1_800_000_000.9, 1_800_000_000),
        (True, NOW + 1),
    ],
)
def test_normalize_ttl(epoch_seconds: object, expected: int) -> None:
    assert normalize_ttl(epoch_seconds, NOW + 0.75) == expected


def test_normalize_ttl_rejects_non_numeric_strings() -> None:
    with pytest.raises(ValueError, match="could not convert string to float"):
        normalize_ttl("tomorrow", NOW)


def test_relative_and_absolute_ttls_expire_at_the_right_moment(store: KVStore, clock: Clock) -> None:
    store.increment_counter("relative", epoch_seconds=60)
    store.increment_counter("absolute", epoch_seconds=NOW + 120)
    clock.now = NOW + 59.9
    assert (store.get_counter("relative"), store.get_counter("absolute")) == (1, 1)
    clock.now = NOW + 60
    assert (store.get_counter("relative"), store.get_counter("absolute")) == (0, 1)
    clock.now = NOW + 120
    assert store.get_counter("absolute") == 0


def test_default_ttl_is_ninety_days(store: KVStore, clock: Clock) -> None:
    store.put_string_set("k", ["a"])
    assert store.get_item("k")["Item"]["expiresAt"] == NOW + DEFAULT_TTL_SECONDS
    clock.now = NOW + DEFAULT_TTL_SECONDS - 1
    assert store.get_string_set("k") == {"a"}
    clock.now = NOW + DEFAULT_TTL_SECONDS
    assert store.get_string_set("k") == set()


# -- counters ------------------------------------------------------------------------------------


def test_counter_increments_and_resets(store: KVStore) -> None:
    assert store.get_counter("c") == 0
    assert store.increment_counter("c") == 1
    assert store.increment_counter("c", 5) == 6
    assert store.get_counter("c") == 6
    store.reset_counter("c")
    assert store.get_counter("c") == 0
    assert store.increment_counter("c", 2) == 2


def test_counter_rejects_float_increments(store: KVStore) -> None:
    with pytest.raises(TypeError):
        store.increment_counter("c", 1.5)
    assert store.get_counter("c") == 0


def test_increment_refreshes_ttl_and_an_expired_counter_restarts_at_val(store: KVStore, clock: Clock) -> None:
    store.increment_counter("c", 3, epoch_seconds=100)
    clock.now = NOW + 90
    assert store.increment_counter("c", 1, epoch_seconds=100) == 4  # now lives until NOW + 190
    clock.now = NOW + 150
    assert store.get_counter("c") == 4
    clock.now = NOW + 190
    assert store.increment_counter("c", 7) == 7


def test_reset_counter_keeps_the_keys_expiry_and_set(store: KVStore) -> None:
    store.add_to_string_set("k", "a", epoch_seconds=50)
    store.increment_counter("k", epoch_seconds=100)
    store.reset_counter("k")
    item = store.get_item("k")["Item"]
    assert item == {"key": "k", "stringSet": {"a"}, "expiresAt": NOW + 100}


def test_evaluate_threshold_fires_every_threshold_calls(store: KVStore) -> None:
    assert [store.evaluate_threshold("t", threshold=3) for _ in range(7)] == [
        False, False, True, False, False, True, False,
    ]  # fmt: skip
    assert store.get_counter("t") == 1


def test_evaluate_threshold_window_expires(store: KVStore, clock: Clock) -> None:
    store.evaluate_threshold("t", threshold=2, expiry_seconds=60)
    clock.now = NOW + 61
    assert store.evaluate_threshold("t", threshold=2, expiry_seconds=60) is False
    assert store.evaluate_threshold("t", threshold=2, expiry_seconds=60) is True


# -- string sets ---------------------------------------------------------------------------------


def test_add_to_string_set_takes_a_str_or_an_iterable(store: KVStore) -> None:
    assert store.add_to_string_set("s", "alpha") == {"alpha"}
    assert store.add_to_string_set("s", ["beta", "gamma"]) == {"alpha", "beta", "gamma"}
    assert store.add_to_string_set("s", ("alpha",)) == {"alpha", "beta", "gamma"}
    assert store.get_string_set("s") == {"alpha", "beta", "gamma"}


def test_empty_iterable_returns_the_current_set_without_refreshing_it(store: KVStore, clock: Clock) -> None:
    store.add_to_string_set("s", "a", epoch_seconds=60)
    assert store.add_to_string_set("s", [], epoch_seconds=3600) == {"a"}
    assert store.remove_from_string_set("s", set(), epoch_seconds=3600) == {"a"}
    assert store.add_to_string_set("missing", []) == set()
    clock.now = NOW + 60
    assert store.get_string_set("s") == set()


def test_remove_from_string_set(store: KVStore) -> None:
    store.put_string_set("s", ["a", "b", "c"])
    assert store.remove_from_string_set("s", "a") == {"b", "c"}
    assert store.remove_from_string_set("s", ["b", "not-there"]) == {"c"}
    assert store.remove_from_string_set("s", {"c"}) == set()
    assert store.get_string_set("s") == set()
    assert store.remove_from_string_set("missing", "x") == set()
    assert store.get_item("missing") == {}


def test_expired_set_is_replaced_by_add_and_reset_by_remove(store: KVStore, clock: Clock) -> None:
    store.put_string_set("s", ["old"], epoch_seconds=10)
    store.put_string_set("r", ["old"], epoch_seconds=10)
    clock.now = NOW + 10
    assert store.add_to_string_set("s", "new") == {"new"}
    assert store.remove_from_string_set("r", "other", epoch_seconds=1000) == set()
    clock.now = NOW + 500
    assert store.get_string_set("r") == set()  # remove did not revive the expired key


def test_put_string_set_replaces_the_whole_item(store: KVStore) -> None:
    store.increment_counter("k", 4)
    store.put_string_set("k", {"x", "y"})
    assert store.get_string_set("k") == {"x", "y"}
    assert store.get_counter("k") == 0
    store.put_string_set("k", ["z"])
    assert store.get_string_set("k") == {"z"}


def test_put_empty_string_set_only_resets_the_set(store: KVStore) -> None:
    store.add_to_string_set("k", "a")
    store.increment_counter("k")
    store.put_string_set("k", [])
    assert (store.get_string_set("k"), store.get_counter("k")) == (set(), 1)


def test_put_string_set_iterates_a_str_like_the_reference(store: KVStore) -> None:
    store.put_string_set("k", "abc")
    assert store.get_string_set("k") == {"a", "b", "c"}


def test_string_sets_hold_only_strings(store: KVStore) -> None:
    with pytest.raises(TypeError, match="NoneType"):
        store.put_string_set("k", ["a", None])
    with pytest.raises(TypeError):
        store.add_to_string_set("k", [1])
    assert store.get_item("k") == {}


def test_returned_set_is_a_copy(store: KVStore) -> None:
    store.add_to_string_set("k", "a").add("sneaky")
    store.get_string_set("k").add("sneaky")
    assert store.get_string_set("k") == {"a"}


# -- dictionaries --------------------------------------------------------------------------------


def test_dictionary_round_trip_through_json(store: KVStore) -> None:
    store.put_dictionary("d", {"city": "Lima", "n": [1, 2.5, None], 7: True})
    assert store.get_dictionary("d") == {"city": "Lima", "n": [1, 2.5, None], "7": True}
    assert store.get_dictionary("missing") == {}


def test_put_dictionary_replaces_the_item(store: KVStore) -> None:
    store.add_to_string_set("d", "a")
    store.put_dictionary("d", {"a": 1})
    assert (store.get_string_set("d"), store.get_dictionary("d")) == (set(), {"a": 1})


@pytest.mark.parametrize("value", [["a"], "text", None, 5])
def test_put_dictionary_rejects_non_mappings_with_type_error(store: KVStore, value: object) -> None:
    with pytest.raises(TypeError, match="value is not a dictionary"):
        store.put_dictionary("d", value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", [{"a": {1, 2}}, {(1, 2): "tuple key"}, {"a": object()}, MappingProxyType({"a": 1})]
)
def test_put_dictionary_rejects_unserialisable_values_with_value_error(store: KVStore, value: object) -> None:
    with pytest.raises(ValueError, match="not JSON serializable"):
        store.put_dictionary("d", value)  # type: ignore[arg-type]
    assert store.get_dictionary("d") == {}


def test_expired_dictionary_reads_empty(store: KVStore, clock: Clock) -> None:
    store.put_dictionary("d", {"a": 1}, epoch_seconds=30)
    clock.now = NOW + 30
    assert store.get_dictionary("d") == {}


def test_undecodable_dictionary_raises_value_error(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "kv.db"
    with KVStore(path, clock=clock) as kv:
        kv.put_dictionary("d", {"a": 1})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE kv SET dictionary = '{broken' WHERE key = 'd'")
    with KVStore(path, clock=clock) as kv, pytest.raises(ValueError, match="could not be decoded"):
        kv.get_dictionary("d")


# -- expiry, raw items, purge --------------------------------------------------------------------


def test_set_key_expiration_extends_and_shortens_life(store: KVStore, clock: Clock) -> None:
    store.increment_counter("k", epoch_seconds=10)
    store.set_key_expiration("k", 100)
    clock.now = NOW + 50
    assert store.get_counter("k") == 1
    store.set_key_expiration("k", 0)
    assert store.get_counter("k") == 0


def test_set_key_expiration_does_not_revive_expired_values(store: KVStore, clock: Clock) -> None:
    store.put_string_set("k", ["old"], epoch_seconds=10)
    clock.now = NOW + 20
    store.set_key_expiration("k", 100)
    assert store.get_string_set("k") == set()
    assert store.add_to_string_set("k", "new") == {"new"}


def test_get_item_is_raw_and_purge_deletes_expired_items(store: KVStore, clock: Clock) -> None:
    store.increment_counter("short", epoch_seconds=10)
    store.put_dictionary("long", {"a": 1}, epoch_seconds=1000)
    clock.now = NOW + 10
    assert store.get_item("short") == {"Item": {"key": "short", "intCount": 1, "expiresAt": NOW + 10}}
    assert store.get_item("long") == {
        "Item": {"key": "long", "dictionary": '{"a": 1}', "expiresAt": NOW + 1000}
    }
    assert store.purge_expired() == 1
    assert store.get_item("short") == {}
    assert store.get_dictionary("long") == {"a": 1}


def test_closed_store_refuses_work(clock: Clock) -> None:
    kv = KVStore(clock=clock)
    kv.increment_counter("c")
    kv.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        kv.get_counter("c")


# -- sharing: files, threads, processes ----------------------------------------------------------


def test_file_store_persists_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "state" / "kv.db"
    path.parent.mkdir()
    with KVStore(path) as kv:
        kv.add_to_string_set("users", ["alice", "bob"])
        kv.increment_counter("logins", 3)
    with KVStore(str(path)) as kv:
        assert kv.get_string_set("users") == {"alice", "bob"}
        assert kv.get_counter("logins") == 3


def test_threads_share_one_store(store: KVStore) -> None:
    def work() -> None:
        for _ in range(200):
            store.increment_counter("c")
            store.add_to_string_set("s", threading.current_thread().name)

    threads = [threading.Thread(target=work, name=f"t{i}") for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_counter("c") == 1200
    assert store.get_string_set("s") == {f"t{i}" for i in range(6)}


PROCESSES = 6
CALLS = 150
THRESHOLD = 7


def _hammer(store: KVStore) -> None:
    for i in range(CALLS):
        store.increment_counter("hits")
        store.add_to_string_set("seen", f"{multiprocessing.current_process().name}-{i % 3}")
        if store.evaluate_threshold("window", threshold=THRESHOLD):
            store.increment_counter("alerts")


def test_forked_processes_update_one_file_store_exactly(tmp_path: Path) -> None:
    store = KVStore(tmp_path / "kv.db")
    # The parent's connection is open before the fork; each child must open its own.
    assert store.increment_counter("hits", 0) == 0
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_hammer, args=(store,), name=f"w{n}") for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    total = PROCESSES * CALLS
    assert store.get_counter("hits") == total
    assert store.get_counter("alerts") == total // THRESHOLD
    assert store.get_counter("window") == total % THRESHOLD
    assert store.get_string_set("seen") == {f"w{n}-{i}" for n in range(PROCESSES) for i in range(3)}
    store.close()


def _report_counter(store: KVStore, queue: multiprocessing.Queue) -> None:
    queue.put(store.get_counter("c"))


def test_in_memory_store_is_private_to_its_process() -> None:
    store = KVStore()
    store.increment_counter("c", 5)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_report_counter, args=(store, queue))
    child.start()
    child.join(timeout=60)
    assert queue.get(timeout=5) == 0
    assert store.get_counter("c") == 5


# -- the default store ---------------------------------------------------------------------------


@pytest.fixture
def no_default_store() -> None:
    kvstore.set_default_store(None)
    yield
    kvstore.set_default_store(None)


@pytest.mark.usefixtures("no_default_store")
def test_default_store_is_in_memory_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kvstore.KV_PATH_ENV, raising=False)
    assert kvstore.default_store().path is None
    assert kvstore.default_store() is kvstore.default_store()


@pytest.mark.usefixtures("no_default_store")
def test_default_store_follows_onca_kv_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(kvstore.KV_PATH_ENV, str(tmp_path / "kv.db"))
    kvstore.default_store().increment_counter("c")
    assert (tmp_path / "kv.db").exists()
    kvstore.default_store().close()


@pytest.mark.usefixtures("no_default_store")
def test_set_default_store(clock: Clock) -> None:
    mine = KVStore(clock=clock)
    kvstore.set_default_store(mine)
    assert kvstore.default_store() is mine
    kvstore.set_default_store(None)
    assert kvstore.default_store() is not mine
