"""Preflight: every check that can fail a deploy or upgrade, run before anything is touched.

Each check has a name, a result (pass, warn, fail, skip) and, when it is not a pass, what to do.
`deploy` and `upgrade` run the whole list first and stop on any failure, so a bad parameter, a busy
port or a database without the right privileges is reported before a single resource exists.
"""

from __future__ import annotations

import errno
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from onca.deploy.ledger import Ledger
from onca.deploy.parameters import LISTEN, STACK_NAME, ParameterError
from onca.deploy.resources import DeployContext

STACK_PREFIX = "onca-"
PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"


@dataclass
class Check:
    name: str
    result: str
    detail: str
    remedy: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class PreflightFailed(RuntimeError):
    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        failed = [c for c in checks if c.result == FAIL]
        super().__init__("preflight failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))


def check_stack_name(name: str) -> Check:
    if not name.startswith(STACK_PREFIX) or not STACK_NAME.match(name):
        return Check("stack-name", FAIL, f"{name!r} must start with {STACK_PREFIX!r} and use only lower-case letters, "
                     "digits and dashes (every resource Onca creates outside the home carries this name as prefix)",
                     f"choose a name like {STACK_PREFIX}prod with --stack-name or stack_name in onca.yml")
    return Check("stack-name", PASS, name)


def check_parameters(error: ParameterError | None) -> Check:
    if error is None:
        return Check("parameters", PASS, "every parameter is valid")
    detail = "; ".join(f"{name}: {message}" for name, message in error.problems.items())
    return Check("parameters", FAIL, detail, "fix the named parameters in onca.yml or with --param Name=Value "
                 "(`onca parameters` lists them with their allowed values)")


def _writable(path: Path) -> str | None:
    """None when a file can be created in `path` (or in its nearest existing parent)."""
    target = path
    while not target.exists():
        if target.parent == target:
            return f"no existing parent of {path}"
        target = target.parent
    if not target.is_dir():
        return f"{target} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".onca-preflight-"):
            pass
    except OSError as err:
        return f"cannot write in {target}: {err.strerror}"
    return None


def check_writable(name: str, path: Path) -> Check:
    problem = _writable(path)
    if problem:
        return Check(name, FAIL, problem, f"give the deploying user write access to {path}, or choose another "
                     "location")
    return Check(name, PASS, f"{path} is writable")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def check_backup_space(ctx: DeployContext) -> Check:
    """A backup holds the metadata database, the ledger and the config; room for twice that is required."""
    needed = 2 * sum(_size(ctx.home / name) for name in ("metadata.db", "ledger.db", "config", "onca.yml"))
    needed = max(needed, 16 * 1024 * 1024)
    probe = ctx.home
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        return Check("backup-space", FAIL, f"{free // 2**20} MiB free at {probe}, a backup needs about "
                     f"{needed // 2**20} MiB", "free disk space or move the home to a larger volume")
    return Check("backup-space", PASS, f"{free // 2**20} MiB free, a backup needs about {needed // 2**20} MiB")


def check_listen(address: str, *, deployed: bool) -> Check:
    match = LISTEN.match(address or "")
    if not match:
        return Check("listen-port", FAIL, f"{address!r} is not HOST:PORT", "set WebListenAddress")
    host, port = match["host"].strip("[]"), int(match["port"])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                if deployed:
                    return Check("listen-port", WARN, f"{address} is in use (by this deployment's server, if it "
                                 "runs)", "if another program holds it, stop it or change WebListenAddress")
                return Check("listen-port", FAIL, f"{address} is already in use by another process",
                             "stop that process or choose another WebListenAddress")
            return Check("listen-port", FAIL, f"cannot listen on {address}: {err.strerror}",
                         "choose an address of this machine in WebListenAddress")
    return Check("listen-port", PASS, f"{address} is free")


def check_database(ctx: DeployContext, required_role_version: int | None) -> list[Check]:
    url = ctx.database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        problem = _writable(path.parent)
        if problem:
            return [Check("database", FAIL, problem, "make the home writable or set MetadataDatabaseUrl")]
        return [Check("database", PASS, f"SQLite at {path}"),
                Check("deployer-role", SKIP, "not applicable with SQLite")]
    from onca.deploy import deployer_role

    try:
        findings = deployer_role.check_privileges(url, ctx.schema)
        version = deployer_role.deployer_role_version(url)
    except Exception as err:
        return [Check("database", FAIL, f"cannot connect: {err}".splitlines()[0],
                      "check MetadataDatabaseUrl (host, port, user, password, database) and that the server runs")]
    problems = [f for f in findings if not f.startswith("warning: ")]
    notes = [f.removeprefix("warning: ") for f in findings if f.startswith("warning: ")]
    remedy = "run `onca deployer-role` and apply its SQL as a database administrator"
    if problems:
        checks = [Check("database", FAIL, "; ".join(problems), remedy)]
    elif notes:
        checks = [Check("database", WARN, "reachable, but broader than needed: " + "; ".join(notes),
                        "deploy with the least-privilege role " + remedy.removeprefix("run ").join(("(", ")")))]
    else:
        checks = [Check("database", PASS, "reachable, privileges sufficient")]
    if required_role_version is not None and (version is None or version < required_role_version):
        checks.append(Check("deployer-role", FAIL, f"the deployer role is at version {version or 'none'}, this "
                            f"release needs {required_role_version}",
                            "run `onca deployer-role` and apply its SQL as a database administrator, then retry"))
    else:
        checks.append(Check("deployer-role", PASS, f"version {version}"))
    return checks


def check_leftovers(ctx: DeployContext) -> Check:
    """Artifacts of an earlier install that a first deploy would meet."""
    found = []
    for relative, what in (("metadata.db", "metadata database"), ("config/keyring.key", "keyring"),
                           ("content", "installed content"), ("python", "PipLibraries")):
        path = ctx.home / relative
        if path.exists() and (path.is_file() or any(path.iterdir())):
            found.append(f"{what} at {path}")
    lake = ctx.lake_dir
    if lake.is_dir() and any(lake.iterdir()):
        found.append(f"lake data at {lake}")
    if not found:
        return Check("leftovers", PASS, "no leftovers of an earlier install")
    return Check("leftovers", WARN, "left by an earlier install: " + "; ".join(found),
                 "they will be adopted (kept and reused, the keyring included). To start clean instead, run "
                 "`onca teardown --delete-data` for a recorded stack, or move these paths away before deploying")


def check_version(deployed: str | None, installed: str, *, upgrading: bool) -> Check:
    if deployed is None or deployed == installed:
        return Check("version-path", PASS, f"version {installed}")
    from onca.deploy.releases import Version

    if Version.parse(installed) < Version.parse(deployed):
        return Check("version-path", FAIL, f"the deployment runs {deployed}, newer than the installed {installed}",
                     f"install Onca {deployed} again; downgrading means installing the old version and restoring "
                     "a backup taken with it (`onca restore`)")
    if not upgrading:
        return Check("version-path", FAIL, f"the deployment runs {deployed}, the installed Onca is {installed}",
                     "run `onca upgrade --plan` to see the path, then `onca upgrade`")
    return Check("version-path", PASS, f"{deployed} -> {installed}")


def check_drift(ctx: DeployContext, expected_revision: str | None) -> Check:
    if expected_revision is None:
        return Check("schema-drift", SKIP, "no database recorded yet")
    from onca.store.drift import check_drift as drift

    try:
        problems = drift(ctx.database_url, ctx.schema, expected_revision)
    except Exception as err:
        return Check("schema-drift", FAIL, f"cannot inspect the database: {err}".splitlines()[0],
                     "check that the metadata database is reachable")
    if problems:
        return Check("schema-drift", FAIL, "; ".join(problems),
                     "the database no longer matches what the ledger recorded: restore the last backup "
                     "(`onca restore`) or undo the manual change, then retry")
    return Check("schema-drift", PASS, f"schema at {expected_revision}, as recorded")


def recorded_revision(ledger: Ledger, root: str) -> str | None:
    for stack in ledger.stacks(root):
        for resource in ledger.resources(stack.name):
            revision = resource.outputs.get("revision")
            if stack.component == "bootstrap" and revision:
                return str(revision)
    return None


def run_checks(ctx: DeployContext, ledger: Ledger, *, parameter_error: ParameterError | None = None,
               upgrading: bool = False, required_role_version: int | None = None,
               extra: list[Callable[[], Check]] | None = None) -> list[Check]:
    """Every check for deploying `ctx` (its params may be partial when parameter_error is set)."""
    record = ledger.stack(ctx.stack_name)
    deployed = record is not None and record.status not in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE")
    checks = [check_stack_name(ctx.stack_name), check_parameters(parameter_error),
              check_writable("home-writable", ctx.home), check_writable("lake-writable", ctx.lake_dir),
              check_backup_space(ctx)]
    if parameter_error is None:
        checks.append(check_listen(str(ctx.params.get("WebListenAddress", "")), deployed=deployed))
        checks += _guarded("database", lambda: check_database(ctx, required_role_version))
        if not deployed:
            checks.append(check_leftovers(ctx))
        else:
            checks += _guarded("schema-drift", lambda: [check_drift(ctx, recorded_revision(ledger, ctx.stack_name))])
    checks.append(check_version(record.version if deployed and record else None, ctx.version, upgrading=upgrading))
    for make in extra or []:
        checks += _guarded("extra", lambda make=make: [make()])
    return checks


def _guarded(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    try:
        return run()
    except Exception as err:  # a broken check must fail loudly, never pass silently
        return [Check(name, FAIL, f"the check itself failed: {type(err).__name__}: {err}",
                      "report this; the check could not tell whether it is safe to go on")]


def render_checks(checks: list[Check]) -> str:
    marks = {PASS: "ok  ", WARN: "warn", FAIL: "FAIL", SKIP: "skip"}
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"[{marks[check.result]}] {check.name:<{width}}  {check.detail}")
        if check.remedy and check.result in (WARN, FAIL):
            lines.append(f"       {'':<{width}}  -> {check.remedy}")
    failed = sum(c.result == FAIL for c in checks)
    lines.append(f"\n{failed} check(s) failed." if failed else "\nAll checks passed.")
    return "\n".join(lines)


def failed(checks: list[Check]) -> bool:
    return any(c.result == FAIL for c in checks)


def checks_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [c.to_json() for c in checks]

