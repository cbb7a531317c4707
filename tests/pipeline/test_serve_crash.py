"""kill -9 of `onca serve` under load: every acknowledged event is in the lake exactly once, and the alerts
equal those of a clean run over the same acknowledged events."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.deploy.test_lifecycle import base_params

from .test_serve_e2e import ROOT_LOGIN, onca, wait_for

REPO = Path(__file__).resolve().parents[2]


def batch(number: int, size: int = 25) -> bytes:
    events = []
    for i in range(size):
        event = {**ROOT_LOGIN, "eventID": f"b{number}-e{i}", "eventTime": f"2024-05-02T08:{number % 60:02d}:{i:02d}Z"}
        if i % 5:  # most events are ordinary sign-ins that match nothing
            event["userIdentity"] = {"type": "IAMUser", "userName": f"user{i}"}
        else:  # root sign-ins from different IPs: several alerts
            event["sourceIPAddress"] = f"198.51.100.{number % 7}"
        events.append(json.dumps(event).encode())
    return b"\n".join(events)


class Server:
    def __init__(self, home: Path, tmp: Path) -> None:
        self.home, self.tmp, self.process, self.address = home, tmp, None, ""

    def start(self) -> None:
        ready = self.tmp / f"ready-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(self.home),
                                         "--listen", "127.0.0.1:0", "--ready-file", str(ready)], cwd=REPO,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.address = wait_for(lambda: ready.exists() and ready.read_text().strip())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0

    def post(self, token: str, body: bytes) -> int | None:
        request = urllib.request.Request(f"http://{self.address}/ingest/ct", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["accepted"] if response.status == 202 else None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
            return None  # killed mid-request (connection reset, truncated answer): not acknowledged

    def drained(self) -> bool:
        metrics = urllib.request.urlopen(f"http://{self.address}/metrics", timeout=10).read().decode()
        return "onca_queue_lag_entries 0\n" in metrics


def deployed(home: Path) -> str:
    assert onca(home, "deploy", "--quiet", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    added = onca(home, "sources", "add", "ct", "--log-type", "AWS.CloudTrail")
    return added.stdout.split("Token (shown once): ")[1].split()[0]


def counts(home: Path) -> tuple[int, list[tuple[str, int]]]:
    rows = json.loads(onca(home, "query", "SELECT count(*) AS n FROM aws_cloudtrail", "--format", "json").stdout)
    alerts = json.loads(onca(home, "alerts", "list", "--format", "json", "--limit", "1000").stdout)
    return rows[0]["n"], sorted((a["dedup"], a["event_count"]) for a in alerts)


def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "chaos"
    token = deployed(home)
    server = Server(home, tmp_path)
    server.start()
    acknowledged: list[bytes] = []
    unacknowledged: list[bytes] = []  # the server may have spooled these before it died
    stop = threading.Event()

    def client() -> None:
        number = 0
        while not stop.is_set() and number < 800:  # bounded, so the clean run below stays short
            body = batch(number)
            number += 1  # never resend a body: a resend of a spooled but unanswered batch is a new batch
            if server.post(token, body) is not None:
                acknowledged.append(body)
            else:
                unacknowledged.append(body)
                time.sleep(0.05)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    rng = random.Random(7)
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 3.0))
        server.kill()
        server.start()
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=30)
    wait_for(server.drained, timeout=120)
    server.stop()
    assert len(acknowledged) > 10
    events, alerts = counts(home)
    stored = json.loads(onca(home, "query", "SELECT eventID, count(*) AS n FROM aws_cloudtrail GROUP BY 1",
                             "--format", "json", "--limit", "1000000").stdout)
    seen = {row["eventID"]: row["n"] for row in stored}
    assert all(n == 1 for n in seen.values())  # nothing twice
    ids = [json.loads(line)["eventID"] for body in acknowledged for line in body.splitlines()]
    assert all(event_id in seen for event_id in ids)  # every acknowledged event is there
    # anything else came from a batch the server had made durable just before it was killed
    landed = acknowledged + [b for b in unacknowledged if json.loads(b.splitlines()[0])["eventID"] in seen]
    assert events == len(landed) * 25 == len(seen)

    clean_home = tmp_path / "clean"
    clean_token = deployed(clean_home)
    clean = Server(clean_home, tmp_path)
    clean.start()
    for body in landed:
        assert clean.post(clean_token, body) == 25
    wait_for(clean.drained, timeout=120)
    clean.stop()
    assert counts(clean_home) == (events, alerts)
    assert alerts  # the root sign-ins did raise alerts
    assert os.path.exists(home / "spool")
