"""Preflight checks: each names what is wrong and what to do, before anything is touched."""

from __future__ import annotations

import socket
from pathlib import Path

from onca.deploy.ledger import Ledger
from onca.deploy.parameters import resolve
from onca.deploy.preflight import FAIL, PASS, WARN, check_listen, check_stack_name, check_version, run_checks
from onca.deploy.resources import DeployContext


def ctx(home: Path, **params: str) -> DeployContext:
    values, _ = resolve({"FirstUserEmail": "admin@example.com", **params}, None)
    return DeployContext(home=home, stack_name="onca-test", params=values, version="0.1.0", first_deploy=True)


def test_stack_name_must_carry_the_prefix() -> None:
    assert check_stack_name("onca-prod").result == PASS
    bad = check_stack_name("prod")
    assert bad.result == FAIL and "onca-" in bad.detail and bad.remedy


def test_a_busy_port_fails_and_a_free_one_passes() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        assert check_listen(address, deployed=False).result == FAIL
        assert check_listen(address, deployed=True).result == WARN
    assert check_listen(address, deployed=False).result == PASS


def test_versions_need_upgrade_and_refuse_downgrade() -> None:
    assert check_version(None, "0.1.0", upgrading=False).result == PASS
    newer = check_version("0.1.0", "0.2.0", upgrading=False)
    assert newer.result == FAIL and "onca upgrade" in newer.remedy
    assert check_version("0.1.0", "0.2.0", upgrading=True).result == PASS
    older = check_version("0.3.0", "0.2.0", upgrading=True)
    assert older.result == FAIL and "restor" in older.remedy


def test_leftovers_of_an_earlier_install_are_listed_with_guidance(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "keyring.key").write_text("key")
    (home / "lake" / "AWS.CloudTrail").mkdir(parents=True)
    ledger = Ledger(home / "ledger.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = f"127.0.0.1:{probe.getsockname()[1]}"
    checks = {c.name: c for c in run_checks(ctx(home, WebListenAddress=free), ledger)}
    assert checks["leftovers"].result == WARN
    assert "keyring" in checks["leftovers"].detail and "lake data" in checks["leftovers"].detail
    assert "adopted" in checks["leftovers"].remedy
    assert checks["database"].result == PASS and checks["deployer-role"].result == "skip"
    ledger.close()


def test_unwritable_lake_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ledger = Ledger(tmp_path / "home" / "ledger.db")
    checks = {c.name: c for c in run_checks(ctx(tmp_path / "home", LakeLocation=str(blocker / "lake")), ledger)}
    assert checks["lake-writable"].result == FAIL
    ledger.close()
