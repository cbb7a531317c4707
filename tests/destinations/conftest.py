"""Local servers for destination tests: an HTTP receiver that records requests, SMTP, moto; a deployment home."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from onca.destinations.base import Alert


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers with the queued responses in turn (then `default`), recording every request."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Captured] = field(default_factory=list)
    responses: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, str, dict[str, str]] = (200, "ok", {})
    delay: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def respond(self, status: int, body: str | dict[str, Any] = "", headers: dict[str, str] | None = None) -> None:
        text = json.dumps(body) if isinstance(body, dict) else body
        self.responses.append((status, text, headers or {}))


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Captured(self.command, self.path, dict(self.headers.items()), body))
            if receiver.delay:
                time.sleep(receiver.delay)
            status, text, headers = receiver.responses.pop(0) if receiver.responses else receiver.default
            data = text.encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def alert() -> Alert:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return Alert(id="a1b2c3d4e5f60718293a4b5c6d7e8f90", rule_id="AWS.Console.RootLogin",
                 title="Root login from 198.51.100.23", severity="HIGH", description="The root user signed in.",
                 reference="https://docs.example.com/root", runbook="Call the account owner.",
                 alert_context={"sourceIPAddress": "198.51.100.23"}, log_types=["AWS.CloudTrail"],
                 first_event_time=moment, last_event_time=moment, event_count=3,
                 link="https://onca.example.com/alerts/a1b2")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "keyring.key").write_bytes(Fernet.generate_key())
    return folder


@pytest.fixture
def fernet(home: Path) -> Fernet:
    return Fernet((home / "config" / "keyring.key").read_bytes())


@pytest.fixture
def smtp_box() -> Iterator[Any]:
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield type("Box", (), {"url": f"smtp://127.0.0.1:{port}", "messages": messages})
    controller.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake credentials for moto; never the user's real ones.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
