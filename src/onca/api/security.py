"""ASGI middleware around the whole app: security headers, the request body limit, one DB session per request.

Pure ASGI (not BaseHTTPMiddleware) so that streamed bodies are counted as they arrive and the
transaction is settled before the first byte of the response leaves: a browser that follows a
redirect right after a POST always sees the change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY = 1024 * 1024
DB_SCOPE_KEY = "onca.db"

# No inline script or style anywhere in the console; templates use classes and the one stylesheet.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# FastAPI's Swagger UI page is an inline script loading its bundle from a CDN; only that page allows it.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
DOCS_PATHS = frozenset({"/api/docs", "/api/docs/oauth2-redirect"})
HSTS = "max-age=31536000; includeSubDomains"


def _headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    path = scope.get("path", "")
    headers = [
        (b"content-security-policy", (DOCS_CSP if path in DOCS_PATHS else CSP).encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        # Invite links carry their token in the query string: never send the URL anywhere else.
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if not path.startswith("/static/"):
        # Pages and API answers hold security data: no shared or on-disk caches.
        headers.append((b"cache-control", b"no-store"))
    if scope.get("scheme") == "https":
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in _headers(scope) if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Answer the crash here, with the headers, rather than in Starlette's outer error handler;
            # re-raised so that the server still logs it.
            if not started:
                await _send_json(send_with_headers, 500, "internal error: the request failed on the server")
            raise


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over `limit` bytes, from Content-Length up front or counted while it streams in."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reason = f"request body too large: the limit is {self.limit} bytes"
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                await _send_json(send, 400, "Content-Length is not a number")
                return
            if too_large:
                await _send_json(send, 413, reason)
                return
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit and not refused:
                    refused = True
                    if not started:
                        await _send_json(send, 413, reason)
                    # The app sees the client go away; whatever it answers then is dropped below.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, tracking_send)


class DbSessionPerRequest:
    """Holds the request's metadata session (made lazily by deps.get_db) and settles it.

    Committed when the response status is below 400, rolled back otherwise or on an exception; always
    before the response starts. A commit that fails turns the answer into a 500. Writes that must outlast
    a rollback (failed sign-ins, denials) are queued with `defer_write` and run afterwards in a transaction
    of their own, so they never wait on the request's own write lock (SQLite has one writer at a time).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: dict[str, Any] = {"session": None, "after": [], "settled": False}
        scope[DB_SCOPE_KEY] = holder
        failed_commit = False

        async def settling_send(message: Message) -> None:
            nonlocal failed_commit
            if failed_commit:
                return  # the original answer is replaced by the 500 below
            if (message["type"] == "http.response.start" and not holder["settled"]
                    and not await _settle(scope, holder, ok=message["status"] < 400)):
                failed_commit = True
                await _send_json(send, 500, "the change could not be saved; nothing was changed")
                return
            await send(message)

        try:
            await self.app(scope, receive, settling_send)
        except BaseException:
            if not holder["settled"]:
                await _settle(scope, holder, ok=False)
            raise
        finally:
            if holder["session"] is not None:
                await run_in_threadpool(holder["session"].close)


async def _settle(scope: Scope, holder: dict[str, Any], ok: bool) -> bool:
    """Commit (ok) or roll back the request's session, then run the deferred writes; False if the commit failed."""
    holder["settled"] = True
    session = holder["session"]
    committed = True
    if session is not None:
        try:
            await run_in_threadpool(session.commit if ok else session.rollback)
        except Exception:
            await run_in_threadpool(session.rollback)
            committed = False
    for write in holder["after"]:
        await run_in_threadpool(_run_write, scope["app"].state.sessions, write)
    holder["after"].clear()
    return committed


def _run_write(sessions: Callable[[], Any], write: Callable[[Any], object]) -> None:
    with sessions.begin() as own:  # type: ignore[attr-defined]
        write(own)


def defer_write(scope: Scope, sessions: Any, write: Callable[[Any], object]) -> None:
    """Run `write(session)` in its own committed transaction: now if the request holds no session yet,
    else right after the request's session is settled (whatever its outcome)."""
    holder = scope.get(DB_SCOPE_KEY)
    if holder is None or holder["session"] is None or holder["settled"]:
        _run_write(sessions, write)
    else:
        holder["after"].append(write)
