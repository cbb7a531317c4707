"""Onca's key-value store for detection state (counters, string sets, dictionaries with a TTL).

It gives detections the semantics of ``panther_detection_helpers.caching`` on top of SQLite instead of
DynamoDB. Every key holds one item: a counter, a string set and a dictionary that share one expiry
time. Writes that refresh the expiry are what keep an item alive; an item whose expiry has passed is
treated as if it had already been deleted (DynamoDB deletes it at some point after expiry, so this is
the behaviour a detection author sees once the table catches up, without the up-to-48-hour lag).

A store opened on a file is safe to share between processes and threads: the database runs in WAL
mode with a busy timeout, every change is one ``BEGIN IMMEDIATE`` transaction (so read-modify-write
updates such as increments are atomic across processes), and each process opens its own connection
lazily, which keeps the store usable after ``os.fork``.
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "RELATIVE_TTL_LIMIT",
    "KVStore",
    "default_store",
    "normalize_ttl",
    "set_default_store",
]

DEFAULT_TTL_SECONDS = 90 * 24 * 60 * 60
# Values below this (seven days and one second) are durations from now, larger ones absolute epochs.
RELATIVE_TTL_LIMIT = 604_801
KV_PATH_ENV = "ONCA_KV_PATH"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY NOT NULL,
    int_count INTEGER,
    string_set TEXT,
    dictionary TEXT,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at);
"""
_SELECT_ALIVE = "SELECT int_count, string_set, dictionary FROM kv WHERE key = ? AND expires_at > ?"
_SAVE = (
    "INSERT OR REPLACE INTO kv (key, int_count, string_set, dictionary, expires_at) VALUES (?, ?, ?, ?, ?)"
)

# Connections a forked child inherited from its parent. SQLite forbids using or closing them in the
# child (closing could checkpoint or delete the parent's WAL file), so they are kept referenced
# here, which stops the garbage collector from closing them.
_INHERITED: list[sqlite3.Connection] = []
_open_lock = threading.Lock()


def _reset_open_lock() -> None:
    # A thread of the parent may have held the lock at fork time; the child has no such thread.
    global _open_lock
    _open_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_open_lock)


def normalize_ttl(epoch_seconds: object, now: float) -> int:
    """Turn a caller's ``epoch_seconds`` into an absolute expiry time, as panther_detection_helpers does.

    A str is parsed as a float (so a non-numeric string raises ValueError) and a float is truncated.
    Anything that is still not an int (None, Decimal, ...) means 90 days from now. An int below
    604,801 is a number of seconds from now (negative values give a time in the past); a larger int is
    already an absolute epoch time.
    """
    current = int(now)
    if isinstance(epoch_seconds, str):
        epoch_seconds = float(epoch_seconds)
    if isinstance(epoch_seconds, float):
        epoch_seconds = int(epoch_seconds)
    if not isinstance(epoch_seconds, int):
        return current + DEFAULT_TTL_SECONDS
    if epoch_seconds < RELATIVE_TTL_LIMIT:
        return current + int(epoch_seconds)
    return int(epoch_seconds)


def _only_strings(items: set[Any]) -> set[str]:
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"string set values must be str, got {type(item).__name__}: {item!r}")
    return items


def _as_string_set(val: str | Iterable[str]) -> set[str]:
    return {val} if isinstance(val, str) else _only_strings(set(val))


def _encode_set(items: set[str]) -> str | None:
    # An empty set is stored as "no set", as DynamoDB cannot hold an empty string set either.
    return json.dumps(sorted(items)) if items else None


class _Item(NamedTuple):
    int_count: int | None
    string_set: str | None
    dictionary: str | None


_EMPTY = _Item(None, None, None)


class KVStore:
    """Counters, string sets and dictionaries under string keys, each key with one expiry time.

    ``path`` None gives an in-memory database private to the process that uses it (a forked child
    starts with an empty one). A file path gives a database that several processes can share.
    ``clock`` returns the current epoch time in seconds; tests pass their own to move time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._clock = clock
        self._timeout = timeout
        self._pid = -1
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- connection handling -------------------------------------------------------------------

    def _session(self) -> tuple[sqlite3.Connection, threading.Lock]:
        if self._pid != os.getpid():
            self._open()
        return self._db, self._lock  # type: ignore[return-value]

    def _open(self) -> None:
        with _open_lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            if self._closed:
                raise sqlite3.ProgrammingError("KVStore is closed")
            if self._db is not None:
                _INHERITED.append(self._db)
            db = sqlite3.connect(
                self.path if self.path is not None else ":memory:",
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                if self.path is not None:
                    self._enable_wal(db)
                    # WAL with NORMAL sync cannot corrupt the file; a power cut may lose the last writes.
                    db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
            # A fresh lock: the parent's may have been held by one of its threads at fork time.
            self._lock = threading.Lock()
            self._pid = pid

    def _enable_wal(self, db: sqlite3.Connection) -> None:
        # The mode is stored in the file, so only the first opening of a new file switches it. SQLite
        # does not call the busy handler for the switch, which needs every other connection idle, so
        # processes racing to open a new file wait here themselves, up to the busy timeout.
        deadline = time.monotonic() + self._timeout
        while db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db, lock = self._session()
        with lock:
            # IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a
            # read-modify-write inside the transaction cannot interleave with another process.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _read(self, key: str) -> _Item | None:
        db, lock = self._session()
        with lock:
            return self._load(db, key, self._clock())

    @staticmethod
    def _load(db: sqlite3.Connection, key: str, now: float) -> _Item | None:
        row = db.execute(_SELECT_ALIVE, (key, now)).fetchone()
        return None if row is None else _Item(*row)

    def close(self) -> None:
        """Close this process's connection; the store cannot be used afterwards."""
        with _open_lock:
            self._closed = True
            if self._db is not None and self._pid == os.getpid():
                with self._lock:
                    self._db.close()
            self._db = None
            self._pid = -1

    def __enter__(self) -> KVStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- expiry --------------------------------------------------------------------------------

    def now(self) -> float:
        """The store's current epoch time in seconds (its clock decides what has expired)."""
        return self._clock()

    def set_key_expiration(self, key: str, epoch_seconds: object) -> None:
        """Set when ``key`` expires (normalised like every ``epoch_seconds``), creating it if needed."""
        now = self._clock()
        expires_at = normalize_ttl(epoch_seconds, now)
        with self._write() as db:
            item = self._load(db, key, now) or _EMPTY
            db.execute(_SAVE, (key, *item, expires_at))

    def purge_expired(self) -> int:
        """Delete expired items and return how many were deleted."""
        with self._write() as db:
            return db.execute("DELETE FROM kv WHERE expires_at <= ?", (self._clock(),)).rowcount

    def get_item(self, key: str) -> dict[str, Any]:
        """The raw item, expired or not, shaped like a DynamoDB ``get_item`` response.

        ``{}`` when the key was never written (or was purged), else ``{"Item": {...}}`` with the
        attributes ``key``, ``intCount``, ``stringSet``, ``dictionary`` and ``expiresAt`` that are set.
        This is what ``ttl_expired`` inspects.
        """
        db, lock = self._session()
        with lock:
            row = db.execute(
                "SELECT int_count, string_set, dictionary, expires_at FROM kv WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return {}
        int_count, string_set, dictionary, expires_at = row
        item: dict[str, Any] = {"key": key, "expiresAt": expires_at}
        if int_count is not None:
            item["intCount"] = int_count
        if string_set is not None:
            item["stringSet"] = set(json.loads(string_set))
        if dictionary is not None:
            item["dictionary"] = dictionary
        return {"Item": item}

    # -- counters ------------------------------------------------------------------------------

    def get_counter(self, key: str) -> int:
        """The counter's value; 0 when the key is missing, expired or has no counter."""
        item = self._read(key)
        return 0 if item is None or item.int_count is None else item.int_count

    def increment_counter(self, key: str, val: int = 1, epoch_seconds: object = None) -> int:
        """Add ``val`` (an int; floats raise TypeError) and refresh the expiry; return the new count.

        A missing or expired key starts again from ``val``.
        """
        val = operator.index(val)
        now = self._clock()
        expires_at = normalize_ttl(epoch_seconds, now)
        with self._write() as db:
            count, item = self._add(db, key, val, now)
            db.execute(_SAVE, (key, count, item.string_set, item.dictionary, expires_at))
        return count

    def _add(self, db: sqlite3.Connection, key: str, val: int, now: float) -> tuple[int, _Item]:
        item = self._load(db, key, now) or _EMPTY
        return (item.int_count or 0) + val, item

    def reset_counter(self, key: str) -> None:
        """Remove the counter; the key's expiry and its other values are kept."""
        with self._write() as db:
            db.execute("UPDATE kv SET int_count = NULL WHERE key = ?", (key,))

    def evaluate_threshold(self, key: str, threshold: int = 10, expiry_seconds: object = 3600) -> bool:
        """Increment by one; when the count reaches ``threshold``, reset it and return True.

        Unlike two separate calls, the increment and the reset are one transaction, so among
        concurrent callers exactly one sees each crossing of the threshold.
        """
        now = self._clock()
        expires_at = normalize_ttl(expiry_seconds, now)
        with self._write() as db:
            count, item = self._add(db, key, 1, now)
            reached = count >= threshold
            db.execute(_SAVE, (key, None if reached else count, item.string_set, item.dictionary, expires_at))
        return reached

    # -- string sets ---------------------------------------------------------------------------

    def get_string_set(self, key: str) -> set[str]:
        """A copy of the string set; empty when the key is missing, expired or has no set."""
        item = self._read(key)
        if item is None or item.string_set is None:
            return set()
        return set(json.loads(item.string_set))

    def put_string_set(self, key: str, val: Iterable[str], epoch_seconds: object = None) -> None:
        """Replace the whole item with this string set (any counter or dictionary under the key goes).

        An empty ``val`` only removes the set, like ``reset_string_set``. A str is iterated, so it
        stores its characters, as the reference does.
        """
        items = _only_strings(set(val)) if val else set()
        if not items:
            self.reset_string_set(key)
            return
        now = self._clock()
        expires_at = normalize_ttl(epoch_seconds, now)
        with self._write() as db:
            db.execute(_SAVE, (key, None, _encode_set(items), None, expires_at))

    def add_to_string_set(self, key: str, val: str | Iterable[str], epoch_seconds: object = None) -> set[str]:
        """Add one str or an iterable of str, refresh the expiry, and return the new set.

        A missing or expired key gets a new set holding just ``val``. An empty iterable changes
        nothing and returns the current set.
        """
        items = _as_string_set(val)
        if not items:
            return self.get_string_set(key)
        now = self._clock()
        expires_at = normalize_ttl(epoch_seconds, now)
        with self._write() as db:
            item = self._load(db, key, now) or _EMPTY
            if item.string_set is not None:
                items.update(json.loads(item.string_set))
            db.execute(_SAVE, (key, item.int_count, _encode_set(items), item.dictionary, expires_at))
        return items

    def remove_from_string_set(
        self, key: str, val: str | Iterable[str], epoch_seconds: object = None
    ) -> set[str]:
        """Remove one str or an iterable of str, refresh the expiry, and return what is left.

        A missing or expired key returns an empty set and its expiry is not touched. An empty
        iterable changes nothing and returns the current set.
        """
        items = _as_string_set(val)
        if not items:
            return self.get_string_set(key)
        now = self._clock()
        expires_at = normalize_ttl(epoch_seconds, now)
        with self._write() as db:
            item = self._load(db, key, now)
            if item is None:
                return set()
            remaining = set(json.loads(item.string_set)) - items if item.string_set is not None else set()
            db.execute(_SAVE, (key, item.int_count, _encode_set(remaining), item.dictionary, expires_at))
        return remaining

    def reset_string_set(self, key: str) -> None:
        """Remove the string set; the key's expiry and its other values are kept."""
        with self._write() as db:
            db.execute("UPDATE kv SET string_set = NULL WHERE key = ?", (key,))

    # -- dictionaries --------------------------------------------------------------------------

    def put_dictionary(self, key: str, val: Mapping[str, Any], epoch_seconds: object = None) -> None:
        """Replace the whole item with this dictionary (any counter or string set under the key goes).

        TypeError when ``val`` is not a mapping; ValueError when the stdlib json module cannot
        serialise it (which includes mappings that are not dicts). Non-str keys such as ints come
        back as strings, as JSON has only string keys.
        """
        if not isinstance(val, Mapping):
            raise TypeError("panther_oss_helpers.put_dictionary: value is not a dictionary")
        try:
            data = json.dumps(val)
        except TypeError as exc:
            raise ValueError(
                "panther_oss_helpers.put_dictionary: value is a dictionary, but it is not JSON serializable"
            ) from exc
        now = self._clock()
        expires_at = normalize_ttl(epoch_seconds, now)
        with self._write() as db:
            db.execute(_SAVE, (key, None, None, data, expires_at))

    def get_dictionary(self, key: str) -> dict[str, Any]:
        """The stored dictionary (a fresh copy); ``{}`` when missing or expired; ValueError on bad JSON."""
        item = self._read(key)
        if item is None or not item.dictionary:
            return {}
        try:
            return json.loads(item.dictionary)
        except json.JSONDecodeError as exc:
            raise ValueError(
                "panther_oss_helpers.get_dictionary: Data found in the key-value store could not be "
                "decoded into JSON"
            ) from exc


_default: KVStore | None = None


def default_store() -> KVStore:
    """The store the compatibility ``caching`` module uses.

    Unless ``set_default_store`` chose one, it is opened on first use: on the file named by the
    ``ONCA_KV_PATH`` environment variable when that is set, else in memory (so ``onca test`` never
    writes files).
    """
    global _default
    if _default is None:
        with _open_lock:
            if _default is None:
                _default = KVStore(os.environ.get(KV_PATH_ENV) or None)
    return _default


def set_default_store(store: KVStore | None) -> None:
    """Make ``store`` the default; None makes the next ``default_store()`` call open one afresh.

    The previous store is not closed: whoever created it owns it.
    """
    global _default
    _default = store
