"""Browser tests: the machine's Chromium, driven by Playwright, against a real console on 127.0.0.1.

One console per test session (per xdist worker): a home deployed in a temporary directory, two alert
destinations, Onca's own sample events replayed through the real pipeline worker (so the alerts, their
lake events and the CloudTrail table are what Onca's detections really produce), and the WebServer that
`onca serve` runs. Each test gets a fresh browser context (no shared cookies), signs in through the
login form, and fails if a page logs an error (a CSP violation, a script error) or tries to leave
127.0.0.1. Screenshots go to a temporary directory, or to $ONCA_SCREENSHOTS_DIR when it is set
(`ONCA_SCREENSHOTS_DIR=docs/screenshots python -m pytest tests/browser -n 0` refreshes the README's).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from onca.api.server import WebServer
from onca.deploy.components.detections import content_dir
from onca.deploy.stacks import Deployment, home_context
from onca.destinations import store as destinations
from onca.destinations.secrets import keyring
from onca.logs.registry import SchemaRegistry
from onca.pipeline.demo import replay
from onca.pipeline.spool import Spool
from onca.pipeline.worker import Worker
from tests.api.conftest import ADMIN_EMAIL, PASSWORD, db, free_address, make_user

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
# Headless, and quiet: no first-run UI, no background requests to Google's services.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
INVITE_LINK = re.compile(r"https?://\S+/invite\?token=[A-Za-z0-9_-]+")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# How Chromium logs a page answered with a 4xx (a used invite, a refusal): the tests assert those statuses.
HTTP_ERROR_STATUS = "Failed to load resource: the server responded with a status of 4"


@dataclass
class Console:
    server: WebServer
    invite_url: str  # the first administrator's one-time link, as `onca deploy` printed it

    @property
    def url(self) -> str:
        return self.server.url

    def user(self, role: str, email: str, display_name: str) -> str:
        """An active user (password PASSWORD); returns the email."""
        return make_user(self.server.app, role, email, display_name)


def deploy_printing_invite(home: Path) -> str:
    """Deploy Onca into `home` and return the invite link the deploy printed for the first administrator."""
    deployment = Deployment(home)
    try:
        outcome = deployment.deploy("onca-main", {"FirstUserEmail": ADMIN_EMAIL, "WebListenAddress": free_address()})
    finally:
        deployment.close()
    assert outcome.status == "CREATE_COMPLETE", outcome.error
    links = [m.group(0) for notice in outcome.notices for m in INVITE_LINK.finditer(notice)]
    assert len(links) == 1, outcome.notices
    return links[0]


def add_destinations(server: WebServer) -> None:
    """Where the alerts go: the worker routes (and the console shows) deliveries to these."""
    fernet = keyring(server.ctx.home)
    with db(server.app) as session:
        destinations.add(session, fernet, "slack-secops", "slack",
                         {"webhook_url": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX"},
                         severities=["HIGH", "CRITICAL"])
        destinations.add(session, fernet, "pagerduty-oncall", "pagerduty",
                         {"routing_key": "0123456789abcdef0123456789abcdef"}, severities=["CRITICAL"])


def replay_samples(server: WebServer) -> int:
    """Onca's sample events through the pipeline worker: lake tables, alerts and their events. Returns the alerts."""
    home, sessions = server.ctx.home, server.app.state.sessions
    registry = SchemaRegistry.load([])
    spool = Spool(home / "spool")
    try:
        with sessions() as session:
            replay(session, spool, content_dir(home) / "onca", registry)
        worker = Worker(home, spool, server.ctx.lake_dir, sessions, registry)
        try:
            while worker.run_once(timeout=0.05):
                pass
        finally:
            worker.close()
    finally:
        spool.close()
    return worker.counters.alerts


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("browser") / "home"
    invite_url = deploy_printing_invite(home)
    ctx = home_context(home)
    assert ctx is not None
    server = WebServer(ctx)
    add_destinations(server)
    assert replay_samples(server) >= 30
    server.start()
    try:
        yield Console(server, invite_url)
    finally:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without the machine's Chromium every browser test skips, before a console is set up for nothing."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        # launch() gives every run a fresh temporary profile.
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """`new_page()`: a page in a fresh context (its own cookies) at 1280x800, kept on 127.0.0.1."""
    contexts = []
    problems: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            problems.append(f"request outside 127.0.0.1: {route.request.url}")
            route.abort()

    def make() -> Page:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(10_000)
        context.route("**/*", local_only)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and not msg.text.startswith(HTTP_ERROR_STATUS) else None)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, problems


def sign_in(page: Page, console: Console, email: str, password: str = PASSWORD) -> None:
    """Through the login page, as a person does."""
    page.goto(f"{console.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@pytest.fixture
def signed_in(console: Console, new_page: Callable[[], Page]) -> Callable[[str, str, str], Page]:
    """`signed_in(role, email, display name)`: a page signed in as that (active) user."""
    def make(role: str, email: str, display_name: str) -> Page:
        page = new_page()
        sign_in(page, console, console.user(role, email, display_name))
        assert urlsplit(page.url).path == "/", page.url
        return page

    return make


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("ONCA_SCREENSHOTS_DIR")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def shot(screenshots: Path) -> Callable[[Page, str], Path]:
    """`shot(page, "alerts")`: the top 1280x800 of the page as <screenshots>/alerts.png."""
    def take(page: Page, name: str) -> Path:
        path = screenshots / f"{name}.png"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), animations="disabled", caret="hide")
        compact_png(path)
        return path

    return take


def compact_png(path: Path) -> None:
    """Deflate the PNG's image data at the highest level: Chromium's fast setting leaves the dithered gradient
    of the sign-in page at ~280 KB, too much for files kept in the repository."""
    data = path.read_bytes()
    chunks, pos = [], 8
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]))
        pos += 12 + size
    image: bytes | None = zlib.compress(zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT")), 9)
    out = [data[:8]]
    for kind, body in chunks:
        if kind == b"IDAT":
            if image is None:
                continue  # all the image data went into the first IDAT chunk
            body, image = image, None
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    path.write_bytes(b"".join(out))
