"""Crash test: SIGKILL the HTTP intake process while clients post; every acknowledged record is spooled."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from onca.pipeline.spool import Spool


def start_server(spool_dir: Path, url: str, ready: Path) -> tuple[subprocess.Popen[bytes], tuple[str, int]]:
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "onca.pipeline.intake_http", "--spool", str(spool_dir),
                             "--db", url, "--ready-file", str(ready)])
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, "intake exited"
        assert time.monotonic() < deadline, "intake did not start"
        time.sleep(0.02)
    host, port = ready.read_text().split(":")
    return proc, (host, int(port))


def test_every_acknowledged_record_survives_sigkill(tmp_path: Path, database: tuple[str, Engine],
                                                    tokens: dict[str, str]) -> None:
    url, _engine = database
    spool_dir = tmp_path / "spool"
    acked: set[str] = set()
    lock = threading.Lock()
    counter = iter(range(10**9))

    def client(address: tuple[str, int], stop: threading.Event) -> None:
        conn = http.client.HTTPConnection(*address, timeout=10)
        while not stop.is_set():
            with lock:
                ids = [f"r{next(counter)}" for _ in range(50)]
            body = b"".join(json.dumps({"id": i, "pad": "x" * 200}).encode() + b"\n" for i in ids)
            try:
                conn.request("POST", "/ingest/web", body=body, headers={"Authorization": f"Bearer {tokens['web']}"})
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                return  # the server died: this request was not acknowledged
            if response.status == 202:
                assert json.loads(answer) == {"accepted": 50}
                with lock:
                    acked.update(ids)

    for round_ in range(3):
        proc, address = start_server(spool_dir, url, tmp_path / "ready")
        stop = threading.Event()
        clients = [threading.Thread(target=client, args=(address, stop)) for _ in range(4)]
        for c in clients:
            c.start()
        time.sleep(0.7 + 0.3 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for c in clients:
            c.join(timeout=30)
        assert len(acked) > 0

    with Spool(spool_dir) as spool:
        spooled = [json.loads(r)["id"] for e in spool.scan() for r in e.records]
        positions = [e.position for e in spool.scan()]
    assert positions == list(range(1, len(positions) + 1))  # no gap, no duplicate position
    print(f"acknowledged {len(acked)}, spooled {len(spooled)}")
    assert acked <= set(spooled)  # every acknowledged record is there
    assert len(spooled) == len(set(spooled))  # and no record appears twice
    assert len(spooled) - len(acked) <= 3 * 4 * 50  # at most the in-flight requests were spooled unacknowledged
