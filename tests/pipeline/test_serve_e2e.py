"""End to end on 127.0.0.1: `onca serve`, CloudTrail pushed over HTTP, an alert, a webhook that fails once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.deploy.test_lifecycle import base_params

REPO = Path(__file__).resolve().parents[2]
ROOT_LOGIN = {
    "eventVersion": "1.08", "eventTime": "2024-05-02T08:14:11Z", "eventSource": "signin.amazonaws.com",
    "eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn", "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.24", "userAgent": "Mozilla/5.0", "eventID": "e2e-0001",
    "userIdentity": {"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root",
                     "accountId": "111122223333"},
    "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "Yes"},
    "recipientAccountId": "111122223333",
}


def onca(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onca", *args, "--home", str(home)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


class FlakyWebhook(BaseHTTPRequestHandler):
    """Answers 500 to the first delivery and 200 afterwards, keeping every body."""

    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        FlakyWebhook.received.append({"body": json.loads(body), "signature": self.headers.get("X-Onca-Signature")})
        status = 500 if len(FlakyWebhook.received) == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> str:
    FlakyWebhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyWebhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def wait_for(predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_pushed_events_become_a_delivered_alert(tmp_path: Path, webhook: str) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", "--quiet", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    added = onca(home, "sources", "add", "cloudtrail", "--log-type", "AWS.CloudTrail")
    assert added.returncode == 0, added.stderr
    token = added.stdout.split("Token (shown once): ")[1].split()[0]
    hook = onca(home, "destinations", "add", "hook", "--kind", "webhook", "--config", f"url={webhook}",
                "--config", "secret=s3cret-key-for-hmac")
    assert hook.returncode == 0, hook.stdout + hook.stderr

    ready = tmp_path / "ready"
    env = {**os.environ, "ONCA_DELIVERY_RETRY_BASE": "0.5"}
    server = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(home), "--listen",
                               "127.0.0.1:0", "--ready-file", str(ready)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = wait_for(lambda: ready.exists() and ready.read_text().strip())
        ordinary = {**ROOT_LOGIN, "eventID": "e2e-0002", "userIdentity": {"type": "IAMUser", "userName": "ann"}}
        body = b"\n".join(json.dumps(e).encode() for e in (ROOT_LOGIN, ordinary)) + b"\nnot json\n"

        def post(token_value: str) -> tuple[int, str]:
            request = urllib.request.Request(f"http://{address}/ingest/cloudtrail", data=body, method="POST",
                                             headers={"Authorization": f"Bearer {token_value}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode()

        assert post("wrong-token")[0] == 401
        _status, answer = wait_for(lambda: (result := post(token))[0] == 202 and result)
        assert json.loads(answer) == {"accepted": 3}

        alerts = wait_for(lambda: json.loads(onca(home, "alerts", "list", "--format", "json").stdout or "[]"))
        assert [a["rule_id"] for a in alerts] == ["Onca.AWS.RootConsoleLogin"]
        wait_for(lambda: len(FlakyWebhook.received) >= 2)
        shown = json.loads(onca(home, "alerts", "show", alerts[0]["id"], "--format", "json").stdout)
        outcomes = [d["outcome"] for d in shown["deliveries"]]
        assert outcomes[:2] == ["retry", "success"], shown["deliveries"]
        assert "Onca.AWS.RootConsoleLogin" in json.dumps(FlakyWebhook.received[1]["body"])
        assert FlakyWebhook.received[1]["signature"]

        metrics = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
        assert "onca_received_total 3" in metrics and "onca_quarantined_total 1" in metrics
        with sqlite3.connect(home / "metadata.db") as db:
            assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 2
    finally:
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err[-2000:]
    lake = json.loads(onca(home, "query", "SELECT count(*) AS n FROM aws_cloudtrail", "--format", "json").stdout)
    assert lake == [{"n": 2}]
