"""The whole lifecycle with Onca's real components, driven through the real `onca` command where a user would."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from onca.core.access import authorize
from onca.deploy.components import components
from onca.deploy.diagnose import diagnose
from onca.deploy.stacks import Deployment
from onca.store.db import make_engine, session_scope
from onca.store.models import Invite, User

from .test_component_detections import build_wheel, write_rule_pack

REPO = Path(__file__).resolve().parents[2]
RESOURCES = [(c.name, r.name) for c in components() for r in c.resources]


def free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def onca(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onca", *args, "--home", str(home)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=300, check=False)


def base_params(**extra: str) -> dict[str, str]:
    return {"FirstUserEmail": "admin@example.com", "WebListenAddress": free_address(), **extra}


def dump_database(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(home / "metadata.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def test_deploy_has_real_effects_and_a_second_deploy_does_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    wheel = build_wheel(tmp_path / "wheels")
    pack = write_rule_pack(tmp_path / "pack")
    params = base_params(PipLibraries=str(wheel), InitialAnalysisPackUrls=str(pack),
                         SupportRoleIdentityAccountId="support@vendor.example")
    result = onca(home, "deploy", *[f"--param={k}={v}" for k, v in params.items()])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stack onca-main: CREATE_COMPLETE" in result.stdout
    assert "/invite?token=" in result.stdout

    engine = make_engine(f"sqlite:///{home / 'metadata.db'}")
    with session_scope(engine) as session:
        admin = session.scalars(select(User).where(User.email == "admin@example.com")).one()
        assert admin.role == "Admin" and admin.status == "invited"
        assert session.scalars(select(Invite).where(Invite.user_id == admin.id)).first() is not None
        # the Support identity is refused data, allowed health and deployment events
        for permission in ("logs:read", "alerts:read", "detections:read", "search:run"):
            assert not authorize(session, "support@vendor.example", permission)
        assert authorize(session, "support@vendor.example", "deployment:read")
    engine.dispose()

    # the pack's detection imports the PipLibraries package: `onca test --home` runs the deployed content with it
    tested = onca(home, "test", "--no-color")
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr
    assert "Test.Fixture.SuspiciousUser\n\t[PASS]" in tested.stdout
    assert "\tFailed: 0\n\tInvalid: 0\n" in tested.stdout

    events_before = json.loads(onca(home, "events", "--format", "json").stdout)
    again = onca(home, "deploy")
    assert again.returncode == 0 and "no changes" in again.stdout
    assert json.loads(onca(home, "events", "--format", "json").stdout) == events_before


def test_bad_parameter_fails_preflight_before_anything_exists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = onca(home, "deploy", "--param", "FirstUserEmail=not-an-email")
    assert result.returncode == 2
    assert "FirstUserEmail" in result.stderr and "not-an-email" in result.stderr and "preflight" in result.stderr
    assert not (home / "metadata.db").exists() and not (home / "config").exists()
    status = json.loads(onca(home, "status", "--format", "json").stdout)
    assert status["status"] == "NOT_DEPLOYED"


@pytest.mark.parametrize(("component", "resource"), RESOURCES)
def test_failure_in_any_resource_during_create_rolls_everything_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, component: str, resource: str
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ONCA_FAULT", f"{component}/{resource}:create")
    deployment = Deployment(home)
    outcome = deployment.deploy("onca-main", base_params())
    assert outcome.status == "ROLLBACK_COMPLETE"
    assert all(not deployment.ledger.resources(s.name) for s in deployment.ledger.stacks("onca-main"))
    assert not (home / "metadata.db").exists() and not (home / "config" / "keyring.key").exists()
    result = diagnose(deployment.ledger, "onca-main")
    assert result.first_failure is not None
    assert (result.first_failure.component, result.first_failure.resource) == (component, resource)
    assert "injected fault" in result.first_failure.reason
    assert result.other_failures == [] and result.rollback_failures == []
    monkeypatch.delenv("ONCA_FAULT")
    assert deployment.deploy("onca-main", base_params()).status == "CREATE_COMPLETE"
    deployment.close()


# Every resource whose properties the update below changes.
UPDATED = [(c, r) for c, r in RESOURCES if (c, r) in {
    ("bootstrap", "LakeDirectory"), ("core", "SupportRoleBinding"), ("core", "OperationsRoleBinding"),
    ("core", "ErrorReporting"), ("detections", "PipLibraries"), ("detections", "DetectionRuntime"),
    ("web", "WebConfig"), ("onboard", "AuditLogSource"), ("onboard", "AuditDetections")}]


@pytest.mark.parametrize(("component", "resource"), UPDATED)
def test_failure_during_update_restores_parameters_versions_and_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, component: str, resource: str
) -> None:
    home = tmp_path / "home"
    deployment = Deployment(home)
    assert deployment.deploy("onca-main", base_params(SupportRoleIdentityAccountId="s1")).status == "CREATE_COMPLETE"
    before = (deployment.ledger.stack("onca-main").parameters, deployment.ledger.stack("onca-main").version,
              dump_database(home), (home / "config" / "web.json").read_text())
    monkeypatch.setenv("ONCA_FAULT", f"{component}/{resource}:update")
    change = {"SupportRoleIdentityAccountId": "s2", "OpsRoleIdentityAccountId": "ops1", "SentryEnvironment": "",
              "CustomDomain": "siem.example.com", "OnboardSelf": "false", "LakeLocation": str(tmp_path / "lake2"),
              "PipLibraries": str(build_wheel(tmp_path / "wheels"))}
    outcome = deployment.deploy("onca-main", change)
    assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.error
    assert not (home / "python" / "oncafix").exists()  # the new library was not left installed
    after = (deployment.ledger.stack("onca-main").parameters, deployment.ledger.stack("onca-main").version,
             dump_database(home), (home / "config" / "web.json").read_text())
    assert after == before
    assert diagnose(deployment.ledger, "onca-main").first_failure.resource == resource
    deployment.close()


def test_failed_rollback_is_recovered_with_continue_rollback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    failing = {"ONCA_FAULT": "web/WebConfig:update,core/SupportRoleBinding:rollback"}
    result = onca(home, "deploy", "--param", "SupportRoleIdentityAccountId=s9", "--param", "CustomDomain=x.example.com",
                  env=failing)
    assert result.returncode == 3, result.stdout + result.stderr
    status = json.loads(onca(home, "status", "--format", "json").stdout)
    assert status["status"] == "UPDATE_ROLLBACK_FAILED"
    diagnosis = json.loads(onca(home, "diagnose", "--format", "json").stdout)
    assert diagnosis["first_failure"]["resource"] == "WebConfig"
    assert diagnosis["rollback_failures"][0]["resource"] == "SupportRoleBinding"
    assert any("--continue-rollback" in advice for advice in diagnosis["advice"])
    blocked = onca(home, "deploy")
    assert blocked.returncode == 2 and "--continue-rollback" in blocked.stderr
    recovered = onca(home, "deploy", "--continue-rollback", "--skip", "core/SupportRoleBinding")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "inconsistent" in recovered.stderr
    assert json.loads(onca(home, "status", "--format", "json").stdout)["status"] == "UPDATE_ROLLBACK_COMPLETE"


# Every step boundary of a first deploy: before and after each resource, and after each component.
KILL_POINTS = [f"{when}:{c}/{r}" for c, r in RESOURCES for when in ("before", "after")] + [
    f"after:{c.name}" for c in components()]


@pytest.mark.parametrize("boundary", KILL_POINTS)
def test_deployer_killed_at_a_step_boundary_is_recovered_by_the_next_run(tmp_path: Path, boundary: str) -> None:
    home = tmp_path / "home"
    params = [f"--param={k}={v}" for k, v in base_params().items()]
    killed = onca(home, "deploy", "--quiet", *params, env={"ONCA_KILL_AT": boundary})
    assert killed.returncode == -9
    status = json.loads(onca(home, "status", "--format", "json").stdout)
    assert status["lock"] is not None and status["lock"]["alive"] is False
    rerun = onca(home, "deploy", "--quiet", *params)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "recovered:" in rerun.stdout and "CREATE_COMPLETE" in rerun.stdout
    assert json.loads(onca(home, "status", "--format", "json").stdout)["lock"] is None


def test_backup_restore_and_teardown_keep_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    (home / "lake" / "events.parquet").write_bytes(b"data")
    backup = onca(home, "backup")
    assert backup.returncode == 0
    path = Path(backup.stdout.split("Backup written: ")[1].strip())
    before = dump_database(home)
    with sqlite3.connect(home / "metadata.db") as db:
        db.execute("DELETE FROM invites")
    assert onca(home, "restore", str(path)).returncode == 0
    assert dump_database(home) == before
    refused = onca(home, "teardown")  # no --yes and no terminal: nothing is torn down
    assert refused.returncode != 0 and json.loads(onca(home, "status", "--format", "json").stdout)["status"] \
        == "CREATE_COMPLETE"
    assert onca(home, "teardown", "--yes").returncode == 0
    assert (home / "lake" / "events.parquet").exists() and path.exists()
    assert not (home / "metadata.db").exists()
    assert json.loads(onca(home, "status", "--format", "json").stdout)["status"] == "DELETE_COMPLETE"


def test_parameters_lists_every_parameter_with_current_values_and_masks_secrets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", *[f"--param={k}={v}" for k, v in base_params(
        SmtpUrl="smtp://user:secret@127.0.0.1:2525").items()]).returncode == 0
    rows = {r["name"]: r for r in json.loads(onca(home, "parameters", "--format", "json").stdout)}
    assert rows["FirstUserEmail"]["current"] == "admin@example.com" and rows["FirstUserEmail"]["required"]
    assert rows["SmtpUrl"]["current"] == "********"
    assert rows["OnboardSelf"]["default"] == "true"


def test_a_drifted_schema_stops_deploys_before_anything_changes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    with sqlite3.connect(home / "metadata.db") as db:
        db.execute("ALTER TABLE users ADD COLUMN nickname TEXT")
    events = len(json.loads(onca(home, "events", "--format", "json").stdout))
    result = onca(home, "deploy", "--param", "CustomDomain=siem.example.com")
    assert result.returncode == 2
    assert "schema-drift" in result.stderr and "nickname" in result.stderr and "onca restore" in result.stderr
    assert len(json.loads(onca(home, "events", "--format", "json").stdout)) == events
