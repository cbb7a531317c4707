"""`onca upgrade`: the planned path, applied hop by hop after a backup, rolled back on failure.

Each hop is an ordinary stack update to that release's version with the parameters its migration
notes produce, so it is journalled, rolled back on failure and recovered after a crash like any
update. A finished hop is a checkpoint: if the machine dies mid-upgrade, the interrupted hop is
rolled back and `onca upgrade` continues from the last finished hop. If a hop fails, the whole
upgrade is undone: resources go back to the pre-upgrade parameters and the pre-upgrade backup's
database and configuration are restored.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from onca.deploy import snapshots
from onca.deploy.backup import BackupInfo, create_backup
from onca.deploy.parameters import BY_NAME
from onca.deploy.preflight import failed, run_checks
from onca.deploy.releases import Catalogue, UpgradePlan, plan_upgrade
from onca.deploy.stacks import UPDATE_COMPLETE, DeployError, Deployment


class UpgradeBlocked(DeployError):
    """The plan has blockers (or preflight failed); nothing was changed."""

    def __init__(self, message: str, plan: UpgradePlan | None = None, checks: list[Any] | None = None) -> None:
        super().__init__(message)
        self.plan = plan
        self.checks = checks or []


@dataclass
class UpgradeResult:
    root: str
    status: str  # UPGRADE_COMPLETE | UPGRADE_ROLLBACK_COMPLETE | NO_UPGRADE
    from_version: str
    to_version: str
    reached: str
    backup: BackupInfo | None = None
    hops: list[str] = field(default_factory=list)
    error: str | None = None
    notices: list[str] = field(default_factory=list)


def role_version(deployment: Deployment, root: str) -> int | None:
    record = deployment.ledger.stack(root)
    ctx = deployment.context(root, (record.parameters if record else None) or {}, first=False)
    if ctx.database_url.startswith("sqlite"):
        return None
    from onca.deploy.deployer_role import deployer_role_version

    return deployer_role_version(ctx.database_url) or 0


def make_plan(deployment: Deployment, root: str, catalogue: Catalogue, *, target: str | None = None,
              given: Mapping[str, Any] | None = None) -> UpgradePlan:
    record = deployment.ledger.stack(root)
    if record is None or not record.version or record.status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        raise DeployError(f"stack {root} is not deployed; run `onca deploy` first")
    return plan_upgrade(catalogue, record.version, target or catalogue.current, record.parameters or {},
                        given=dict(given or {}), role_version=role_version(deployment, root))


def upgrade(deployment: Deployment, root: str, catalogue: Catalogue, *, target: str | None = None,
            given: Mapping[str, Any] | None = None) -> UpgradeResult:
    given = dict(given or {})
    with deployment._locked(f"upgrade {root}"):
        plan = make_plan(deployment, root, catalogue, target=target, given=given)
        record = deployment.ledger.stack(root)
        assert record is not None and record.version
        start_version, start_params = record.version, dict(record.parameters or {})
        if not plan.steps:
            return UpgradeResult(root, "NO_UPGRADE", start_version, start_version, start_version)
        if not plan.ok:
            raise UpgradeBlocked("the upgrade is blocked: " + " ".join(plan.blockers), plan)
        ctx = deployment.context(root, start_params, first=False, version=str(plan.target))
        checks = run_checks(ctx, deployment.ledger, upgrading=True, required_role_version=plan.role_required)
        if failed(checks):
            raise UpgradeBlocked("preflight failed; nothing was changed", plan, checks)
        backup = create_backup(deployment, root, label=f"pre-upgrade-to-{plan.target}")
        result = UpgradeResult(root, "UPGRADE_IN_PROGRESS", start_version, str(plan.target), start_version, backup)
        deployment.ledger.event(root, "UPGRADE_IN_PROGRESS", f"{start_version} -> {plan.target} in "
                                f"{len(plan.steps)} hop(s); backup {backup.path.name}")
        for step in plan.steps:
            version = str(step.hop.version)
            params = {**step.params_after, **{k: v for k, v in given.items() if k in step.params_after}}
            declared = tuple(name for name in params if name not in BY_NAME)
            outcome = deployment.deploy(root, params, version=version, kind="upgrade", preflight=False,
                                        declared=declared)
            if outcome.status not in (UPDATE_COMPLETE, "NO_CHANGES"):
                result.error = f"hop to {version} failed: {outcome.error or outcome.status}"
                _undo(deployment, root, start_version, start_params, backup)
                result.status = "UPGRADE_ROLLBACK_COMPLETE"
                return result
            if outcome.status == "NO_CHANGES":  # only the version moved: record it as the checkpoint
                deployment.ledger.record_deployed(root, version, params)
            deployment.ledger.event(root, "UPGRADE_HOP_COMPLETE", f"now at {version}")
            result.hops.append(version)
            result.reached = version
            result.notices += outcome.notices
        deployment.ledger.event(root, "UPGRADE_COMPLETE", f"{start_version} -> {plan.target}")
        result.status = "UPGRADE_COMPLETE"
        return result


def _undo(deployment: Deployment, root: str, version: str, params: dict[str, Any], backup: BackupInfo) -> None:
    """Back to the pre-upgrade state: resources first, then the backup's database and configuration."""
    deployment.ledger.event(root, "UPGRADE_ROLLBACK_IN_PROGRESS", f"returning to {version}")
    deployment.deploy(root, params, version=version, kind="upgrade-rollback", preflight=False)
    ctx = deployment.context(root, params, first=False, version=version)
    if (backup.path / "database").exists():
        snapshots.restore(ctx, backup.path / "database")
    config = deployment.home / "config"
    if (backup.path / "config").is_dir():
        shutil.rmtree(config, ignore_errors=True)
        shutil.copytree(backup.path / "config", config)
    deployment.ledger.record_deployed(root, version, params)
    deployment.ledger.set_stack(root, root=root, status="UPDATE_ROLLBACK_COMPLETE",
                                reason=f"upgrade rolled back to {version} from backup {backup.path.name}")
    deployment.ledger.event(root, "UPGRADE_ROLLBACK_COMPLETE", f"back at {version}")
