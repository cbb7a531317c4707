"""The durable spool: an append-only log of record batches between the intakes and the workers.

Layout of the spool directory (normally `<home>/spool/`)::

    LOCK                          flock()ed by the one process that appends
    00000000000000000001.seg      segments, named by the position of their first entry (20 digits)
    00000000000000004711.seg
    consumers/<name>.ckpt         one checkpoint per registered consumer: {"position": N}

A segment starts with the 8-byte magic `ONCASPL1`, then entries. An entry is a 20-byte header and a body::

    header: body length (u32) | position (u64) | crc32(body) (u32) | crc32(the 16 header bytes before it) (u32)
    body:   len(source_id) (u16) | source_id (UTF-8) | record count (u32) | per record: length (u32) | bytes

all big-endian. **Positions** are global monotonic integers starting at 1, one per entry, never reused (the
active segment is never deleted, so the next position survives full consumption). A checkpoint of N means
"every entry with position <= N is done"; 0 means nothing is. Downstream names lake batches after positions,
so a re-delivered entry produces the same batch name (exactly-once into the lake).

**Durability.** `append` returns only after the entry is fdatasync()ed; concurrent appenders share fsyncs
(group commit: one thread syncs while the others keep writing, then everything written so far is durable).
Readers in the appending process never see an entry before it is durable. A crash mid-write leaves a torn
entry at the end of the last segment: on open it fails its length or crc check and is truncated, so it is
never delivered and its position is handed out again (it was never acknowledged, nor seen by any reader).
If a write fails (disk full) the partial entry is cut off again; if fsync fails the spool refuses all
further appends (after a failed fsync the kernel may have dropped the dirty pages: nothing can be trusted).

**Concurrency.** Any number of appender threads in one process (one lock); one process appends at a time
(the LOCK file enforces it: a second writable open raises SpoolLocked). Multiple appending processes are
not supported. Each consumer has one reader at a time. A reader may also run in another process on a
`Spool(dir, readonly=True)`: it then reads up to the last complete, crc-valid entry and fdatasync()s the
segment before delivering (so what it hands out is durable even if the appender had not synced yet).

**Deletion.** A segment is deleted when every registered consumer's checkpoint is at or past its last
entry; the active (last) segment never is. With no registered consumer nothing is deleted. A consumer
registered late starts at the oldest retained entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from onca.lake.layout import fsync_dir

MAGIC = b"ONCASPL1"
_HEADER = struct.Struct(">IQII")
_HEAD16 = struct.Struct(">IQI")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
HEADER_BYTES = _HEADER.size
SEGMENT_BYTES = 64 << 20
MAX_BODY = (1 << 32) - 1
_SEGMENT_NAME = re.compile(r"^(\d{20})\.seg$")
_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_READ_CHUNK = 1 << 20


class SpoolError(RuntimeError):
    """The spool cannot do what was asked."""


class SpoolLocked(SpoolError):
    """Another process has this spool open for appending."""


class SpoolCorrupt(SpoolError):
    """A segment other than the last holds an invalid entry (disk damage, or a file edited by hand)."""


class Entry(NamedTuple):
    position: int
    source_id: str
    records: list[bytes]


class _Watermark(NamedTuple):
    """The end of what is durable: the segment (by first position), the byte offset in it, the last position."""

    segment: int
    offset: int
    position: int


def encode_body(source_id: str, records: list[bytes]) -> bytes:
    src = source_id.encode()
    if len(src) > 0xFFFF:
        raise SpoolError("source id longer than 65535 bytes")
    parts = [_U16.pack(len(src)), src, _U32.pack(len(records))]
    pack = _U32.pack
    for record in records:
        parts.append(pack(len(record)))
        parts.append(record)
    return b"".join(parts)


def decode_body(body: bytes) -> tuple[str, list[bytes]]:
    (n,) = _U16.unpack_from(body, 0)
    source_id = body[2 : 2 + n].decode()
    at = 2 + n
    (count,) = _U32.unpack_from(body, at)
    at += 4
    records = []
    unpack = _U32.unpack_from
    for _ in range(count):
        (length,) = unpack(body, at)
        at += 4
        records.append(body[at : at + length])
        at += length
    if at != len(body):
        raise SpoolCorrupt("entry body does not match its record lengths")
    return source_id, records


def _header(position: int, body: bytes) -> bytes:
    head16 = _HEAD16.pack(len(body), position, zlib.crc32(body))
    return head16 + _U32.pack(zlib.crc32(head16))


class _Scan(NamedTuple):
    entries: list[tuple[int, int, bytes]]  # (position, end offset, body)
    offset: int  # where scanning stopped
    status: str  # "end" (clean end or limit), "torn" (incomplete or invalid entry at `offset`), "full"


def _scan(f: object, offset: int, limit: int | None, max_entries: int, expect: int | None) -> _Scan:
    """Read valid entries from an open segment file, starting at `offset`, stopping before `limit` bytes.

    `expect` is the position the first entry must have (None: any); positions must then be consecutive.
    """
    entries: list[tuple[int, int, bytes]] = []
    f.seek(offset)  # type: ignore[attr-defined]
    while len(entries) < max_entries:
        if limit is not None and offset >= limit:
            return _Scan(entries, offset, "end")
        head = f.read(HEADER_BYTES)  # type: ignore[attr-defined]
        if not head:
            return _Scan(entries, offset, "end")
        if len(head) < HEADER_BYTES:
            return _Scan(entries, offset, "torn")
        length, position, body_crc, head_crc = _HEADER.unpack(head)
        if zlib.crc32(head[:16]) != head_crc or (expect is not None and position != expect):
            return _Scan(entries, offset, "torn")
        body = f.read(length)  # type: ignore[attr-defined]
        if len(body) < length or zlib.crc32(body) != body_crc:
            return _Scan(entries, offset, "torn")
        offset += HEADER_BYTES + length
        entries.append((position, offset, body))
        expect = position + 1
    return _Scan(entries, offset, "full")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _segment_name(first: int) -> str:
    return f"{first:020d}.seg"


class Spool:
    """A durable, segmented, append-only spool. See the module docstring for format and guarantees."""

    def __init__(self, directory: str | os.PathLike[str], *, segment_bytes: int = SEGMENT_BYTES,
                 readonly: bool = False) -> None:
        self.dir = Path(directory)
        self.segment_bytes = segment_bytes
        self.readonly = readonly
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._failed: str | None = None
        self._syncing = False
        self._fd = -1
        self._lock_fd = -1
        self._consumers_dir = self.dir / "consumers"
        self.torn_bytes = 0  # bytes cut off the last segment when it was opened (a crash mid-write)
        if readonly:
            if not self.dir.is_dir():
                raise SpoolError(f"no spool at {self.dir}")
            self._durable: _Watermark | None = None
            return
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._consumers_dir.mkdir(exist_ok=True, mode=0o700)
        self._lock_fd = os.open(self.dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLocked(f"the spool at {self.dir} is open for appending in another process") from None
        self._recover()

    # -- opening -------------------------------------------------------------------------------------

    def segments(self) -> list[int]:
        """First positions of the segments on disk, oldest first."""
        firsts = []
        for name in os.listdir(self.dir):
            m = _SEGMENT_NAME.match(name)
            if m:
                firsts.append(int(m.group(1)))
        return sorted(firsts)

    def _path(self, first: int) -> Path:
        return self.dir / _segment_name(first)

    def _recover(self) -> None:
        """Open the last segment for appending, cutting off a torn tail (an entry whose write never finished)."""
        segments = self.segments()
        if not segments:
            self._create_segment(1)
            segments = [1]
        first = segments[-1]
        path = self._path(first)
        with open(path, "rb") as f:
            magic = f.read(len(MAGIC))
            if magic != MAGIC:
                if len(magic) == len(MAGIC):
                    raise SpoolCorrupt(f"{path.name} is not a spool segment")
                end, last = len(MAGIC), first - 1  # crash while creating the segment: start it again
                self.torn_bytes = os.path.getsize(path)
                with open(path, "r+b") as w:
                    w.truncate(0)
                    w.write(MAGIC)
                    w.flush()
                    os.fsync(w.fileno())
            else:
                end, last = len(MAGIC), first - 1
                while True:
                    scan = _scan(f, end, None, 4096, last + 1)
                    if scan.entries:
                        end, last = scan.entries[-1][1], scan.entries[-1][0]
                    if scan.status != "full":
                        break
                size = os.path.getsize(path)
                self.torn_bytes = size - end
                if size != end:
                    with open(path, "r+b") as w:
                        w.truncate(end)
                        os.fsync(w.fileno())
        self._active = first
        self._size = end
        self._next = last + 1
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._written = self._durable = _Watermark(first, end, last)

    def _create_segment(self, first: int) -> None:
        fd = os.open(self._path(first), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, MAGIC)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.dir)

    # -- appending -----------------------------------------------------------------------------------

    def append(self, source_id: str, records: list[bytes]) -> int:
        """Write one entry and return its position once it is durable (fdatasync()ed)."""
        if self.readonly:
            raise SpoolError("the spool is open read-only")
        body = encode_body(source_id, records)
        if len(body) > MAX_BODY:
            raise SpoolError("entry larger than 4 GiB")
        with self._cond:
            self._check_writable()
            while self._size >= self.segment_bytes:
                self._roll()
            position = self._next
            head = _header(position, body)
            try:
                written = os.writev(self._fd, [head, body])
                if written < len(head) + len(body):  # regular files write whole unless the disk is full
                    rest = (head + body)[written:]
                    while rest:
                        rest = rest[os.write(self._fd, rest) :]
            except OSError:
                # Cut off the partial entry so the next append does not land after garbage.
                os.ftruncate(self._fd, self._size)
                raise
            self._next = position + 1
            self._size += len(head) + len(body)
            self._written = _Watermark(self._active, self._size, position)
            self._wait_durable(position)
        return position

    def _check_writable(self) -> None:
        if self._closed:
            raise SpoolError("the spool is closed")
        if self._failed:
            raise SpoolError(f"the spool refuses appends after a failed fsync: {self._failed}")

    def _wait_durable(self, position: int) -> None:
        """Group commit; called with the lock held. One thread syncs, the rest wait or keep writing."""
        assert self._durable is not None
        while self._durable.position < position:
            if self._failed:
                raise SpoolError(f"fsync failed: {self._failed}")
            if self._syncing:
                self._cond.wait()
                continue
            self._syncing = True
            target, fd = self._written, self._fd
            self._cond.release()
            try:
                os.fdatasync(fd)
            except OSError as exc:
                self._cond.acquire()
                self._failed = str(exc)
                self._syncing = False
                self._cond.notify_all()
                raise
            self._cond.acquire()
            self._syncing = False
            if target.position > self._durable.position:
                self._durable = target
            self._cond.notify_all()

    def _roll(self) -> None:
        """Start a new segment (lock held). The old one is synced first: segments before the last are whole."""
        while self._syncing:  # the syncing thread uses self._fd without the lock
            self._cond.wait()
        if self._size < self.segment_bytes:  # another thread rolled while this one waited
            return
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._durable = self._written
        first = self._next
        self._create_segment(first)
        self._active, self._size = first, len(MAGIC)
        self._fd = os.open(self._path(first), os.O_WRONLY | os.O_APPEND)
        self._written = self._durable = _Watermark(first, self._size, first - 1)
        self._cond.notify_all()

    def last_position(self) -> int:
        """The position of the last durable entry (0 if none was ever written). Writable spools only."""
        if self._durable is None:
            raise SpoolError("last_position needs the appending spool")
        with self._cond:
            return self._durable.position

    # -- reading -------------------------------------------------------------------------------------

    def register(self, consumer: str) -> int:
        """Make `consumer` known (it then holds back segment deletion); returns its checkpoint."""
        path = self._checkpoint_path(consumer)
        if not path.exists():
            atomic_write(path, b'{"position": 0}')
        return self.checkpoint(consumer)

    def checkpoint(self, consumer: str) -> int:
        try:
            return int(json.loads(self._checkpoint_path(consumer).read_bytes())["position"])
        except FileNotFoundError:
            return 0

    def consumers(self) -> dict[str, int]:
        out = {}
        for name in os.listdir(self._consumers_dir):
            if name.endswith(".ckpt") and not name.startswith("."):
                out[name[:-5]] = self.checkpoint(name[:-5])
        return out

    def unregister(self, consumer: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._checkpoint_path(consumer).unlink()
        self.collect()

    def _checkpoint_path(self, consumer: str) -> Path:
        if not _CONSUMER_NAME.match(consumer):
            raise SpoolError(f"bad consumer name {consumer!r}")
        return self._consumers_dir / f"{consumer}.ckpt"

    def commit(self, consumer: str, position: int) -> None:
        """Persist `consumer`'s checkpoint atomically, then delete segments every consumer is done with."""
        if position < self.checkpoint(consumer):
            raise SpoolError(f"checkpoint of {consumer!r} cannot move back")
        atomic_write(self._checkpoint_path(consumer), json.dumps({"position": position}).encode())
        self.collect()

    def collect(self) -> list[int]:
        """Delete segments fully consumed by every registered consumer; returns their first positions."""
        done = self.consumers()
        if not done:
            return []
        low = min(done.values())
        segments = self.segments()
        deleted = []
        for first, following in itertools.pairwise(segments):
            if following - 1 > low:
                break
            with contextlib.suppress(FileNotFoundError):
                self._path(first).unlink()
            deleted.append(first)
        if deleted:
            fsync_dir(self.dir)
        return deleted

    def reader(self, consumer: str) -> SpoolReader:
        """A reader delivering the entries after `consumer`'s checkpoint (registering the consumer)."""
        return SpoolReader(self, consumer, self.register(consumer))

    def scan(self, after: int = 0, max_entries: int = 1 << 62) -> Iterator[Entry]:
        """Durable entries with position > `after`, in order, without a consumer (non-blocking)."""
        cursor = _Cursor(self, after + 1)
        while True:
            batch = cursor.read(min(max_entries, 1000))
            if not batch:
                return
            yield from batch
            max_entries -= len(batch)
            if max_entries <= 0:
                return

    def _limit(self) -> _Watermark | None:
        if self._durable is None:
            return None
        with self._cond:
            return self._durable

    def wait(self, after: int, timeout: float) -> None:
        """Block until an entry past `after` is durable, or the timeout passes."""
        deadline = time.monotonic() + timeout
        if self._durable is None:  # another process appends: poll
            time.sleep(min(timeout, 0.05))
            return
        with self._cond:
            while self._durable.position <= after and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def close(self) -> None:
        with self._cond:
            while self._syncing:
                self._cond.wait()
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
            self._cond.notify_all()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Cursor:
    """Sequential reading from a position on: segment by segment, up to the durable watermark."""

    def __init__(self, spool: Spool, next_position: int) -> None:
        self.spool = spool
        self.next = next_position
        self._segment: int | None = None
        self._offset = 0
        self._file: object | None = None

    def _locate(self) -> bool:
        segments = self.spool.segments()
        if not segments:
            return False
        candidates = [s for s in segments if s <= self.next]
        self._open(candidates[-1] if candidates else segments[0])
        if self._segment is not None and self._segment > self.next:
            self.next = self._segment  # older entries were deleted (a consumer registered late)
        return True

    def _open(self, first: int) -> None:
        self.close()
        try:
            self._file = open(self.spool._path(first), "rb")  # noqa: SIM115 - kept open across reads
        except FileNotFoundError:
            self._segment = None
            return
        self._segment = first
        self._offset = len(MAGIC)

    def read(self, max_entries: int) -> list[Entry]:
        out: list[Entry] = []
        retried = False
        while len(out) < max_entries:
            if self._file is None and (not self._locate() or self._file is None):
                return out
            limit = self.spool._limit()
            assert self._segment is not None
            active = limit is not None and limit.segment == self._segment
            if limit is not None and self._segment > limit.segment:
                return out
            scan = _scan(self._file, self._offset, limit.offset if active else None, max_entries - len(out), None)
            for position, _end, body in scan.entries:
                if position < self.next:
                    continue
                if position != self.next:
                    raise SpoolCorrupt(f"segment {self._segment}: expected position {self.next}, found {position}")
                source_id, records = decode_body(body)
                out.append(Entry(position, source_id, records))
                self.next = position + 1
            self._offset = scan.offset
            if scan.status == "full":
                continue
            if active:
                return out
            following = [s for s in self.spool.segments() if s > self._segment]
            if scan.status == "torn" or not following:
                if following and not retried:  # the appender finished the entry and rolled meanwhile
                    retried = True
                    continue
                if following:
                    raise SpoolCorrupt(f"segment {self._segment} has an invalid entry at offset {scan.offset}")
                # Read-only reader at the tail: the rest is being written. Make what we deliver durable.
                if out and limit is None:
                    os.fdatasync(self._file.fileno())  # type: ignore[attr-defined]
                return out
            if limit is None and out:
                os.fdatasync(self._file.fileno())  # type: ignore[attr-defined]
            self._open(following[0])
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # type: ignore[attr-defined]
            self._file = None


class SpoolReader:
    """Delivers a consumer's entries after its checkpoint, in order. One reader per consumer at a time.

    The in-memory cursor runs ahead of the checkpoint; after a restart delivery resumes after the last
    commit(), so entries read but not committed are delivered again (at-least-once; downstream makes it
    exactly-once by naming its output after the position).
    """

    def __init__(self, spool: Spool, consumer: str, checkpoint: int) -> None:
        self.spool = spool
        self.consumer = consumer
        self.committed = checkpoint
        self._cursor = _Cursor(spool, checkpoint + 1)

    @property
    def next_position(self) -> int:
        return self._cursor.next

    def read(self, max_entries: int = 1000, timeout: float = 0.0) -> list[Entry]:
        """Up to `max_entries` entries; waits up to `timeout` seconds when none is available."""
        batch = self._cursor.read(max_entries)
        if batch or timeout <= 0:
            return batch
        self.spool.wait(self._cursor.next - 1, timeout)
        return self._cursor.read(max_entries)

    def __iter__(self) -> Iterator[Entry]:
        """Every entry available now (ends when caught up with the durable end)."""
        while True:
            batch = self._cursor.read(1000)
            if not batch:
                return
            yield from batch

    def commit(self, position: int) -> None:
        self.spool.commit(self.consumer, position)
        self.committed = position

    def close(self) -> None:
        self._cursor.close()
