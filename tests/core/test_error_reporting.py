"""Error reporting: off when SentryEnvironment or the DSN is blank; on, events reach the DSN's host."""

from __future__ import annotations

import gzip
import json
import stat
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sentry_sdk

from onca.core import error_reporting


@pytest.fixture(autouse=True)
def no_client_left() -> Iterator[None]:
    yield
    error_reporting.shutdown()


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """An HTTP server on 127.0.0.1 standing in for Sentry: (base URL, received (path, body) pairs)."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding == "br":
                import brotli  # only when the SDK picked brotli because it is installed

                body = brotli.decompress(body)
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("environment", "dsn"), [
    ("", "http://key@127.0.0.1:9/1"),
    ("prod", ""),
    ("", ""),
])
def test_blank_environment_or_dsn_disables(home: Path, environment: str, dsn: str) -> None:
    error_reporting.write_config(home, environment, dsn)
    assert not error_reporting.configure(home)
    assert not sentry_sdk.get_client().is_active()


def test_no_config_means_off(home: Path) -> None:
    assert not error_reporting.configure(home)


def test_config_file_is_private_and_dsn_encrypted(home: Path) -> None:
    dsn = "https://secretkey@sentry.example.com/42"
    path = error_reporting.write_config(home, "prod", dsn)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["dsn_encryption"] == "fernet" and "secretkey" not in path.read_text()
    assert error_reporting.read_config(home) == error_reporting.ErrorReportingConfig("prod", dsn)


def test_without_keyring_the_file_mode_protects_the_dsn(tmp_path: Path) -> None:
    path = error_reporting.write_config(tmp_path, "prod", "https://k@sentry.example.com/1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["dsn_encryption"] == "none"
    assert error_reporting.read_config(tmp_path).dsn == "https://k@sentry.example.com/1"


def test_enabled_reports_reach_the_dsn_host(home: Path, collector: tuple[str, list[tuple[str, bytes]]]) -> None:
    address, received = collector
    error_reporting.write_config(home, "staging", f"http://publickey@{address}/7")
    assert error_reporting.configure(home, release="onca@9.9.9")
    try:
        raise RuntimeError("boom from the test")
    except RuntimeError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=10)
    assert received, "no event reached the local DSN server"
    path, body = received[0]
    assert path.startswith("/api/7/envelope/")
    assert b"boom from the test" in body
    items = [json.loads(line) for line in body.splitlines() if line.strip().startswith(b"{")]
    event = next(item for item in items if item.get("exception"))
    assert event["environment"] == "staging" and event["release"] == "onca@9.9.9"
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert all("vars" not in frame for frame in frames)  # local variables may hold log data: never sent


def test_turning_it_off_closes_the_client(home: Path, collector: tuple[str, list[tuple[str, bytes]]]) -> None:
    address, _ = collector
    error_reporting.write_config(home, "prod", f"http://publickey@{address}/1")
    assert error_reporting.configure(home)
    error_reporting.write_config(home, "", f"http://publickey@{address}/1")
    assert not error_reporting.configure(home)
    assert not sentry_sdk.get_client().is_active()
