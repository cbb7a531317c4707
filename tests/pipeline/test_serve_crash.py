"""kill -9 of `onca serve`, or of one of its worker processes, under load: every acknowledged event is in the
lake exactly once, and the alerts equal those of a clean run over the same acknowledged events."""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from onca.pipeline.partitions import consumer_name, partition_of
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
    started: ClassVar[list[Server]] = []  # for the `reap` fixture

    def __init__(self, home: Path, tmp: Path, *args: str) -> None:
        self.home, self.tmp, self.args, self.process, self.address = home, tmp, args, None, ""

    def start(self) -> None:
        Server.started.append(self)
        ready = self.tmp / f"ready-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(self.home),
                                         "--listen", "127.0.0.1:0", "--ready-file", str(ready), *self.args],
                                        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.address = wait_for(lambda: ready.exists() and ready.read_text().strip())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0

    def post(self, token: str, body: bytes, source: str = "ct") -> int | None:
        request = urllib.request.Request(f"http://{self.address}/ingest/{source}", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["accepted"] if response.status == 202 else None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
            return None  # killed mid-request (connection reset, truncated answer): not acknowledged

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://{self.address}/metrics", timeout=10).read().decode()

    def drained(self) -> bool:
        return "onca_queue_lag_entries 0\n" in self.metrics()


@pytest.fixture
def reap() -> Iterator[None]:
    """Kill any `onca serve` a failing test left running (its children die with it)."""
    yield
    while Server.started:
        process = Server.started.pop().process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


class Client(threading.Thread):
    """Posts distinct batches until stopped (or `limit`), sorting them into acknowledged and not."""

    def __init__(self, server: Server, token: str, limit: int = 800, pace: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.limit, self.pace = server, token, limit, pace
        self.acknowledged: list[bytes] = []
        self.unacknowledged: list[bytes] = []  # the server may have spooled these before it died
        self.halt = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.halt.is_set() and number < self.limit:  # bounded, so the clean comparison run stays short
            body = batch(number)
            number += 1  # never resend a body: a resend of a spooled but unanswered batch is a new batch
            if self.server.post(self.token, body) is not None:
                self.acknowledged.append(body)
            else:
                self.unacknowledged.append(body)
                time.sleep(0.05)
            time.sleep(self.pace)

    def finish(self) -> None:
        self.halt.set()
        self.join(timeout=30)


def deployed(home: Path) -> str:
    assert onca(home, "deploy", "--quiet", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    added = onca(home, "sources", "add", "ct", "--log-type", "AWS.CloudTrail")
    return added.stdout.split("Token (shown once): ")[1].split()[0]


def output(home: Path, *args: str) -> Any:
    """The JSON an onca command prints (failing with its error output when it fails)."""
    result = onca(home, *args, "--format", "json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout)


def counts(home: Path) -> tuple[int, list[tuple[str, int]]]:
    rows = output(home, "query", "SELECT count(*) AS n FROM aws_cloudtrail")
    alerts = output(home, "alerts", "list", "--limit", "1000")
    return rows[0]["n"], sorted((a["dedup"], a["event_count"]) for a in alerts)


def assert_exactly_once_like_a_clean_run(tmp_path: Path, home: Path, client: Client) -> None:
    assert len(client.acknowledged) > 10
    events, alerts = counts(home)
    stored = output(home, "query", "SELECT eventID, count(*) AS n FROM aws_cloudtrail GROUP BY 1", "--limit",
                    "1000000")
    seen = {row["eventID"]: row["n"] for row in stored}
    assert all(n == 1 for n in seen.values())  # nothing twice
    ids = [json.loads(line)["eventID"] for body in client.acknowledged for line in body.splitlines()]
    assert all(event_id in seen for event_id in ids)  # every acknowledged event is there
    # anything else came from a batch the server had made durable just before it was killed
    landed = client.acknowledged + [body for body in client.unacknowledged
                                    if json.loads(body.splitlines()[0])["eventID"] in seen]
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


@pytest.mark.usefixtures("reap")
def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "chaos"
    token = deployed(home)
    server = Server(home, tmp_path)
    server.start()
    client = Client(server, token)
    client.start()
    rng = random.Random(7)
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 3.0))
        server.kill()
        server.start()
    time.sleep(1.0)
    client.finish()
    wait_for(server.drained, timeout=120)
    server.stop()
    assert_exactly_once_like_a_clean_run(tmp_path, home, client)
    assert os.path.exists(home / "spool")


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.usefixtures("reap")
def test_kill_9_of_a_worker_then_of_the_supervisor(tmp_path: Path) -> None:
    home = tmp_path / "chaos"
    token = deployed(home)
    server = Server(home, tmp_path, "--workers", "2")
    server.start()
    client = Client(server, token, limit=300, pace=0.03)  # about 10 s of load
    client.start()
    owner = consumer_name(partition_of("ct", 2), 2)  # the one worker that processes the source's entries
    pid_file, published = home / "state" / "pids" / f"{owner}.pid", home / "state" / "metrics" / f"{owner}.json"

    def received() -> int:
        return json.loads(published.read_text())["received"] if published.exists() else 0

    wait_for(lambda: received() > 0, timeout=60)  # the worker is processing
    rng = random.Random(11)
    for _ in range(3):
        time.sleep(rng.uniform(0.2, 2.0))  # mid-batch, or (after a restart) while the worker starts
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda p=pid: pid_file.exists() and int(pid_file.read_text()) != p, timeout=30)  # restarted
    counted = received()
    children = [int(p.read_text()) for p in (home / "state" / "pids").glob("*.pid")]
    assert len(children) == 3  # two workers and the scheduler
    server.kill()  # the supervisor: no child may keep running without it
    wait_for(lambda: not any(alive(pid) for pid in children), timeout=5)
    server.start()
    time.sleep(1.0)
    client.finish()
    wait_for(server.drained, timeout=120)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 10
    assert not list((home / "state" / "pids").glob("*.pid"))
    assert received() >= counted  # restarted workers count on from their predecessors' published counters
    assert_exactly_once_like_a_clean_run(tmp_path, home, client)
