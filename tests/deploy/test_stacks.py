"""The stack engine: create, update, rollback, failed rollback, crash recovery — on real files and a real ledger."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from onca.deploy.preflight import PreflightFailed
from onca.deploy.stacks import (
    CREATE_COMPLETE,
    ROLLBACK_COMPLETE,
    UPDATE_COMPLETE,
    UPDATE_ROLLBACK_COMPLETE,
    UPDATE_ROLLBACK_FAILED,
    DeployError,
    Deployment,
)

from .fake_components import LAYOUT, components, state

REPO = Path(__file__).resolve().parents[2]
ADMIN = {"FirstUserEmail": "admin@example.com"}
ALL_RESOURCES = [(comp, res) for comp, resources in LAYOUT.items() for res, _ in resources]


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    d = Deployment(tmp_path / "home", components=components)
    d.deploy = functools.partial(d.deploy, preflight=False)  # type: ignore[method-assign]
    yield d
    d.close()


def statuses(d: Deployment, root: str = "onca-test") -> dict[str, str]:
    return {s.name: s.status for s in d.ledger.stacks(root)}


def test_first_deploy_creates_every_component_in_order(deployment: Deployment) -> None:
    outcome = deployment.deploy("onca-test", ADMIN)
    assert outcome.status == CREATE_COMPLETE
    assert statuses(deployment) == {"onca-test": CREATE_COMPLETE, "onca-test-bootstrap": CREATE_COMPLETE,
                                    "onca-test-core": CREATE_COMPLETE, "onca-test-web": CREATE_COMPLETE}
    created = [e.resource for e in deployment.ledger.events(root="onca-test") if e.status == "CREATE_COMPLETE"
               and e.resource]
    assert created == [res for _, res in ALL_RESOURCES]
    assert state(deployment.home)["core-admin.json"] == {"FirstUserEmail": "admin@example.com"}
    assert deployment.ledger.stack("onca-test").parameters["FirstUserEmail"] == "admin@example.com"


def test_redeploy_without_changes_does_nothing(deployment: Deployment) -> None:
    deployment.deploy("onca-test", ADMIN)
    events = len(deployment.ledger.events())
    outcome = deployment.deploy("onca-test", {})
    assert outcome.status == "NO_CHANGES"
    assert len(deployment.ledger.events()) == events


@pytest.mark.parametrize(("component", "resource"), ALL_RESOURCES)
def test_failed_first_deploy_rolls_back_everything_and_keeps_events(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, component: str, resource: str
) -> None:
    monkeypatch.setenv("ONCA_FAULT", f"{component}/{resource}:create")
    outcome = deployment.deploy("onca-test", ADMIN)
    assert outcome.status == ROLLBACK_COMPLETE
    assert outcome.error == f"{component}/{resource}: injected fault: {component}/{resource} create"
    assert state(deployment.home) == {}  # everything created was deleted
    assert all(s.status == "DELETE_COMPLETE" for s in deployment.ledger.stacks("onca-test") if s.component)
    failed = [e for e in deployment.ledger.events(root="onca-test") if e.status == "CREATE_FAILED" and e.resource]
    assert [(e.stack, e.resource) for e in failed] == [(f"onca-test-{component}", resource)]
    # the next deploy simply works
    monkeypatch.delenv("ONCA_FAULT")
    assert deployment.deploy("onca-test", ADMIN).status == CREATE_COMPLETE
    assert len(state(deployment.home)) == len(ALL_RESOURCES)


@pytest.mark.parametrize(("component", "resource"), [("core", "support"), ("web", "config")])
def test_failed_update_restores_previous_parameters_and_resources(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, component: str, resource: str
) -> None:
    deployment.deploy("onca-test", {**ADMIN, "SupportRoleIdentityAccountId": "vendor-1"})
    before_state = state(deployment.home)
    before_params = deployment.ledger.stack("onca-test").parameters
    monkeypatch.setenv("ONCA_FAULT", f"{component}/{resource}:update")
    change = {"SupportRoleIdentityAccountId": "vendor-2", "CustomDomain": "siem.example.com"}
    outcome = deployment.deploy("onca-test", change)
    assert outcome.status == UPDATE_ROLLBACK_COMPLETE
    assert state(deployment.home) == before_state
    root = deployment.ledger.stack("onca-test")
    assert root.parameters == before_params and root.status == UPDATE_ROLLBACK_COMPLETE
    monkeypatch.delenv("ONCA_FAULT")
    assert deployment.deploy("onca-test", {"CustomDomain": "siem.example.com"}).status == UPDATE_COMPLETE
    assert state(deployment.home)["web-config.json"]["CustomDomain"] == "siem.example.com"


def test_failed_rollback_needs_continue_rollback_and_skip_warns(deployment: Deployment,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    deployment.deploy("onca-test", {**ADMIN, "SupportRoleIdentityAccountId": "vendor-1"})
    # core/support updates fine, web/config fails; rolling core/support back then fails too
    monkeypatch.setenv("ONCA_FAULT", "web/config:update")
    calls = {"n": 0}
    from tests.deploy import fake_components

    original = fake_components.FileResource.update

    def update(self, ctx, old, new, outputs):  # type: ignore[no-untyped-def]
        if self.name == "support":
            calls["n"] += 1
            if calls["n"] == 2:  # the rollback's update of core/support
                raise RuntimeError("disk full")
        return original(self, ctx, old, new, outputs)

    monkeypatch.setattr(fake_components.FileResource, "update", update)
    change = {"SupportRoleIdentityAccountId": "vendor-2", "CustomDomain": "a.example.com"}
    outcome = deployment.deploy("onca-test", change)
    assert outcome.status == UPDATE_ROLLBACK_FAILED
    with pytest.raises(DeployError, match="continue-rollback"):
        deployment.deploy("onca-test", {})
    monkeypatch.delenv("ONCA_FAULT")
    outcome = deployment.continue_rollback("onca-test", skip=["core/support"])
    assert outcome.status == UPDATE_ROLLBACK_COMPLETE
    assert any("core/support" in w and "inconsistent" in w for w in outcome.warnings)
    assert deployment.deploy("onca-test", {"CustomDomain": "b.example.com"}).status == UPDATE_COMPLETE


def test_bad_parameters_fail_preflight_and_touch_nothing(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path / "home", components=components)
    with pytest.raises(PreflightFailed) as err:
        deployment.deploy("onca-test", {"FirstUserEmail": "not-an-email"})
    (check,) = [c for c in err.value.checks if c.result == "fail"]
    assert check.name == "parameters" and "FirstUserEmail" in check.detail and "not-an-email" in check.detail
    assert state(deployment.home) == {}
    assert deployment.ledger.stacks() == []


def test_first_user_email_change_is_ignored_with_a_warning(deployment: Deployment) -> None:
    deployment.deploy("onca-test", ADMIN)
    outcome = deployment.deploy("onca-test", {"FirstUserEmail": "other@example.com", "CustomDomain": "x.example.com"})
    assert outcome.status == UPDATE_COMPLETE
    assert any("FirstUserEmail" in w for w in outcome.warnings)
    assert deployment.ledger.stack("onca-test").parameters["FirstUserEmail"] == "admin@example.com"
    assert any(e.status == "WARNING" and "FirstUserEmail" in e.reason for e in deployment.ledger.events())


def test_teardown_deletes_in_reverse_and_keeps_events(deployment: Deployment) -> None:
    deployment.deploy("onca-test", ADMIN)
    outcome = deployment.teardown("onca-test")
    assert outcome.status == "DELETE_COMPLETE"
    assert state(deployment.home) == {}
    deleted = [e.resource for e in deployment.ledger.events() if e.status == "DELETE_COMPLETE" and e.resource]
    assert deleted == [res for _, res in reversed(ALL_RESOURCES)]
    assert deployment.deploy("onca-test", ADMIN).status == CREATE_COMPLETE


def _deploy_in_process(home: Path, *params: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONCA_KILL_AT": kill_at or ""}
    return subprocess.run([sys.executable, "-m", "tests.deploy.fake_components", str(home), "onca-test", *params],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


BOUNDARIES = [f"{when}:{comp}/{res}" for comp, res in ALL_RESOURCES for when in ("before", "after")] + [
    f"after:{comp}" for comp in LAYOUT]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_sigkill_during_first_deploy_is_recovered_by_the_next_run(tmp_path: Path, boundary: str) -> None:
    home = tmp_path / "home"
    killed = _deploy_in_process(home, "FirstUserEmail=admin@example.com", kill_at=boundary)
    assert killed.returncode == -9, killed.stderr
    rerun = _deploy_in_process(home, "FirstUserEmail=admin@example.com")
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == CREATE_COMPLETE
    d = Deployment(home, components=components)
    assert any(e.status == "INTERRUPTED_OPERATION_DETECTED" for e in d.ledger.events())
    assert len(state(home)) == len(ALL_RESOURCES)
    assert d.ledger.lock_info() is None
    d.close()


UPDATE_BOUNDARIES = ["before:core/support", "after:core/support", "after:core", "before:web/config", "after:web/config"]


@pytest.mark.parametrize("boundary", UPDATE_BOUNDARIES)
def test_sigkill_during_update_rolls_back_to_the_previous_state(tmp_path: Path, boundary: str) -> None:
    home = tmp_path / "home"
    assert _deploy_in_process(home, "FirstUserEmail=admin@example.com",
                              "SupportRoleIdentityAccountId=v1").returncode == 0
    before = state(home)
    killed = _deploy_in_process(home, "SupportRoleIdentityAccountId=v2", "CustomDomain=new.example.com",
                                kill_at=boundary)
    assert killed.returncode == -9
    d = Deployment(home, components=components)
    with d._locked("check") as notes:
        pass
    assert any("interrupted" in n for n in notes)
    assert state(home) == before
    assert d.ledger.stack("onca-test").status == UPDATE_ROLLBACK_COMPLETE
    assert d.ledger.stack("onca-test").parameters["SupportRoleIdentityAccountId"] == "v1"
    d.close()


def test_a_live_lock_refuses_a_second_operation(deployment: Deployment) -> None:
    deployment.deploy("onca-test", ADMIN)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with deployment.ledger._tx() as db:
            db.execute("INSERT INTO lock (id, owner, host, pid, operation, started_at)"
                       " VALUES (1, 'x', ?, ?, 'deploy', 0)", (os.uname().nodename, other.pid))
        from onca.deploy.ledger import LockHeld

        with pytest.raises(LockHeld, match=f"pid {other.pid}"):
            deployment.deploy("onca-test", {"CustomDomain": "z.example.com"})
    finally:
        other.kill()
        other.wait()
    # once the holder is gone the lock is stale and broken
    assert deployment.deploy("onca-test", {"CustomDomain": "z.example.com"}).status == UPDATE_COMPLETE
