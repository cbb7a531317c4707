"""HTTP push intake: `POST /ingest/<source-name>` with `Authorization: Bearer <token>` into the spool.

The body is NDJSON, a JSON array (each element becomes one record), a single JSON document, or text lines;
optionally gzip (`Content-Encoding: gzip`). Records are bytes: malformed JSON is not refused here, it is
spooled and quarantined downstream. The answer is 202 `{"accepted": N}` only after the records are durable
in the spool. Errors: 400 (bad gzip, bad Content-Length or chunking), 401 (missing or wrong token; the same
answer whatever was wrong), 404 (unknown path or, for a valid token, unknown source), 408 (body not
received in time), 411, 413 (body or decoded body over the limit), 415 (other content encodings), 503 (spool
unavailable, or too many connections). `GET /healthz` answers 200.

Slow clients: every socket read has a timeout, the request line and headers must arrive within
`header_timeout` (a reaper thread shuts down connections past it, so a client trickling header bytes is cut
off too), and the body within `body_timeout`. Each connection has its own thread (ThreadingHTTPServer), so
a stalled client never blocks another; `max_connections` bounds the threads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import orjson

from onca.pipeline.connections import BoundedConnections
from onca.pipeline.spool import Spool, SpoolError

log = logging.getLogger(__name__)

MiB = 1 << 20
_READ_CHUNK = 256 << 10


class SourceDirectory(Protocol):
    """What the intake needs to know about sources (onca.pipeline.tokens.TokenIndex implements it)."""

    def source(self, name: str) -> Any | None: ...  # an object with .name, or None

    def authenticate(self, token: str) -> Any | None: ...  # the enabled source holding the token, or None


@dataclass(slots=True)
class HttpIntakeConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see HttpIntake.address)
    max_body_bytes: int = 16 * MiB  # as sent (compressed when gzip)
    max_decoded_bytes: int = 64 * MiB  # after gunzip: bounds a decompression bomb
    header_timeout: float = 10.0  # request line and headers, from the first byte
    body_timeout: float = 60.0  # the whole body
    io_timeout: float = 10.0  # any single socket read or write
    keepalive_timeout: float = 60.0  # idle time between requests on a kept-alive connection
    max_connections: int = 512


class HttpError(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def split_records(body: bytes) -> list[bytes]:
    """The records of a request body: JSON array elements, one JSON document, or lines (NDJSON or text)."""
    head = body.lstrip()[:1]
    if head == b"[" or head == b"{":
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            value = None  # NDJSON (trailing content after the first object) or malformed: read as lines
        if isinstance(value, list):
            return [orjson.dumps(v) for v in value]
        if isinstance(value, dict):
            return [body.strip()] if b"\n" not in body.strip() else [orjson.dumps(value)]
    records = []
    for line in body.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            records.append(line)
    return records


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip (every member of a multi-member file), refusing output beyond `limit` bytes."""
    out: list[bytes] = []
    total = 0
    while data:
        d = zlib.decompressobj(wbits=31)
        try:
            chunk = d.decompress(data, limit - total + 1)
            total += len(chunk)
            out.append(chunk)
            while d.unconsumed_tail and total <= limit:
                chunk = d.decompress(d.unconsumed_tail, limit - total + 1)
                total += len(chunk)
                out.append(chunk)
        except zlib.error as exc:
            raise HttpError(400, f"undecodable gzip body: {exc}") from None
        if total > limit:
            raise HttpError(413, f"decoded body larger than {limit} bytes")
        if not d.eof:
            raise HttpError(400, "undecodable gzip body: truncated")
        data = d.unused_data.lstrip(b"\x00")  # some writers pad members with NULs
    return b"".join(out)


class _Server(BoundedConnections, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, intake: HttpIntake) -> None:
        self.intake = intake
        self._deadlines: dict[socket.socket, float] = {}
        self._dl_lock = threading.Lock()
        self.limit_connections(intake.config.max_connections)
        super().__init__((intake.config.host, intake.config.port), _Handler)

    # Header deadlines: a reaper shuts down connections whose request line and headers are overdue.
    def watch(self, conn: socket.socket, deadline: float) -> None:
        with self._dl_lock:
            self._deadlines[conn] = deadline

    def unwatch(self, conn: socket.socket) -> None:
        with self._dl_lock:
            self._deadlines.pop(conn, None)

    def reap(self) -> None:
        now = time.monotonic()
        with self._dl_lock:
            late = [c for c, d in self._deadlines.items() if d <= now]
            for conn in late:
                del self._deadlines[conn]
        for conn in late:
            self.intake._count("timed_out_headers")
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def refuse(self, request: Any) -> None:
        self.intake._count("rejected_connections")
        with contextlib.suppress(OSError):
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def finished(self, request: Any) -> None:
        self.unwatch(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server
    server_version = "onca-intake"
    sys_version = ""

    def setup(self) -> None:
        self.timeout = self.server.intake.config.io_timeout
        super().setup()

    def handle_one_request(self) -> None:
        config = self.server.intake.config
        # Idle keep-alive wait first, with its own timeout; the header deadline starts at the first byte.
        self.connection.settimeout(config.keepalive_timeout)
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                self.close_connection = True
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        self.connection.settimeout(config.io_timeout)
        self.server.watch(self.connection, time.monotonic() + config.header_timeout)
        try:
            super().handle_one_request()
        except (ConnectionError, OSError):
            self.close_connection = True
        finally:
            self.server.unwatch(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.unwatch(self.connection)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, {"status": "ok"})
        elif path == "/metrics" and self.server.intake.metrics is not None:
            body = self.server.intake.metrics().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.server.unwatch(self.connection)
        intake = self.server.intake
        started = time.monotonic()
        try:
            accepted = self._ingest(intake, started)
        except HttpError as exc:
            intake._count(f"status_{exc.status}")
            self._reply(exc.status, {"error": exc.message}, close=exc.close)
            return
        intake._count("status_202")
        self._reply(202, {"accepted": accepted})

    def _ingest(self, intake: HttpIntake, started: float) -> int:
        path = self.path.split("?", 1)[0]
        if not path.startswith("/ingest/") or "/" in path[len("/ingest/") :].strip("/"):
            raise HttpError(404, "not found", close=True)
        name = unquote(path[len("/ingest/") :].strip("/"))
        # Authentication before anything else: no answer reveals whether a source exists to a caller
        # without a valid token. The body is unread, so the connection is closed after an error.
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        known = intake.sources.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if known is None:
            raise HttpError(401, "missing or invalid token", close=True)
        if intake.sources.source(name) is None:
            raise HttpError(404, "unknown source", close=True)
        if known.name != name:
            raise HttpError(401, "missing or invalid token", close=True)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", ""):
            raise HttpError(415, f"unsupported Content-Encoding {encoding!r}", close=True)
        body = self._read_body(intake.config, started)
        if encoding in ("gzip", "x-gzip"):
            body = gunzip(body, intake.config.max_decoded_bytes)
        records = split_records(body)
        if records:
            try:
                intake.spool.append(name, records)
            except (SpoolError, OSError) as exc:
                log.error("spool append failed: %s", exc)
                raise HttpError(503, "spool unavailable") from None
        intake._count("accepted_records", len(records))
        intake._count("accepted_bytes", len(body))
        return len(records)

    def _read_body(self, config: HttpIntakeConfig, started: float) -> bytes:
        deadline = started + config.body_timeout
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(config, deadline)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise HttpError(411, "Content-Length or chunked Transfer-Encoding required", close=True)
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HttpError(400, "bad Content-Length", close=True) from None
        if length > config.max_body_bytes:
            raise HttpError(413, f"body larger than {config.max_body_bytes} bytes", close=True)
        return self._read_exact(length, deadline)

    def _read_exact(self, length: int, deadline: float) -> bytes:
        buf = bytearray(length)
        view = memoryview(buf)
        got = 0
        while got < length:
            if time.monotonic() > deadline:
                raise HttpError(408, "body not received in time", close=True)
            try:
                n = self.rfile.readinto(view[got : min(length, got + _READ_CHUNK)])  # type: ignore[attr-defined]
            except TimeoutError:
                raise HttpError(408, "body not received in time", close=True) from None
            if not n:
                raise HttpError(400, "body shorter than Content-Length", close=True)
            got += n
        return bytes(buf)

    def _read_line(self, deadline: float) -> bytes:
        if time.monotonic() > deadline:
            raise HttpError(408, "body not received in time", close=True)
        try:
            line = self.rfile.readline(1024)
        except TimeoutError:
            raise HttpError(408, "body not received in time", close=True) from None
        if not line.endswith(b"\n"):
            raise HttpError(400, "bad chunked encoding", close=True)
        return line

    def _read_chunked(self, config: HttpIntakeConfig, deadline: float) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self._read_line(deadline)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "bad chunked encoding", close=True) from None
            if size == 0:
                while self._read_line(deadline) not in (b"\r\n", b"\n"):  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > config.max_body_bytes:
                raise HttpError(413, f"body larger than {config.max_body_bytes} bytes", close=True)
            parts.append(self._read_exact(size, deadline))
            if self._read_line(deadline).strip():
                raise HttpError(400, "bad chunked encoding", close=True)


class HttpIntake:
    """The HTTP push intake server. `start()` serves in background threads; `stop()` ends it."""

    def __init__(self, spool: Spool, sources: SourceDirectory, config: HttpIntakeConfig | None = None) -> None:
        self.spool = spool
        self.sources = sources
        self.config = config or HttpIntakeConfig()
        # Prometheus text for GET /metrics, supplied by whatever runs the intake (onca serve).
        self.metrics: Callable[[], str] | None = None
        self._counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._server = _Server(self)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def _count(self, name: str, n: int = 1) -> None:
        with self._counter_lock:
            self._counters[name] += n

    def stats(self) -> dict[str, int]:
        with self._counter_lock:
            return dict(self._counters)

    def _reaper(self) -> None:
        while not self._stop.wait(0.2):
            self._server.reap()

    def start(self) -> None:
        serve = (lambda: self._server.serve_forever(poll_interval=0.1), "serve")
        for target, name in (serve, (self._reaper, "reaper")):
            thread = threading.Thread(target=target, name=f"intake-http-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def serve_forever(self) -> None:
        self.start()
        for thread in self._threads:
            thread.join()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    """Run the HTTP intake alone (for tests and benchmarks): `python -m onca.pipeline.intake_http`."""
    from onca.pipeline.tokens import TokenIndex
    from onca.store.db import make_engine

    parser = argparse.ArgumentParser(prog="python -m onca.pipeline.intake_http")
    parser.add_argument("--spool", required=True)
    parser.add_argument("--db", required=True, help="metadata database URL (sources and their tokens)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", help="write host:port here once listening")
    args = parser.parse_args(argv)
    spool = Spool(args.spool)
    intake = HttpIntake(spool, TokenIndex(make_engine(args.db)), HttpIntakeConfig(host=args.host, port=args.port))
    if args.ready_file:
        host, port = intake.address
        tmp = Path(args.ready_file + ".tmp")
        tmp.write_text(f"{host}:{port}")
        tmp.rename(args.ready_file)
    intake.serve_forever()


if __name__ == "__main__":
    main()
