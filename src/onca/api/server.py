"""The console and API server: uvicorn in a background thread, on the deployment's WebListenAddress.

The listen address and TLS files come from <home>/config/web.json, written (and validated) by the web
component at deploy time; TLS is on when the certificate parameters are set. `onca serve` starts one
WebServer next to the pipeline and stops it on shutdown.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from onca.api.app import create_app
from onca.deploy.components.web import config_path, parse_listen
from onca.deploy.resources import DeployContext

START_TIMEOUT = 30.0


class WebServerError(RuntimeError):
    """The server could not start (address in use, unreadable certificate...)."""


def web_config(ctx: DeployContext) -> dict[str, Any]:
    """The deployed web settings; without a config file (never deployed with the web component) the parameters."""
    path = config_path(ctx.home)
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    certificate = str(ctx.params.get("WebCertificateFile") or "")
    key = str(ctx.params.get("WebCertificateKeyFile") or "")
    return {"listen": str(ctx.params.get("WebListenAddress") or "127.0.0.1:8000"), "tls": bool(certificate and key),
            "certificate": certificate, "key": key}


class WebServer:
    def __init__(self, ctx: DeployContext, *, listen: str | None = None) -> None:
        self.ctx = ctx
        config = web_config(ctx)
        self.host, self.port = parse_listen(listen or config["listen"])
        self.tls = bool(config.get("tls"))
        self.app = create_app(Path(ctx.home))
        tls_files: dict[str, Any] = {"ssl_certfile": config["certificate"], "ssl_keyfile": config["key"]} \
            if self.tls else {}
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", access_log=False, lifespan="off",
            server_header=False, timeout_graceful_shutdown=5, **tls_files))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        """HOST:PORT actually listened on (the real port when 0 was asked for), IPv6 in brackets."""
        port = self.port
        if self._server.started and self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def _run(self) -> None:
        try:
            self._server.run()
        except BaseException as err:  # reported by start(); the thread must not die silently
            self._error = err

    def start(self) -> WebServer:
        self._thread = threading.Thread(target=self._run, name="onca-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                reason = self._error or "it stopped during start-up (is the address in use?)"
                raise WebServerError(f"the web server could not listen on {self.host}:{self.port}: {reason}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.app.state.engine.dispose()
