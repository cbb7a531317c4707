"""`onca serve` starts the syslog listeners and directory pollers of the configured sources."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import boto3

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


def test_s3_source_by_listing(tmp_path: Path, moto_endpoint: str) -> None:
    """An s3 source added with the CLI is polled by `onca serve`: the CloudTrail object lands in the lake."""
    endpoint = moto_endpoint
    # Fake credentials for moto, for this process and the server's; never the user's real ones.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    home = tmp_path / "home"
    server = None
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
        s3.create_bucket(Bucket="trail-logs")
        body = gzip.compress((SAMPLES / "cloudtrail_s3_object.json").read_bytes())
        s3.put_object(Bucket="trail-logs", Key="AWSLogs/123456789012/CloudTrail/one.json.gz", Body=body)
        s3.put_object(Bucket="trail-logs", Key="elsewhere/other.json.gz", Body=body)
        assert onca(home, "deploy", "--quiet", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
        bad = onca(home, "sources", "add", "trail", "--kind", "s3", "--log-type", "AWS.CloudTrail",
                   "--bucket", "s3://trail-logs/AWSLogs")
        assert bad.returncode == 2 and "bucket name only" in bad.stderr
        added = onca(home, "sources", "add", "trail", "--kind", "s3", "--log-type", "AWS.CloudTrail",
                     "--bucket", "trail-logs", "--prefix", "AWSLogs/", "--endpoint-url", endpoint)
        assert added.returncode == 0, added.stderr
        expected = len(json.loads((SAMPLES / "cloudtrail_s3_object.json").read_text())["Records"])
        ready = tmp_path / "ready"
        server = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(home), "--listen",
                                   "127.0.0.1:0", "--ready-file", str(ready)], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: ready.exists())
        wait_for(lambda: count(home, "aws_cloudtrail") == expected)  # the object under the prefix, only once
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            _out, err = server.communicate(timeout=60)
            assert server.returncode == 0, err[-2000:]
