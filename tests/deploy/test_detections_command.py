"""`onca detections install|list|enable|disable` on a real deployment."""

from __future__ import annotations

import json
from pathlib import Path

from .test_component_detections import write_plain_pack
from .test_lifecycle import base_params, onca


def test_install_list_disable_enable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert onca(home, "deploy", "--quiet", *[f"--param={k}={v}" for k, v in base_params().items()]).returncode == 0
    pack = write_plain_pack(tmp_path / "extra", "late_pack")
    installed = onca(home, "detections", "install", str(pack))
    assert installed.returncode == 0, installed.stderr
    rows = {row["id"]: row for row in json.loads(onca(home, "detections", "list", "--format", "json").stdout)}
    assert "Test.Plain.late_pack" in rows and rows["Test.Plain.late_pack"]["enabled"]
    assert rows["Onca.AWS.RootConsoleLogin"]["enabled"]

    again = onca(home, "detections", "install", str(pack))  # the same IDs again: refused, nothing changed
    assert again.returncode == 2 and "Conflicting" in again.stderr
    assert len(json.loads(onca(home, "detections", "list", "--format", "json").stdout)) == len(rows)

    assert onca(home, "detections", "disable", "Onca.AWS.RootConsoleLogin").returncode == 0
    rows = {row["id"]: row for row in json.loads(onca(home, "detections", "list", "--format", "json").stdout)}
    root_login = rows["Onca.AWS.RootConsoleLogin"]
    assert not root_login["enabled"] and root_login["disabled_by_operator"]
    assert onca(home, "detections", "enable", "Onca.AWS.RootConsoleLogin").returncode == 0
    unknown = onca(home, "detections", "disable", "No.Such.Rule")
    assert unknown.returncode == 2 and "No.Such.Rule" in unknown.stderr
    # the deployment still converges: a later deploy keeps the installed pack
    assert onca(home, "deploy", "--quiet", "--param", "CustomDomain=siem.example.com").returncode == 0
    assert (home / "content" / "packs" / "extra").is_dir()
