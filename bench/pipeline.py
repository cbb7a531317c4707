"""End-to-end `onca serve` under a sustained load: CloudTrail over HTTP -> spool -> workers -> lake -> rules -> alerts.

    python bench/pipeline.py --events ct.ndjson [--rate 10000] [--seconds 600] [--sources 2]
                             [--analysis-dir panther-analysis]

Deploys a throwaway home on 127.0.0.1, adds --sources CloudTrail sources (one worker partition each at most;
real deployments have one source per account or region), with --analysis-dir installs that checkout's
CloudTrail rules next to Onca's own, starts `onca serve` (the api process, one worker process per CPU and the
scheduler), then posts the file's events at --rate events/s for --seconds, paced in 50 ms batches.

Latency is measured with marker events: every 0.5 s one batch carries a root console sign-in from a new IP,
which Onca's `Onca.AWS.RootConsoleLogin` rule turns into a new alert. A marker's latency is the alert's
creation time minus the moment the intake acknowledged its batch (202, after the spool sync), so it covers
the spool, parsing, the lake write, every rule and the alert transaction.

It samples the whole process tree's resident memory and the queue lag every 5 s, then waits until the
workers have drained the spool, and ends with
`events=N events_per_s=X p50_ms=A p99_ms=B peak_rss_mb=M rss_growth_mb=G` where events_per_s is the lake's
count over the time until drained, and rss_growth_mb is the mean RSS of the last minute minus that of the
first (after warm-up): flat memory shows as a growth near 0 however long the run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

MARKER_RULE = "Onca.AWS.RootConsoleLogin"
MARKER_ACCOUNT = "999999999999"
BATCH_S = 0.05
SAMPLE_S = 5.0


def onca(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onca", *args, "--home", str(home)], capture_output=True, text=True,
                          check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def marker(number: int) -> bytes:
    ip = f"198.18.{number // 250 % 250}.{number % 250 + 1}"
    event = {"eventVersion": "1.09", "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1",
             "sourceIPAddress": ip, "userAgent": "bench", "eventID": f"bench-marker-{number}",
             "eventType": "AwsConsoleSignIn", "recipientAccountId": MARKER_ACCOUNT,
             "userIdentity": {"type": "Root", "principalId": MARKER_ACCOUNT, "accountId": MARKER_ACCOUNT,
                              "arn": f"arn:aws:iam::{MARKER_ACCOUNT}:root"},
             "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "Yes"}}
    return json.dumps(event).encode()


class Load:
    """Posts at a fixed rate from one thread per source; remembers when each marker was acknowledged."""

    def __init__(self, address: str, tokens: list[tuple[str, str]], lines: list[bytes], rate: float) -> None:
        self.address, self.tokens, self.lines, self.rate = address, tokens, lines, rate
        self.posted = 0
        self.behind_s = 0.0  # how far the posting fell behind its schedule at worst
        self.markers: dict[str, float] = {}  # marker IP -> wall-clock time its batch was acknowledged
        self.lock = threading.Lock()

    def run(self, seconds: float) -> None:
        threads = [threading.Thread(target=self._post, args=(i, seconds)) for i in range(len(self.tokens))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _post(self, index: int, seconds: float) -> None:
        source, token = self.tokens[index]
        per_batch = max(1, round(self.rate * BATCH_S / len(self.tokens)))
        started = time.monotonic()
        cursor, batch, markers = index * 7919, 0, 0
        while (due := started + batch * BATCH_S) < started + seconds:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.behind_s = max(self.behind_s, -delay)
            chunk = [self.lines[(cursor + i) % len(self.lines)] for i in range(per_batch)]
            cursor += per_batch
            ip = None
            if index == 0 and batch % round(0.5 / BATCH_S) == 0:
                chunk.append(marker(markers))
                ip = f"198.18.{markers // 250 % 250}.{markers % 250 + 1}"
                markers += 1
            request = urllib.request.Request(f"http://{self.address}/ingest/{source}", data=b"\n".join(chunk),
                                             method="POST", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                accepted = json.loads(response.read())["accepted"]
            acknowledged = time.time()
            with self.lock:
                self.posted += accepted
                if ip is not None:
                    self.markers[ip] = acknowledged
            batch += 1


def metric(address: str, name: str) -> float:
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def marker_latencies(home: Path, markers: dict[str, float]) -> list[float]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from onca.deploy.stacks import home_context
    from onca.store.db import make_engine
    from onca.store.models import Alert

    ctx = home_context(home)
    assert ctx is not None
    engine = make_engine(ctx.database_url, ctx.schema)
    try:
        with Session(engine) as session:
            alerts = session.scalars(select(Alert).where(Alert.rule_id == MARKER_RULE))
            created = {a.dedup.rsplit(":", 1)[-1]: a.created_at.timestamp() for a in alerts}
    finally:
        engine.dispose()
    return [created[ip] - acked for ip, acked in markers.items() if ip in created]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, required=True, help="CloudTrail NDJSON (bench/cloudtrail_events.py)")
    parser.add_argument("--rate", type=float, default=10_000, help="events per second to post (default 10000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to post (default 60; 600 for memory)")
    parser.add_argument("--sources", type=int, default=2, help="CloudTrail sources to spread the load over")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    parser.add_argument("--analysis-dir", type=Path, help="a panther-analysis checkout whose CloudTrail rules to add")
    args = parser.parse_args(argv)
    lines = [line for line in args.events.read_bytes().splitlines() if line.strip()]
    if not lines:
        parser.error(f"{args.events} has no events")
    home = Path(tempfile.mkdtemp(prefix="onca-bench-"))
    server = None
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
        tokens = []
        for i in range(args.sources):
            added = onca(home, "sources", "add", f"ct{i}", "--log-type", "AWS.CloudTrail").stdout
            tokens.append((f"ct{i}", added.split("Token (shown once): ")[1].split()[0]))
        ready = home / "ready"
        command = [sys.executable, "-m", "onca", "serve", "--home", str(home), "--listen", "127.0.0.1:0",
                   "--ready-file", str(ready)]
        if args.workers:
            command += ["--workers", str(args.workers)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not ready.exists():
            if server.poll() is not None:
                print("onca serve exited before it was ready", file=sys.stderr)
                return 1
            time.sleep(0.1)
        address = ready.read_text().strip()
        load = Load(address, tokens, lines, args.rate)
        poster = threading.Thread(target=load.run, args=(args.seconds,))
        started = time.monotonic()
        poster.start()
        samples: list[tuple[float, float, float]] = []  # (seconds, tree RSS MB, queue lag entries)
        while poster.is_alive():
            poster.join(SAMPLE_S)
            samples.append((time.monotonic() - started, tree_rss_mb(server.pid),
                            metric(address, "onca_queue_lag_entries")))
        intake_s = time.monotonic() - started
        while metric(address, "onca_queue_lag_entries") > 0:
            time.sleep(0.2)
        total_s = time.monotonic() - started
        samples.append((total_s, tree_rss_mb(server.pid), 0.0))
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        latencies = marker_latencies(home, load.markers)
        stored = json.loads(onca(home, "query", "SELECT count(*) AS n FROM aws_cloudtrail", "--format", "json").stdout)
        events = stored[0]["n"] if stored else 0
        rss = [s[1] for s in samples]
        warm = [s[1] for s in samples if 60 <= s[0] <= 120] or rss[:2]
        last = [s[1] for s in samples if s[0] >= samples[-1][0] - 60] or rss[-2:]
        growth = statistics.mean(last) - statistics.mean(warm)
        p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
        print(f"posted {load.posted:,} events over {len(tokens)} sources in {intake_s:.1f} s "
              f"({load.posted / intake_s:,.0f}/s; target {args.rate:,.0f}/s, worst lag behind schedule "
              f"{load.behind_s:.2f} s); {events:,} in the lake after {total_s:.1f} s (drained "
              f"{total_s - intake_s:.1f} s after the last post); max queue lag {max(s[2] for s in samples):.0f} "
              f"spool entries")
        print(f"latency intake -> alert over {len(latencies)}/{len(load.markers)} markers: p50 {p50:.0f} ms, "
              f"p99 {p99:.0f} ms, max {max(latencies, default=float('nan')) * 1000:.0f} ms")
        print("memory (process tree RSS, MB) every 5 s: " + " ".join(f"{r:.0f}" for r in rss))
        print(f"events={events} events_per_s={events / total_s:.0f} p50_ms={p50:.0f} p99_ms={p99:.0f} "
              f"peak_rss_mb={max(rss):.0f} rss_growth_mb={growth:.0f}")
        return 0
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
