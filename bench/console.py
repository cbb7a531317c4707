"""Console speed with many alerts: the alerts list and an alert's page, through the real app.

    python bench/console.py [--alerts 100000] [--repeat 7] [--keep DIR]

Deploys a fresh home (SQLite metadata database, local lake), bulk-inserts `--alerts` alerts spread over 30
days (realistic mixes of severity, status, rule and assignee), runs the AlertManager over a few thousand
events so some alerts have their matching events in the lake (rule_matches_* files, as the pipeline writes
them), signs an Admin in with a real session cookie, and times through FastAPI's TestClient, best of
`--repeat` (the first request, which warms imports and caches, is not counted):

- the alerts list page `/alerts` (first page) and a filtered one (`?status=OPEN&severity=HIGH&severity=CRITICAL`);
- an alert's page `/alerts/<id>` for an alert with 200 events in the lake.

The last line has a fixed format, for scripts (alerts_list_ms is the slower of the two list pages):

    alerts_list_ms=X alert_detail_ms=Y target_ms=300
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from onca.alerts.manager import AlertManager
from onca.api import sessions
from onca.api.app import create_app
from onca.core import users
from onca.deploy.stacks import Deployment, home_context
from onca.detections.runner import RuleMatch
from onca.lake.writer import LakeWriter
from onca.store.db import make_engine
from onca.store.models import SEVERITIES, Alert

TARGET_MS = 300
LOG_TYPE = "Custom.Bench"
ADMIN = "admin@example.com"
STATUSES = (("OPEN", 0.55), ("TRIAGED", 0.15), ("CLOSED", 0.2), ("RESOLVED", 0.1))
SEVERITY_MIX = (0.1, 0.3, 0.35, 0.2, 0.05)  # INFO .. CRITICAL


def alert_rows(count: int, now: datetime, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rules = [f"Bench.Rule.{i:03d}" for i in range(200)]
    analysts = [f"analyst{i}@example.com" for i in range(8)]
    statuses, weights = zip(*STATUSES, strict=True)
    rows = []
    for i in range(count):
        created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        first = created - timedelta(minutes=rng.uniform(1, 120))
        rule = rng.choice(rules)
        digest = hashlib.md5(f"bench-{seed}-{i}".encode()).hexdigest()
        status = rng.choices(statuses, weights)[0]
        rows.append({
            "id": digest, "rule_id": rule, "kind": "RULE" if rng.random() > 0.02 else "RULE_ERROR",
            "dedup": f"user-{rng.randrange(5000)}", "dedup_key": digest, "severity": rng.choices(SEVERITIES,
                                                                                                 SEVERITY_MIX)[0],
            "title": f"{rule} fired for user-{rng.randrange(5000)} from 10.{rng.randrange(256)}.{rng.randrange(256)}.1",
            "description": "Synthetic alert.", "reference": "", "runbook": "", "alert_context": {"n": i},
            "destinations": None, "tags": ["bench"], "reports": {}, "first_event_time": first,
            "last_event_time": created, "event_count": rng.randint(1, 50), "unique_count": 0,
            "log_types": [LOG_TYPE], "status": status,
            "assignee": rng.choice(analysts) if status != "OPEN" else None, "window_start": first,
            "window_end": first + timedelta(hours=1), "raised": rng.random() > 0.02, "raised_at": created,
            "created_at": created, "updated_at": created,
        })
    return rows


def lake_alerts(sessions_factory: Callable[[], Session], lake_dir: Path, now: datetime) -> str:
    """Run the AlertManager over 48 hours of events (20 rules, one busy dedup group); the busy alert's id."""
    manager = AlertManager(sessions_factory, LakeWriter(lake_dir), clock=lambda: now)
    start = now - timedelta(hours=48)
    events = [{"p_row_id": f"ev{i:06d}", "p_event_time": start + timedelta(seconds=i * 43),
               "p_log_type": LOG_TYPE, "user": f"user-{i % 97}", "action": "login", "ip": f"10.0.{i % 250}.7"}
              for i in range(4000)]
    def match(i: int, rule: str, title: str, dedup: str, severity: str, context: str | None) -> RuleMatch:
        return RuleMatch(rule_id=rule, event_index=i, title=title, dedup=dedup, severity=severity,
                         alert_context=context, destinations=None, unique=None, description="A bench rule.",
                         reference="", runbook="")

    matches = []
    for i in range(len(events)):
        # 200 events within 2.4 hours go to one alert; the rest spread over 20 rules and many dedup groups.
        if 1000 <= i < 1200:
            matches.append(match(i, "Bench.Busy", "Busy <alert> for user-1", "user-1", "HIGH", '{"user": "user-1"}'))
        else:
            matches.append(match(i, f"Bench.Lake.{i % 20}", f"lake alert {i % 97}", f"user-{i % 97}", "MEDIUM", None))
    manager.process(matches, [], events=events, log_type=LOG_TYPE,
                    rule_meta={"Bench.Busy": {"DedupPeriodMinutes": 180}})
    with sessions_factory() as session:
        return session.scalars(select(Alert.id).where(Alert.rule_id == "Bench.Busy")).one()


def best_ms(client: TestClient, url: str, repeat: int) -> float:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="Deploy here and keep it (default: a temporary directory).")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="onca-console-bench-"))
    home = base / "home"
    try:
        started = time.perf_counter()
        deployment = Deployment(home)
        outcome = deployment.deploy("onca-main", {"FirstUserEmail": ADMIN, "WebListenAddress": "127.0.0.1:18999"})
        deployment.close()
        assert outcome.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), (outcome.status, outcome.error)
        ctx = home_context(home)
        assert ctx is not None
        print(f"deployed in {time.perf_counter() - started:.1f} s")
        engine = make_engine(ctx.database_url, ctx.schema)
        factory = sessionmaker(engine, expire_on_commit=False)
        now = datetime.now(UTC)
        started = time.perf_counter()
        rows = alert_rows(args.alerts, now, args.seed)
        with factory.begin() as session:
            for chunk in range(0, len(rows), 10_000):
                session.execute(insert(Alert), rows[chunk:chunk + 10_000])
        print(f"inserted {len(rows):,} alerts in {time.perf_counter() - started:.1f} s")
        busy = lake_alerts(factory, ctx.lake_dir, now)
        with factory.begin() as session:
            admin = users.get_user(session, ADMIN)
            assert admin is not None
            admin.status = "active"
            cookie = sessions.create(session, admin)
        engine.dispose()
        app = create_app(home)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            client.cookies.set(sessions.COOKIE, cookie)
            first = best_ms(client, "/alerts", args.repeat)
            filtered = best_ms(client, "/alerts?status=OPEN&severity=HIGH&severity=CRITICAL", args.repeat)
            page = client.get("/alerts?status=OPEN&severity=HIGH&severity=CRITICAL")
            assert "Next page" in page.text
            detail = best_ms(client, f"/alerts/{busy}", args.repeat)
            assert "Busy &lt;alert&gt;" in client.get(f"/alerts/{busy}").text
        print(f"list first page {first:.1f} ms, filtered {filtered:.1f} ms, detail {detail:.1f} ms "
              f"(best of {args.repeat})")
        print(f"alerts_list_ms={max(first, filtered):.1f} alert_detail_ms={detail:.1f} target_ms={TARGET_MS}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
