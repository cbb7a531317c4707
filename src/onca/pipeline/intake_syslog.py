"""Syslog intake: UDP (one datagram = one record) and TCP (RFC 6587: octet-counting and newline framing,
detected per message) into the spool under one configured source.

Records are the raw messages (trailing CR, LF and NUL removed); parsing RFC 3164/5424 happens downstream.
Syslog has no acknowledgement, so messages are batched: a batch is appended when it reaches `max_records`
or `max_bytes`, or `flush_interval` after its first message. A crash loses at most the batch being
collected (what a sender can lose anyway: UDP is lossy, and TCP syslog has no application-level ack).
A full batch is appended by the receiving thread itself, so a slow disk slows the senders down (TCP
backpressure) instead of growing memory.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from dataclasses import dataclass

from onca.pipeline.connections import BoundedConnections
from onca.pipeline.spool import Spool

log = logging.getLogger(__name__)

_MAX_COUNT_DIGITS = 10


@dataclass(slots=True)
class SyslogConfig:
    host: str = "127.0.0.1"
    udp_port: int | None = 0  # None: no UDP listener; 0: any free port
    tcp_port: int | None = 0
    max_message_bytes: int = 64 << 10  # longer messages are truncated to this
    max_records: int = 1000
    max_bytes: int = 1 << 20
    flush_interval: float = 0.2
    tcp_idle_timeout: float = 600.0
    max_connections: int = 256
    udp_receive_buffer: int = 4 << 20


class Batcher:
    """Collects records and appends them to the spool as one entry per batch (thread-safe)."""

    def __init__(self, spool: Spool, source_id: str, max_records: int, max_bytes: int, interval: float) -> None:
        self.spool = spool
        self.source_id = source_id
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.interval = interval
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # appends in batch order
        self._records: list[bytes] = []
        self._bytes = 0
        self._since = 0.0
        self.appended = 0
        self.errors = 0

    def add(self, records: list[bytes]) -> None:
        if not records:
            return
        with self._lock:
            if not self._records:
                self._since = time.monotonic()
            self._records.extend(records)
            self._bytes += sum(len(r) for r in records)
            full = len(self._records) >= self.max_records or self._bytes >= self.max_bytes
        if full:
            self.flush()

    def due(self) -> bool:
        with self._lock:
            return bool(self._records) and time.monotonic() - self._since >= self.interval

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                records, self._records, self._bytes = self._records, [], 0
            if not records:
                return
            try:
                self.spool.append(self.source_id, records)
                self.appended += len(records)
            except Exception:
                self.errors += len(records)
                log.exception("syslog: %d records could not be spooled", len(records))


class SyslogFramer:
    """Splits a TCP byte stream into messages: octet-counting (`LEN SP MSG`) when a frame starts with a
    digit, otherwise newline-terminated (non-transparent framing). Oversized messages are truncated.
    """

    def __init__(self, max_message: int) -> None:
        self.max = max_message
        self._buf = bytearray()
        self._skip = 0  # octet-counted bytes still to discard (after truncating an oversized frame)
        self._skip_line = False  # discarding the rest of an oversized newline-framed message

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while buf:
            if self._skip:
                n = min(self._skip, len(buf))
                del buf[:n]
                self._skip -= n
                continue
            if self._skip_line:
                idx = buf.find(b"\n")
                if idx < 0:
                    buf.clear()
                    break
                del buf[: idx + 1]
                self._skip_line = False
                continue
            if 48 <= buf[0] <= 57:  # a digit: octet-counting
                space = buf.find(b" ", 0, _MAX_COUNT_DIGITS + 1)
                if space < 0:
                    if len(buf) <= _MAX_COUNT_DIGITS and buf.isdigit():
                        break  # the count is still arriving
                elif buf[:space].isdigit():
                    size = int(buf[:space])
                    start = space + 1
                    if size > self.max:
                        if len(buf) < start + self.max:
                            break
                        out.append(bytes(buf[start : start + self.max]))
                        del buf[: start + self.max]
                        self._skip = size - self.max
                        continue
                    if len(buf) < start + size:
                        break
                    out.append(_clean(bytes(buf[start : start + size])))
                    del buf[: start + size]
                    continue
            idx = buf.find(b"\n")
            if idx < 0:
                if len(buf) > self.max:
                    out.append(bytes(buf[: self.max]))
                    buf.clear()
                    self._skip_line = True
                break
            message = bytes(buf[: min(idx, self.max)])
            del buf[: idx + 1]
            message = _clean(message)
            if message:
                out.append(message)
        return out

    def finish(self) -> list[bytes]:
        """The last message of a stream closed without its trailer."""
        rest = _clean(bytes(self._buf[: self.max])) if not (self._skip or self._skip_line) else b""
        self._buf.clear()
        return [rest] if rest else []


def _clean(message: bytes) -> bytes:
    return message.rstrip(b"\r\n\x00")


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        intake = self.server.intake
        conn: socket.socket = self.request
        conn.settimeout(intake.config.tcp_idle_timeout)
        framer = SyslogFramer(intake.config.max_message_bytes)
        try:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                intake.batcher.add(framer.feed(data))
        except (TimeoutError, OSError):
            pass
        intake.batcher.add(framer.finish())


class _TcpServer(BoundedConnections, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, intake: SyslogIntake, address: tuple[str, int]) -> None:
        self.intake = intake
        self.limit_connections(intake.config.max_connections)
        super().__init__(address, _TcpHandler)


class SyslogIntake:
    """UDP and TCP syslog listeners feeding one source. `start()` runs them in threads; `stop()` flushes."""

    def __init__(self, spool: Spool, source_id: str, config: SyslogConfig | None = None) -> None:
        self.config = config or SyslogConfig()
        c = self.config
        self.batcher = Batcher(spool, source_id, c.max_records, c.max_bytes, c.flush_interval)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: _TcpServer | None = None
        if c.udp_port is not None:
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with contextlib.suppress(OSError):
                self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, c.udp_receive_buffer)
            self._udp.bind((c.host, c.udp_port))
            self._udp.settimeout(0.2)
        if c.tcp_port is not None:
            self._tcp = _TcpServer(self, (c.host, c.tcp_port))

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return self._udp.getsockname()[:2] if self._udp else None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp.server_address[:2] if self._tcp else None  # type: ignore[return-value]

    def _udp_loop(self) -> None:
        assert self._udp is not None
        size = self.config.max_message_bytes
        while not self._stop.is_set():
            try:
                data = self._udp.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            message = _clean(data[:size])
            if message:
                self.batcher.add([message])

    def _flush_loop(self) -> None:
        while not self._stop.wait(min(0.05, self.config.flush_interval / 2)):
            if self.batcher.due():
                self.batcher.flush()

    def start(self) -> None:
        targets = [self._flush_loop]
        if self._udp is not None:
            targets.append(self._udp_loop)
        if self._tcp is not None:
            targets.append(self._tcp.serve_forever)
        for target in targets:
            thread = threading.Thread(target=target, name=f"syslog-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._udp is not None:
            self._udp.close()
        self.batcher.flush()
