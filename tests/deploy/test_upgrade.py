"""Upgrades with the seed's release catalogue: path, parameter migrations, blockers, rollback and resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from onca.deploy.backup import list_backups
from onca.deploy.releases import DowngradeError, load_catalogue
from onca.deploy.stacks import Deployment
from onca.deploy.upgrade import UpgradeBlocked, make_plan, upgrade

from .fake_components import components, state

CATALOGUE = load_catalogue(Path(__file__).parent / "catalogues" / "seed.yml")
REPO = Path(__file__).resolve().parents[2]
ADMIN = {"FirstUserEmail": "admin@example.com"}


def deployed_at(home: Path, version: str, params: dict[str, object]) -> Deployment:
    d = Deployment(home, components=components, version=version)
    assert d.deploy("onca-test", params, preflight=False).status == "CREATE_COMPLETE"
    d.close()
    return Deployment(home, components=components, version=str(CATALOGUE.current))


def test_seed_path_goes_through_the_latest_patch_of_every_minor(tmp_path: Path) -> None:
    d = deployed_at(tmp_path / "home", "1.10.4", ADMIN)
    plan = make_plan(d, "onca-test", CATALOGUE, target="1.13")
    assert [str(r.version) for r in plan.path] == ["1.11.6", "1.12.3", "1.13.2"]
    result = upgrade(d, "onca-test", CATALOGUE, target="1.13")
    assert result.status == "UPGRADE_COMPLETE" and result.hops == ["1.11.6", "1.12.3", "1.13.2"]
    assert d.ledger.stack("onca-test").version == "1.13.2"
    hops = [e.reason for e in d.ledger.events() if e.status == "UPGRADE_HOP_COMPLETE"]
    assert hops == ["now at 1.11.6", "now at 1.12.3", "now at 1.13.2"]
    (backup,) = list_backups(d.home)
    assert backup.version == "1.10.4" and backup.label == "pre-upgrade-to-1.13.2"


def test_downgrade_is_refused(tmp_path: Path) -> None:
    d = deployed_at(tmp_path / "home", "1.13.2", ADMIN)
    with pytest.raises(DowngradeError, match="restore"):
        make_plan(d, "onca-test", CATALOGUE, target="1.12")


@pytest.mark.parametrize(("libraries", "expected"), [
    ("jsonpath-ng,policyuniverse,requests", []),  # the old defaults, untouched: all now included
    ("jsonpath-ng,policyuniverse,requests,ipwhois", ["ipwhois"]),  # customised: the operator's own entry stays
])
def test_pip_libraries_clean_up(tmp_path: Path, libraries: str, expected: list[str]) -> None:
    d = deployed_at(tmp_path / "home", "1.17.4", {**ADMIN, "PipLibraries": libraries})
    result = upgrade(d, "onca-test", CATALOGUE, target="1.18")
    assert result.status == "UPGRADE_COMPLETE"
    assert d.ledger.stack("onca-test").parameters["PipLibraries"] == expected


def test_new_required_certificate_blocks_until_given(tmp_path: Path) -> None:
    d = deployed_at(tmp_path / "home", "1.19.2", ADMIN)
    blocked = r"ApiCertificateFile must have a value before upgrading to 1.20.3 \(from 1.19.5\)"
    with pytest.raises(UpgradeBlocked, match=blocked):
        upgrade(d, "onca-test", CATALOGUE, target="1.20")
    assert d.ledger.stack("onca-test").version == "1.19.2"  # nothing changed
    assert list_backups(d.home) == []
    certificate = tmp_path / "api.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n")
    result = upgrade(d, "onca-test", CATALOGUE, target="1.20", given={"ApiCertificateFile": str(certificate)})
    assert result.status == "UPGRADE_COMPLETE"
    root = d.ledger.stack("onca-test")
    assert root.version == "1.20.3" and root.parameters["ApiCertificateFile"] == str(certificate)


def test_a_failing_hop_rolls_the_whole_upgrade_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = {**ADMIN, "PipLibraries": "jsonpath-ng,policyuniverse,requests"}
    d = deployed_at(tmp_path / "home", "1.17.4", params)
    before, before_params = state(d.home), d.ledger.stack("onca-test").parameters
    # the 1.18 hop changes PipLibraries, which only bootstrap/database does not read: make core fail instead
    monkeypatch.setenv("ONCA_FAULT", "web/config:update")
    result = upgrade(d, "onca-test", CATALOGUE, target="1.18", given={"CustomDomain": "siem.example.com"})
    assert result.status == "UPGRADE_ROLLBACK_COMPLETE" and "1.18" in (result.error or "")
    root = d.ledger.stack("onca-test")
    assert root.version == "1.17.4" and root.parameters == before_params
    assert state(d.home) == before
    assert any(e.status == "UPGRADE_ROLLBACK_COMPLETE" for e in d.ledger.events())


def test_an_upgrade_killed_mid_way_resumes_from_the_last_finished_hop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    deployed_at(home, "1.10.4", ADMIN).close()
    script = (
        "import sys; from pathlib import Path;"
        "from tests.deploy.fake_components import components;"
        "from tests.deploy.test_upgrade import CATALOGUE;"
        "from onca.deploy.stacks import Deployment; from onca.deploy.upgrade import upgrade;"
        "d = Deployment(Path(sys.argv[1]), components=components, version=str(CATALOGUE.current));"
        "print(upgrade(d, 'onca-test', CATALOGUE, target='1.13', given={'CustomDomain': sys.argv[2]}).status)"
    )
    env = {**os.environ, "ONCA_KILL_AT": "before:web/config"}
    # each hop updates web/config only when CustomDomain changes: the first hop does, and is killed there
    killed = subprocess.run([sys.executable, "-c", script, str(home), "a.example.com"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    env["ONCA_KILL_AT"] = ""
    resumed = subprocess.run([sys.executable, "-c", script, str(home), "a.example.com"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "UPGRADE_COMPLETE"
    d = Deployment(home, components=components)
    assert d.ledger.stack("onca-test").version == "1.13.2"
    assert any(e.status == "INTERRUPTED_OPERATION_DETECTED" for e in d.ledger.events())
    assert state(home)["web-config.json"]["CustomDomain"] == "a.example.com"
    d.close()


def test_plan_cli_prints_path_and_blockers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    deployed_at(home, "1.19.2", ADMIN).close()
    result = subprocess.run([sys.executable, "-m", "onca", "upgrade", "--plan", "--home", str(home), "--to", "1.20",
                             "--catalogue", str(Path(__file__).parent / "catalogues" / "seed.yml")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "1.20.3" in result.stdout  # 1.20.4 is marked avoid: the latest good patch is the stop
    assert "ApiCertificateFile must have a value before upgrading to 1.20.3" in result.stdout
