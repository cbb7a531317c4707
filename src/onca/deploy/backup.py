"""Backups of a deployment: the metadata database, the configuration (keyring included) and the ledger.

A backup is tagged with the exact version it was taken with, and can only be restored by that same
version (as GitLab requires): downgrading means installing the old version and restoring its backup.
Backups are written to a temporary directory and renamed into place, so a backup either exists whole
or not at all; the upgrade takes one first and refuses to go on if it fails.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onca.deploy import snapshots
from onca.deploy.stacks import DeployError, Deployment

MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    """A backup could not be taken or restored; nothing was changed."""


@dataclass
class BackupInfo:
    path: Path
    stack: str
    version: str
    parameters: dict[str, Any]
    created: str
    label: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backups_dir(home: Path) -> Path:
    return home / "backups"


def create_backup(deployment: Deployment, root: str, *, label: str = "manual") -> BackupInfo:
    record = deployment.ledger.stack(root)
    if record is None or record.status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE") or not record.version:
        raise BackupError(f"stack {root} has no complete deployment to back up")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    final = backups_dir(deployment.home) / f"{root}-{record.version}-{stamp}-{label}"
    counter = 1
    while final.exists():  # two backups in one second (a retried upgrade): never overwrite one
        counter += 1
        final = final.with_name(f"{root}-{record.version}-{stamp}-{label}-{counter}")
    partial = final.with_name("." + final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        ctx = deployment.context(root, record.parameters or {}, first=False, version=record.version)
        has_database = snapshots.take(ctx, partial / "database") is not None
        with sqlite3.connect(partial / "ledger.db") as copy:
            deployment.ledger._db.backup(copy)
        config = deployment.home / "config"
        if config.is_dir():
            shutil.copytree(config, partial / "config")
        if (deployment.home / "onca.yml").exists():
            shutil.copy2(deployment.home / "onca.yml", partial / "onca.yml")
        files = {str(p.relative_to(partial)): _sha256(p) for p in sorted(partial.rglob("*")) if p.is_file()}
        manifest = {"stack": root, "version": record.version, "parameters": record.parameters or {},
                    "created": stamp, "label": label, "database": has_database, "files": files}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        partial.rename(final)
    except BackupError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackupError(f"backup failed, nothing was kept: {err}") from err
    deployment.ledger.event(root, "BACKUP_COMPLETE", f"{final.name} ({label})")
    return read_backup(final)


def read_backup(path: Path) -> BackupInfo:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BackupError(f"{path} is not an Onca backup (no readable {MANIFEST})") from err
    return BackupInfo(path, manifest["stack"], manifest["version"], manifest["parameters"], manifest["created"],
                      manifest.get("label", ""))


def list_backups(home: Path) -> list[BackupInfo]:
    folder = backups_dir(home)
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_dir() and (path / MANIFEST).exists():
            found.append(read_backup(path))
    return found


def verify_backup(path: Path) -> list[str]:
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    problems = []
    for relative, digest in manifest["files"].items():
        file = path / relative
        if not file.exists():
            problems.append(f"{relative} is missing")
        elif _sha256(file) != digest:
            problems.append(f"{relative} does not match its checksum")
    return problems


def restore_backup(deployment: Deployment, path: Path) -> BackupInfo:
    """Restore the database, configuration and recorded parameters of a same-version backup."""
    info = read_backup(path)
    if info.version != deployment.version:
        raise BackupError(f"this backup was taken with Onca {info.version}; the installed Onca is "
                          f"{deployment.version}. Install Onca {info.version} to restore it.")
    problems = verify_backup(path)
    if problems:
        raise BackupError("the backup is damaged: " + "; ".join(problems))
    with deployment._locked(f"restore {info.stack}"):
        record = deployment.ledger.stack(info.stack)
        if record is not None and record.version and record.version != info.version:
            raise DeployError(f"stack {info.stack} runs {record.version}; this backup is of {info.version}")
        ctx = deployment.context(info.stack, info.parameters, first=False, version=info.version)
        if (path / "database").exists():
            snapshots.restore(ctx, path / "database")
        config = deployment.home / "config"
        if (path / "config").is_dir():
            shutil.rmtree(config, ignore_errors=True)
            shutil.copytree(path / "config", config)
        deployment.ledger.record_deployed(info.stack, info.version, info.parameters)
        deployment.ledger.event(info.stack, "RESTORE_COMPLETE", f"restored {path.name}; run `onca deploy` to "
                                "reconcile resources with the restored parameters")
    return info
