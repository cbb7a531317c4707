"""`onca serve` starts the syslog listeners and directory pollers of the configured sources."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.deploy.test_lifecycle import base_params, free_address

from .test_serve_e2e import onca, wait_for

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "logs" / "samples"
SSH_ROOT = ("<38>1 2024-05-02T08:15:00Z bastion-01 sshd 4242 - - Accepted publickey for root from 198.51.100.77 "
            "port 50122 ssh2: ED25519 SHA256:abc")


def count(home: Path, table: str) -> int:
    result = onca(home, "query", f"SELECT count(*) AS n FROM {table}", "--format", "json")
    return json.loads(result.stdout)[0]["n"] if result.returncode == 0 else 0


def test_syslog_and_directory_sources(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", "--quiet", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    udp, tcp = free_address(), free_address()
    added = onca(home, "sources", "add", "syslog", "--kind", "syslog", "--log-type", "Syslog.RFC5424",
                 "--udp", udp, "--tcp", tcp)
    assert added.returncode == 0, added.stderr
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert onca(home, "sources", "add", "okta-drop", "--kind", "directory", "--log-type", "Okta.SystemLog",
                "--path", str(inbox)).returncode == 0
    assert onca(home, "sources", "add", "bad", "--kind", "directory", "--log-type", "Okta.SystemLog",
                "--path", str(tmp_path / "missing")).returncode == 2

    ready = tmp_path / "ready"
    server = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(home), "--listen",
                               "127.0.0.1:0", "--ready-file", str(ready)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ready.exists())
        host, port = udp.split(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(SSH_ROOT.encode(), (host, int(port)))
        host, port = tcp.split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall((SSH_ROOT.replace("4242", "4243") + "\n").encode())
        shutil.copy(SAMPLES / "okta.ndjson", inbox / "okta.ndjson")
        wait_for(lambda: count(home, "syslog_rfc5424") == 2)
        wait_for(lambda: count(home, "okta_systemlog") == 18)
        wait_for(lambda: (inbox / "done" / "okta.ndjson").exists())
        alerts = wait_for(lambda: json.loads(onca(home, "alerts", "list", "--format", "json").stdout or "[]"))
        assert "Onca.Syslog.SSHRootLogin" in {a["rule_id"] for a in alerts}
    finally:
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err[-2000:]
