"""`onca serve --role`: api, worker and scheduler as three processes, taking over from a two-worker tree that
was stopped mid-stream (a change of the number of workers: every event lands exactly once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from onca.pipeline.partitions import partition_of

from .test_serve_crash import REPO, Server, batch, deployed, reap  # noqa: F401 - reap is a fixture
from .test_serve_e2e import FlakyWebhook, onca, wait_for, webhook  # noqa: F401 - webhook is a fixture

EVENTS_PER_BATCH = 25


def add_source(home: Path, name: str) -> str:
    added = onca(home, "sources", "add", name, "--log-type", "AWS.CloudTrail")
    return added.stdout.split("Token (shown once): ")[1].split()[0]


def role(home: Path, tmp: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    ready = tmp / f"ready-{name}"
    env = {**os.environ, "ONCA_DELIVERY_RETRY_BASE": "0.5"}
    process = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(home), "--role", name,
                                "--listen", "127.0.0.1:0", "--ready-file", str(ready), *args], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, ready


def metric(server: Server, name: str) -> int:
    line = next(line for line in server.metrics().splitlines() if line.startswith(f"{name} "))
    return int(line.split()[1])


@pytest.mark.usefixtures("reap")
def test_roles_as_separate_processes_take_over_from_two_workers(tmp_path: Path, webhook: str) -> None:  # noqa: F811
    home = tmp_path / "home"
    tokens = {"ct": deployed(home), "web": add_source(home, "web")}
    assert {partition_of(name, 2) for name in tokens} == {0, 1}  # one source per worker of the first run
    assert onca(home, "destinations", "add", "hook", "--kind", "webhook", "--config", f"url={webhook}",
                "--config", "secret=s3cret-key-for-hmac").returncode == 0
    sent: list[bytes] = []

    def post(server: Server, numbers: range) -> None:
        for number in numbers:
            body = batch(number)
            source = "ct" if number % 2 else "web"
            assert server.post(tokens[source], body, source) == EVENTS_PER_BATCH
            sent.append(body)

    tree = Server(home, tmp_path, "--workers", "2")
    tree.start()
    poster = threading.Thread(target=post, args=(tree, range(0, 120)))
    poster.start()
    wait_for(lambda: metric(tree, "onca_received_total") > 0, timeout=60)  # stop while workers are mid-stream
    poster.join()
    tree.stop()

    api, api_ready = role(home, tmp_path, "api")
    worker, worker_ready = role(home, tmp_path, "worker", "--workers", "1")
    scheduler, scheduler_ready = role(home, tmp_path, "scheduler")
    processes = [api, worker, scheduler]
    try:
        server = Server(home, tmp_path)
        server.address = wait_for(lambda: api_ready.exists() and api_ready.read_text().strip())
        wait_for(lambda: worker_ready.exists() and scheduler_ready.exists())
        post(server, range(120, 160))
        wait_for(server.drained, timeout=120)
        alerts = json.loads(onca(home, "alerts", "list", "--format", "json", "--limit", "1000").stdout)
        assert alerts and {a["rule_id"] for a in alerts} == {"Onca.AWS.RootConsoleLogin"}
        wait_for(lambda: len(FlakyWebhook.received) > len(alerts), timeout=60)  # delivered (the first one retried)
        # Counters of both runs' workers and of the scheduler, summed by the api process (published within 0.25 s).
        wait_for(lambda: metric(server, "onca_received_total") == len(sent) * EVENTS_PER_BATCH, timeout=10)
        wait_for(lambda: metric(server, "onca_delivery_attempts_total") >= len(FlakyWebhook.received), timeout=10)
        # Layout 2's checkpoints were dropped once the single worker passed them: they hold back nothing.
        assert sorted(os.listdir(home / "spool" / "consumers")) == ["worker-0of1.ckpt"]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in processes]
    assert codes == [0, 0, 0]
    stored = json.loads(onca(home, "query", "SELECT eventID, count(*) AS n FROM aws_cloudtrail GROUP BY 1",
                             "--format", "json", "--limit", "1000000").stdout)
    ids = [json.loads(line)["eventID"] for body in sent for line in body.splitlines()]
    assert sorted(row["eventID"] for row in stored) == sorted(ids)
    assert {row["n"] for row in stored} == {1}
