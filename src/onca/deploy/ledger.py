"""The deployment ledger: stacks, resources, operations, the step journal, events and the lock.

SQLite in the home, WAL with synchronous=FULL, one short transaction per write: after a crash the
ledger holds every event up to the last completed write, and the journal says exactly which steps of
an operation began and which finished, so the next run can finish the rollback. Events are never
deleted, including those of rolled-back and deleted stacks: they are the evidence `diagnose` reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS stacks (
    name TEXT PRIMARY KEY,
    root TEXT NOT NULL,
    component TEXT,
    position INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    version TEXT,
    parameters TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    stack TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    properties TEXT NOT NULL,
    outputs TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (stack, name)
);
CREATE TABLE IF NOT EXISTS operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    from_version TEXT,
    to_version TEXT,
    previous_parameters TEXT,
    parameters TEXT,
    snapshot TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    operation INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    stack TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    old_properties TEXT,
    old_outputs TEXT,
    new_properties TEXT,
    PRIMARY KEY (operation, seq)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation INTEGER,
    at REAL NOT NULL,
    stack TEXT NOT NULL,
    resource TEXT,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    operation TEXT NOT NULL,
    started_at REAL NOT NULL
);
"""

_INSERT_EVENT = "INSERT INTO events (operation, at, stack, resource, status, reason) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass
class StackRecord:
    name: str
    root: str
    component: str | None
    position: int
    status: str
    reason: str
    version: str | None
    parameters: dict[str, Any] | None
    created_at: float
    updated_at: float


@dataclass
class ResourceRecord:
    stack: str
    name: str
    position: int
    status: str
    properties: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Event:
    id: int
    operation: int | None
    at: float
    stack: str
    resource: str | None
    status: str
    reason: str


@dataclass
class Operation:
    id: int
    root: str
    kind: str
    status: str
    pid: int
    started_at: float
    finished_at: float | None
    from_version: str | None
    to_version: str | None
    previous_parameters: dict[str, Any] | None
    parameters: dict[str, Any] | None
    snapshot: str | None


@dataclass
class Step:
    operation: int
    seq: int
    stack: str
    resource: str
    action: str  # create | update | delete
    state: str  # started | done | undone | skipped
    old_properties: dict[str, Any] | None
    old_outputs: dict[str, Any] | None
    new_properties: dict[str, Any] | None


@dataclass
class LockInfo:
    owner: str
    host: str
    pid: int
    operation: str
    started_at: float

    @property
    def alive(self) -> bool:
        """True when the holder still runs here (a lock from another host is assumed alive)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class LockHeld(RuntimeError):
    def __init__(self, info: LockInfo) -> None:
        self.info = info
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started_at))
        super().__init__(f"another operation is in progress: {info.operation} by {info.owner} "
                         f"(pid {info.pid} on {info.host}, since {since})")


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Ledger:
    """The ledger of one deployment home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        # Called after every event is committed, e.g. to show progress while an operation runs.
        self.listener: Callable[[str, str | None, str, str], None] | None = None

    def _notify(self, stack: str, resource: str | None, status: str, reason: str) -> None:
        if self.listener is not None:
            self.listener(stack, resource, status, reason)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- lock ----------------------------------------------------------------------------------

    def lock_info(self) -> LockInfo | None:
        row = self._db.execute("SELECT owner, host, pid, operation, started_at FROM lock WHERE id = 1").fetchone()
        return LockInfo(**dict(row)) if row else None

    def acquire(self, operation: str) -> LockInfo | None:
        """Take the lock; returns the stale lock that was broken (holder dead), or None. Raises LockHeld."""
        owner = os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())
        with self._tx() as db:
            row = db.execute("SELECT owner, host, pid, operation, started_at FROM lock WHERE id = 1").fetchone()
            stale = None
            if row:
                info = LockInfo(**dict(row))
                if info.alive and info.pid != os.getpid():
                    raise LockHeld(info)
                stale = info
                db.execute("DELETE FROM lock WHERE id = 1")
            db.execute("INSERT INTO lock (id, owner, host, pid, operation, started_at) VALUES (1, ?, ?, ?, ?, ?)",
                       (owner, socket.gethostname(), os.getpid(), operation, time.time()))
        return stale

    def release(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM lock WHERE id = 1 AND pid = ?", (os.getpid(),))

    # ---- stacks --------------------------------------------------------------------------------

    def stack(self, name: str) -> StackRecord | None:
        row = self._db.execute("SELECT * FROM stacks WHERE name = ?", (name,)).fetchone()
        return self._stack(row) if row else None

    def stacks(self, root: str | None = None) -> list[StackRecord]:
        if root is None:
            rows = self._db.execute("SELECT * FROM stacks ORDER BY root, position").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM stacks WHERE root = ? ORDER BY position", (root,)).fetchall()
        return [self._stack(row) for row in rows]

    def roots(self) -> list[StackRecord]:
        rows = self._db.execute("SELECT * FROM stacks WHERE component IS NULL ORDER BY created_at").fetchall()
        return [self._stack(row) for row in rows]

    @staticmethod
    def _stack(row: sqlite3.Row) -> StackRecord:
        data = dict(row)
        data["parameters"] = _load(data["parameters"])
        return StackRecord(**data)

    def set_stack(self, name: str, *, root: str, status: str, reason: str = "", component: str | None = None,
                  position: int = 0, version: str | None = None, parameters: dict[str, Any] | None = None,
                  operation: int | None = None, resource_event: bool = True) -> None:
        """Create or update a stack record and log the status change as an event, atomically."""
        now = time.time()
        with self._tx() as db:
            existing = db.execute("SELECT version, parameters FROM stacks WHERE name = ?", (name,)).fetchone()
            if existing is None:
                db.execute("INSERT INTO stacks (name, root, component, position, status, reason, version, parameters,"
                           " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (name, root, component, position, status, reason, version, _dump(parameters), now, now))
            else:
                db.execute("UPDATE stacks SET status = ?, reason = ?, updated_at = ?,"
                           " version = COALESCE(?, version), parameters = COALESCE(?, parameters) WHERE name = ?",
                           (status, reason, now, version, _dump(parameters), name))
            if resource_event:
                db.execute(_INSERT_EVENT, (operation, now, name, None, status, reason))
        if resource_event:
            self._notify(name, None, status, reason)

    def record_deployed(self, root: str, version: str, parameters: dict[str, Any]) -> None:
        """The root's last complete version and parameters: what a failed update returns to."""
        with self._tx() as db:
            db.execute("UPDATE stacks SET version = ?, parameters = ? WHERE name = ?",
                       (version, _dump(parameters), root))

    # ---- resources -----------------------------------------------------------------------------

    def resources(self, stack: str) -> list[ResourceRecord]:
        rows = self._db.execute("SELECT stack, name, position, status, properties, outputs FROM resources"
                                " WHERE stack = ? ORDER BY position", (stack,)).fetchall()
        return [ResourceRecord(r["stack"], r["name"], r["position"], r["status"], json.loads(r["properties"]),
                               json.loads(r["outputs"])) for r in rows]

    def resource(self, stack: str, name: str) -> ResourceRecord | None:
        return next((r for r in self.resources(stack) if r.name == name), None)

    def set_resource(self, stack: str, name: str, *, position: int, status: str, properties: dict[str, Any],
                     outputs: dict[str, Any], operation: int | None, reason: str = "") -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO resources (stack, name, position, status, properties, outputs, updated_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (stack, name) DO UPDATE SET"
                       " position = excluded.position, status = excluded.status, properties = excluded.properties,"
                       " outputs = excluded.outputs, updated_at = excluded.updated_at",
                       (stack, name, position, status, _dump(properties), _dump(outputs), now))
            db.execute(_INSERT_EVENT, (operation, now, stack, name, status, reason))
        self._notify(stack, name, status, reason)

    def resource_event(self, stack: str, name: str, status: str, reason: str, operation: int | None) -> None:
        """An event about a resource whose recorded state does not change (a failure, a cancellation)."""
        self.event(stack, status, reason, operation=operation, resource=name)

    def drop_resource(self, stack: str, name: str, *, operation: int | None, reason: str = "") -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM resources WHERE stack = ? AND name = ?", (stack, name))
            db.execute(_INSERT_EVENT, (operation, now, stack, name, "DELETE_COMPLETE", reason))
        self._notify(stack, name, "DELETE_COMPLETE", reason)

    # ---- events --------------------------------------------------------------------------------

    def event(self, stack: str, status: str, reason: str = "", *, operation: int | None = None,
              resource: str | None = None) -> None:
        with self._tx() as db:
            db.execute(_INSERT_EVENT, (operation, time.time(), stack, resource, status, reason))
        self._notify(stack, resource, status, reason)

    def events(self, *, root: str | None = None, stack: str | None = None, operation: int | None = None) -> list[Event]:
        query = "SELECT e.* FROM events e"
        clauses: list[str] = []
        args: list[Any] = []
        if root is not None:
            query += " LEFT JOIN stacks s ON s.name = e.stack"
            clauses.append("(s.root = ? OR e.stack = ?)")
            args += [root, root]
        if stack is not None:
            clauses.append("e.stack = ?")
            args.append(stack)
        if operation is not None:
            clauses.append("e.operation = ?")
            args.append(operation)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY e.id"
        return [Event(**dict(row)) for row in self._db.execute(query, args).fetchall()]

    # ---- operations and the step journal -------------------------------------------------------

    def begin_operation(self, root: str, kind: str, *, from_version: str | None, to_version: str | None,
                        previous_parameters: dict[str, Any] | None, parameters: dict[str, Any] | None,
                        snapshot: str | None = None) -> int:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO operations (root, kind, status, pid, started_at, from_version, to_version,"
                " previous_parameters, parameters, snapshot) VALUES (?, ?, 'IN_PROGRESS', ?, ?, ?, ?, ?, ?, ?)",
                (root, kind, os.getpid(), time.time(), from_version, to_version, _dump(previous_parameters),
                 _dump(parameters), snapshot))
            return int(cursor.lastrowid or 0)

    def set_operation_snapshot(self, operation: int, snapshot: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE operations SET snapshot = ? WHERE id = ?", (snapshot, operation))

    def finish_operation(self, operation: int, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE operations SET status = ?, finished_at = ? WHERE id = ?",
                       (status, time.time(), operation))

    def operation(self, operation: int) -> Operation | None:
        row = self._db.execute("SELECT * FROM operations WHERE id = ?", (operation,)).fetchone()
        return self._operation(row) if row else None

    def operations(self, root: str) -> list[Operation]:
        rows = self._db.execute("SELECT * FROM operations WHERE root = ? ORDER BY id", (root,)).fetchall()
        return [self._operation(row) for row in rows]

    def unfinished_operation(self, root: str) -> Operation | None:
        row = self._db.execute("SELECT * FROM operations WHERE root = ? AND finished_at IS NULL ORDER BY id DESC",
                               (root,)).fetchone()
        return self._operation(row) if row else None

    @staticmethod
    def _operation(row: sqlite3.Row) -> Operation:
        data = dict(row)
        data["previous_parameters"] = _load(data["previous_parameters"])
        data["parameters"] = _load(data["parameters"])
        return Operation(**data)

    def begin_step(self, operation: int, stack: str, resource: str, action: str, *, old_properties: Any,
                   old_outputs: Any, new_properties: Any) -> int:
        with self._tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE operation = ?",
                             (operation,)).fetchone()[0]
            db.execute("INSERT INTO steps (operation, seq, stack, resource, action, state, old_properties, old_outputs,"
                       " new_properties) VALUES (?, ?, ?, ?, ?, 'started', ?, ?, ?)",
                       (operation, seq, stack, resource, action, _dump(old_properties), _dump(old_outputs),
                        _dump(new_properties)))
            return int(seq)

    def set_step(self, operation: int, seq: int, state: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE steps SET state = ? WHERE operation = ? AND seq = ?", (state, operation, seq))

    def steps(self, operation: int) -> list[Step]:
        rows = self._db.execute("SELECT * FROM steps WHERE operation = ? ORDER BY seq", (operation,)).fetchall()
        steps = []
        for row in rows:
            data = dict(row)
            for key in ("old_properties", "old_outputs", "new_properties"):
                data[key] = _load(data[key])
            steps.append(Step(**data))
        return steps
