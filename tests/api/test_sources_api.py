"""/api/v1/sources on a real deployed home: CRUD seen by the CLI, the token shown once, health from real lake
files, quarantined samples only for those who may read logs (and audited)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onca.alerts.lake import MATCH_FIELDS, match_row, matches_table, write_rows
from onca.cli.serve_command import sources_app
from onca.core import audit
from onca.lake.catalog import Catalog
from onca.lake.writer import LakeWriter
from onca.logs.model import Source
from onca.logs.pipeline import ingest
from onca.logs.registry import SchemaRegistry
from onca.pipeline.tokens import verify

SAMPLES = Path(__file__).resolve().parents[1] / "logs" / "samples"
JUNK = '<script>alert("x")</script> not json'  # a record no parser accepts, with markup in it
Clients = Callable[[str], TestClient]


def cli_sources(home: Path) -> list[dict[str, object]]:
    result = CliRunner().invoke(sources_app, ["list", "--format", "json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def source_of(app: FastAPI, token: str) -> str | None:
    with app.state.sessions() as session:
        found = verify(session, token)
        return found.name if found is not None else None


def write_lake(app: FastAPI, tmp_path: Path) -> None:
    """18 Okta events and 2 quarantined records from source `okta`, 5 events from `other`, via the real ingest."""
    lake, registry = app.state.ctx.lake_dir, SchemaRegistry.load()
    okta = SAMPLES / "okta.ndjson"
    mixed = tmp_path / "okta-and-junk.ndjson"
    mixed.write_text(okta.read_text() + JUNK + "\n" + "A" * 5000 + "\n")
    summary = ingest([str(mixed)], lake=lake, registry=registry, log_types=["Okta.SystemLog"],
                     source=Source(id="source:okta", label="okta", log_types=["Okta.SystemLog"]))
    assert (summary.events, summary.quarantined) == (18, 2)
    # A rule matched three of them: their copies in rule_matches_* must not count twice.
    with Catalog(lake).connect() as con:
        events = con.execute("SELECT * FROM okta_systemlog LIMIT 3").to_arrow_table().to_pylist()
    matches = [match_row(event, rule_id="Test.Rule", alert_id="a" * 32, alert_context=None, dedup="d",
                         severity="HIGH", tags=[], reports={}) for event in events]
    assert len(matches) == 3
    assert write_rows(LakeWriter(lake), matches_table("Okta.SystemLog"), matches, None, MATCH_FIELDS)
    other = tmp_path / "other.ndjson"
    other.write_text("".join(okta.read_text().splitlines(keepends=True)[:5]))
    ingest([str(other)], lake=lake, registry=registry, log_types=["Okta.SystemLog"],
           source=Source(id="source:other", label="other", log_types=["Okta.SystemLog"]))


def test_create_list_rotate_disable_delete_as_the_cli_sees_it(app: FastAPI, web_home: Path,
                                                               token_client: Clients) -> None:
    admin = token_client("Admin")
    created = admin.post("/api/v1/sources", json={"name": "ct", "log_types": ["AWS.CloudTrail"]})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("onca_src_") and created.json()["ingest_path"] == "/ingest/ct"
    assert source_of(app, token) == "ct"
    assert "ct" in [s["name"] for s in cli_sources(web_home)]

    listed = admin.get("/api/v1/sources")
    assert listed.status_code == 200
    row = next(s for s in listed.json()["sources"] if s["name"] == "ct")
    assert row["has_token"] is True and row["health"]["events"] == 0 and row["health"]["last_event"] is None
    one = admin.get("/api/v1/sources/ct")
    for answer in (listed, one):  # the token is shown once: neither it nor its hash comes back
        assert token not in answer.text and "token_sha256" not in answer.text

    rotated = admin.post("/api/v1/sources/ct/token")
    assert rotated.status_code == 200
    new_token = rotated.json()["token"]
    assert new_token != token and source_of(app, token) is None and source_of(app, new_token) == "ct"

    assert admin.patch("/api/v1/sources/ct", json={"enabled": False}).json()["source"]["enabled"] is False
    assert source_of(app, new_token) is None  # a disabled source's token is refused
    assert next(s for s in cli_sources(web_home) if s["name"] == "ct")["enabled"] is False

    assert admin.delete("/api/v1/sources/ct").status_code == 204
    assert "ct" not in [s["name"] for s in cli_sources(web_home)]
    assert admin.get("/api/v1/sources/ct").status_code == 404
    assert admin.delete("/api/v1/sources/ct").status_code == 404

    actions = [(r["action"], r["target"]) for r in audit.read(web_home) if r["action"].startswith("source.")]
    assert ("source.created", "ct") in actions and ("source.token_rotated", "ct") in actions
    assert ("source.updated", "ct") in actions and ("source.deleted", "ct") in actions


def test_bad_sources_get_field_errors(token_client: Clients, tmp_path: Path) -> None:
    admin = token_client("Admin")

    def errors(body: dict[str, object]) -> dict[str, str]:
        answer = admin.post("/api/v1/sources", json=body)
        assert answer.status_code == 422, answer.text
        return answer.json()["detail"]["errors"]

    assert "kind" in errors({"name": "x", "kind": "carrier-pigeon", "log_types": ["AWS.CloudTrail"]})
    assert "unknown log type(s): Nope" in errors({"name": "x", "log_types": ["Nope"]})["log_types"]
    assert "path" in errors({"name": "d", "kind": "directory", "log_types": ["Okta.SystemLog"], "path": "relative"})
    assert "path" in errors({"name": "d", "kind": "directory", "log_types": ["Okta.SystemLog"],
                             "path": str(tmp_path / "missing")})
    assert "udp" in errors({"name": "s", "kind": "syslog", "log_types": ["Syslog.RFC5424"], "udp": "nowhere"})
    assert "name" in errors({"name": "a/b", "log_types": ["AWS.CloudTrail"]})
    ok = admin.post("/api/v1/sources", json={"name": "drop", "kind": "directory", "log_types": ["Okta.SystemLog"],
                                             "path": str(tmp_path)})
    assert ok.status_code == 201 and ok.json()["token"] is None
    assert ok.json()["source"]["config"] == {"path": str(tmp_path.resolve())}
    assert "already exists" in errors({"name": "drop", "log_types": ["AWS.CloudTrail"]})["name"]
    assert admin.post("/api/v1/sources/drop/token").status_code == 422  # only http sources have a token
    assert admin.post("/api/v1/sources", content=b"{not json", headers={"content-type": "application/json"}
                      ).status_code == 422


def test_health_comes_from_the_lake(app: FastAPI, web_home: Path, token_client: Clients, tmp_path: Path) -> None:
    token_client("Admin").post("/api/v1/sources", json={"name": "okta", "log_types": ["Okta.SystemLog"]})
    write_lake(app, tmp_path)

    health = token_client("Support").get("/api/v1/sources/health")
    assert health.status_code == 200, health.text
    okta = next(s for s in health.json()["sources"] if s["name"] == "okta")
    assert (okta["events"], okta["events_24h"], okta["quarantined"], okta["quarantined_24h"]) == (18, 18, 2, 2)
    assert okta["events_by_log_type"] == {"Okta.SystemLog": 18} and okta["last_event"].endswith("Z")
    assert "script" not in health.text and "AAAA" not in health.text  # counts only, no log data

    analyst = token_client("Analyst")
    one = analyst.get("/api/v1/sources/okta").json()["source"]
    assert one["health"]["events"] == 18 and one["health"]["quarantined"] == 2
    samples = analyst.get("/api/v1/sources/okta/quarantine")
    assert samples.status_code == 200
    by_size = sorted(samples.json()["samples"], key=lambda s: s["size"])
    assert [s["size"] for s in by_size] == [len(JUNK), 5000]
    assert by_size[0]["raw"] == JUNK and by_size[0]["truncated"] is False
    assert by_size[1]["truncated"] is True and len(by_size[1]["raw"]) == 2000
    assert all("Okta.SystemLog" in s["reasons"] for s in by_size)
    viewed = [r for r in audit.read(web_home) if r["action"] == "source.quarantine_viewed"]
    assert viewed and viewed[-1]["actor"] == "analyst@example.com" and viewed[-1]["details"]["samples"] == 2


def test_operator_roles_see_health_but_never_samples(token_client: Clients, web_home: Path) -> None:
    token_client("Admin").post("/api/v1/sources", json={"name": "okta", "log_types": ["Okta.SystemLog"]})
    for role in ("Support", "Operations"):
        caller = token_client(role)
        assert caller.get("/api/v1/sources/okta/quarantine").status_code == 403
        assert caller.get("/api/v1/sources").status_code == 403
        assert caller.post("/api/v1/sources", json={"name": "x", "log_types": ["AWS.CloudTrail"]}).status_code == 403
        assert caller.get("/api/v1/sources/health").status_code == 200
    assert token_client("ReadOnly").post("/api/v1/sources/okta/token").status_code == 403
    denied = [r for r in audit.read(web_home) if r["action"] == "access.denied"]
    assert any(r["details"]["permission"] == "logs:read" for r in denied)
