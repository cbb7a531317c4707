"""A migrated SQLite metadata database, a deployment home with a keyring, and a local SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from onca.deploy.parameters import resolve
from onca.deploy.resources import DeployContext


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    (folder / "config").mkdir(parents=True)
    # What the bootstrap component creates before core runs.
    (folder / "config" / "keyring.key").write_bytes(Fernet.generate_key())
    return folder


@pytest.fixture
def session(session_factory: Callable[[], Any]) -> Iterator[Session]:
    with session_factory() as active:
        yield active


@dataclass
class ContextMaker:
    home: Path
    warnings: list[str] = field(default_factory=list)

    def __call__(self, first: bool = True, previous: dict[str, Any] | None = None, **params: Any) -> DeployContext:
        params.setdefault("FirstUserEmail", "admin@example.com")
        values, warnings = resolve(params, previous)
        self.warnings += warnings
        return DeployContext(home=self.home, stack_name="onca-test", params=values, version="0.1.0",
                             first_deploy=first, warn=self.warnings.append)


@pytest.fixture
def make_ctx(home: Path, database_url: str) -> ContextMaker:
    return ContextMaker(home)


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.envelopes.append(envelope)
        self.box.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Mailbox]]:
    """Start aiosmtpd servers on 127.0.0.1: `smtp_server(**controller_kwargs) -> Mailbox`."""
    from aiosmtpd.controller import Controller

    started: list[Controller] = []

    def start(**kwargs: Any) -> Mailbox:
        box = Mailbox("127.0.0.1", free_port())
        controller = Controller(_Handler(box), hostname=box.host, port=box.port, **kwargs)
        controller.start()
        started.append(controller)
        return box

    yield start
    for controller in started:
        controller.stop()
