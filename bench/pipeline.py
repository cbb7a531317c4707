"""End-to-end throughput of `onca serve`: CloudTrail over HTTP -> spool -> lake -> rules -> alerts.

    python bench/pipeline.py --events ct.ndjson [--seconds 60] [--analysis-dir panther-analysis]

Deploys a throwaway home on 127.0.0.1, adds a CloudTrail source (and, with --analysis-dir, installs
that checkout's CloudTrail rules as a pack), starts `onca serve`, posts 1,000-event batches from the
file for --seconds, then waits until the worker has drained the spool. It prints the intake rate, the
end-to-end rate (events in the lake over the time until drained), how long the worker needed after the
last post (an upper bound of the event-to-alert latency of the last batch) and the server's peak RSS,
and ends with `events=N events_per_s=X drain_s=D peak_rss_mb=M`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def onca(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onca", *args, "--home", str(home)], capture_output=True, text=True,
                          check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, required=True, help="CloudTrail NDJSON (bench/cloudtrail_events.py)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to post (default 30)")
    parser.add_argument("--analysis-dir", type=Path, help="a panther-analysis checkout whose rules to add")
    args = parser.parse_args(argv)
    lines = [line for line in args.events.read_bytes().splitlines() if line.strip()]
    if not lines:
        parser.error(f"{args.events} has no events")
    home = Path(tempfile.mkdtemp(prefix="onca-bench-"))
    try:
        deployed = onca(home, "deploy", "--quiet", "--param", "FirstUserEmail=bench@example.com",
                        "--param", f"WebListenAddress=127.0.0.1:{free_port()}")
        if deployed.returncode != 0:
            print(deployed.stderr, file=sys.stderr)
            return 1
        if args.analysis_dir:
            pack = home.parent / f"{home.name}-cloudtrail-pack"
            for name in ("rules/aws_cloudtrail_rules", "global_helpers", "data_models"):
                shutil.copytree(args.analysis_dir / name, pack / name)
            installed = onca(home, "detections", "install", str(pack))
            print(installed.stdout.strip() or installed.stderr.strip())
        token = onca(home, "sources", "add", "ct", "--log-type", "AWS.CloudTrail").stdout.split(
            "Token (shown once): ")[1].split()[0]
        ready = home / "ready"
        server = subprocess.Popen([sys.executable, "-m", "onca", "serve", "--home", str(home), "--listen",
                                   "127.0.0.1:0", "--ready-file", str(ready)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        while not ready.exists():
            time.sleep(0.1)
        address = ready.read_text().strip()
        posted, number = 0, 0
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            chunk = [lines[(number * 1000 + i) % len(lines)] for i in range(1000)]
            request = urllib.request.Request(f"http://{address}/ingest/ct", data=b"\n".join(chunk), method="POST",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                posted += json.loads(response.read())["accepted"]
            number += 1
        intake_s = time.monotonic() - started
        while "onca_queue_lag_entries 0\n" not in urllib.request.urlopen(f"http://{address}/metrics").read().decode():
            time.sleep(0.2)
        total_s = time.monotonic() - started
        peak = rss_mb(server.pid)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        alerts = json.loads(onca(home, "alerts", "list", "--format", "json", "--limit", "10000").stdout or "[]")
        stored = json.loads(onca(home, "query", "SELECT count(*) AS n FROM aws_cloudtrail", "--format", "json").stdout)
        events = stored[0]["n"] if stored else 0
        rate = events / total_s
        print(f"posted {posted:,} events in {intake_s:.1f} s ({posted / intake_s:,.0f}/s at the intake); "
              f"{events:,} in the lake after {total_s:.1f} s; {len(alerts)} alerts; server peak RSS {peak:.0f} MB")
        print(f"events={events} events_per_s={rate:.0f} drain_s={total_s - intake_s:.1f} peak_rss_mb={peak:.0f}")
        return 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
