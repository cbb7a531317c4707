"""`onca up --demo` on an empty home: deploys, serves, replays Onca's samples, and alerts appear."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.deploy.test_lifecycle import free_address

from .test_serve_e2e import onca, wait_for

REPO = Path(__file__).resolve().parents[2]


def test_up_demo_on_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "onca.yml").write_text(f"parameters:\n  WebListenAddress: {free_address()}\n")
    missing = subprocess.run([sys.executable, "-m", "onca", "up", "--home", str(home)], cwd=REPO, capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert missing.returncode == 2 and "--first-user-email" in missing.stderr
    ready = tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-m", "onca", "up", "--home", str(home), "--first-user-email",
                                "admin@example.com", "--demo", "--listen", "127.0.0.1:0", "--ready-file", str(ready)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ready.exists(), timeout=120)
        def rules() -> set[str]:
            alerts = json.loads(onca(home, "alerts", "list", "--format", "json", "--limit", "1000").stdout or "[]")
            found = {a["rule_id"] for a in alerts}
            return found if "Onca.AWS.RootConsoleLogin" in found and len(found) >= 10 else set()

        assert wait_for(rules, timeout=90)
        # Onca's own samples are clean: every record parses, no shipped rule fails on them.
        alerts = json.loads(onca(home, "alerts", "list", "--format", "json", "--limit", "1000").stdout)
        assert not [a["rule_id"] for a in alerts if a["type"] == "RULE_ERROR"]
        quarantined = onca(home, "query", "SELECT count(*) AS n FROM quarantine", "--format", "json")
        assert quarantined.returncode != 0 or json.loads(quarantined.stdout)[0]["n"] == 0, quarantined.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert "/invite?token=" in out and "demo: replaying" in out
