"""/api/v1/deployment on a real deployed home: status tree, paged events, the diagnosis of a failed update and
the upgrade plan; the operator roles may read them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from onca import __version__
from onca.deploy import reports
from onca.deploy.releases import load_catalogue
from onca.deploy.stacks import Deployment

Clients = Callable[[str], TestClient]
SEED_CATALOGUE = Path(__file__).resolve().parents[1] / "deploy" / "catalogues" / "seed.yml"


def failed_update(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An update that fails in onboard/AuditLogSource and is rolled back (ONCA_FAULT is the drills' switch)."""
    monkeypatch.setenv("ONCA_FAULT", "onboard/AuditLogSource:update")
    deployment = Deployment(home)
    try:
        record = deployment.ledger.stack("onca-main")
        assert record is not None
        outcome = deployment.deploy("onca-main", {**(record.parameters or {}), "OnboardSelf": False})
    finally:
        deployment.close()
        monkeypatch.delenv("ONCA_FAULT")
    assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome


def test_status_events_and_plan_of_a_healthy_home(token_client: Clients) -> None:
    support = token_client("Support")
    status = support.get("/api/v1/deployment/status")
    assert status.status_code == 200, status.text
    data = status.json()
    assert data["stack"] == "onca-main" and data["status"] == "CREATE_COMPLETE"
    assert data["version"] == __version__ == data["installed_version"]
    components = {c["name"]: c for c in data["components"]}
    assert {"bootstrap", "core", "detections", "web", "onboard"} <= set(components)
    assert all(c["status"] == "CREATE_COMPLETE" for c in components.values())
    assert "MetadataDatabase" in [r["name"] for r in components["bootstrap"]["resources"]]

    first = support.get("/api/v1/deployment/events", params={"limit": 5}).json()
    assert len(first["events"]) == 5 and first["total"] > 5 and first["offset"] == 0
    everything = support.get("/api/v1/deployment/events", params={"limit": 500}).json()["events"]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)  # newest first
    second = support.get("/api/v1/deployment/events", params={"limit": 5, "offset": 5}).json()
    assert [e["id"] for e in first["events"] + second["events"]] == [e["id"] for e in everything[:10]]
    assert everything[0]["stack"] == "onca-main" and everything[0]["status"] == "CREATE_COMPLETE"
    assert support.get("/api/v1/deployment/events", params={"limit": 0}).status_code == 422

    diagnosis = support.get("/api/v1/deployment/diagnose").json()
    assert diagnosis["first_failure"] is None and diagnosis["advice"] == ["no failed operation: nothing to diagnose"]

    plan = support.get("/api/v1/deployment/upgrade-plan").json()
    assert plan["ok"] is True and plan["deployed"] == plan["target"] == __version__ and plan["hops"] == []
    assert support.get("/api/v1/deployment/upgrade-plan", params={"target": "drop table"}).status_code == 422


def test_diagnose_names_the_first_failure(web_home: Path, monkeypatch: pytest.MonkeyPatch,
                                          token_client: Clients) -> None:
    failed_update(web_home, monkeypatch)
    operations = token_client("Operations")
    assert operations.get("/api/v1/deployment/status").json()["status"] == "UPDATE_ROLLBACK_COMPLETE"
    diagnosis = operations.get("/api/v1/deployment/diagnose").json()
    failure = diagnosis["first_failure"]
    assert (failure["component"], failure["resource"], failure["status"]) == ("onboard", "AuditLogSource",
                                                                              "UPDATE_FAILED")
    assert failure["reason"] == "injected fault: onboard/AuditLogSource update"
    failed = operations.get("/api/v1/deployment/events", params={"failed_only": True}).json()
    assert failed["total"] >= 1 and all(e["status"].endswith("_FAILED") for e in failed["events"])
    one_op = operations.get("/api/v1/deployment/events", params={"operation": diagnosis["operation"]}).json()
    assert one_op["total"] > 0 and {e["operation"] for e in one_op["events"]} == {diagnosis["operation"]}


def test_upgrade_plan_with_hops_and_blockers(web_home: Path, monkeypatch: pytest.MonkeyPatch,
                                             token_client: Clients) -> None:
    # The shipped catalogue has one release, so plan with the seed's catalogue from a deployed 1.19.2.
    seed = load_catalogue(SEED_CATALOGUE)
    monkeypatch.setattr(reports, "load_catalogue", lambda: seed)
    deployment = Deployment(web_home)
    record = deployment.ledger.stack("onca-main")
    assert record is not None
    deployment.ledger.record_deployed("onca-main", "1.19.2", record.parameters or {})
    deployment.close()
    plan = token_client("Support").get("/api/v1/deployment/upgrade-plan", params={"target": "1.20"}).json()
    assert plan["deployed"] == "1.19.2" and plan["target"] == "1.20.3" and plan["ok"] is False
    assert [(hop["from"], hop["to"]) for hop in plan["hops"]] == [("1.19.2", "1.20.3")]
    assert any("ApiCertificateFile" in blocker for blocker in plan["blockers"])
    downgrade = token_client("Support").get("/api/v1/deployment/upgrade-plan", params={"target": "1.10"}).json()
    assert downgrade["ok"] is False and downgrade["error"]


def test_every_role_with_deployment_read_and_no_one_else(token_client: Clients, anon: TestClient) -> None:
    for role in ("Admin", "Support", "Operations"):
        assert token_client(role).get("/api/v1/deployment/status").status_code == 200
    for role in ("Analyst", "ReadOnly"):
        assert token_client(role).get("/api/v1/deployment/events").status_code == 403
    assert anon.get("/api/v1/deployment/diagnose").status_code == 401
