"""Release manifest, versions, the upgrade path planner and migration notes, on the seed's catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import onca
from onca.deploy.migrations_notes import RemoveDefaults, Rename, Require, SetDefault, apply_notes
from onca.deploy.releases import (
    CATALOGUE_ENV,
    Catalogue,
    CatalogueError,
    DowngradeError,
    Hop,
    Release,
    UpgradePathError,
    Version,
    VersionError,
    load_catalogue,
    plan_json,
    plan_path,
    plan_upgrade,
    render_plan,
)

SEED = Path(__file__).parent / "catalogues" / "seed.yml"
DEFAULT_LIBS = ["jsonpath-ng", "policyuniverse", "requests"]


@pytest.fixture(scope="module")
def seed() -> Catalogue:
    return load_catalogue(SEED)


def versions(path: list[Release]) -> list[str]:
    return [str(release.version) for release in path]


def hop_to(catalogue: Catalogue, deployed: str, target: str) -> Hop:
    """The single hop of a one-hop path (the notes it carries included)."""
    plan = plan_upgrade(catalogue, deployed, target, {})
    assert len(plan.hops) == 1
    return plan.hops[0]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.yml"
    path.write_text(text, encoding="utf-8")
    return path


# The packaged manifest.
def test_packaged_manifest_lists_this_version() -> None:
    catalogue = load_catalogue()
    assert str(catalogue.current) == onca.__version__
    release = catalogue.get(onca.__version__)
    assert release is not None and release.deployer_role == 1 and release.notes == ()
    assert versions(list(catalogue.releases)) == ["0.1.0"]


def test_packaged_manifest_matches_the_shipped_schema_and_role() -> None:
    from onca.deploy.deployer_role import DEPLOYER_ROLE_VERSION
    from onca.store.db import head_revision

    release = load_catalogue().get(onca.__version__)
    assert release is not None and release.schema_revision == head_revision()
    assert release.deployer_role == DEPLOYER_ROLE_VERSION


def test_env_var_selects_a_drill_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CATALOGUE_ENV, str(SEED))
    assert str(load_catalogue().current) == "2.0.0"
    monkeypatch.setenv(CATALOGUE_ENV, str(SEED.parent / "missing.yml"))
    with pytest.raises(CatalogueError, match=rf"missing\.yml \(from \${CATALOGUE_ENV}\) cannot be read"):
        load_catalogue()


# Versions.
def test_versions_parse_and_compare() -> None:
    assert Version.parse("1.10.4") == Version(1, 10, 4)
    assert Version.parse("1.10.4") > Version.parse("1.9.12")  # numeric, not text, order
    assert sorted(map(Version.parse, ["1.2.10", "1.2.9", "0.9.0"])) == [Version(0, 9, 0), Version(1, 2, 9),
                                                                       Version(1, 2, 10)]
    assert str(Version.parse("2.0.0")) == "2.0.0"
    assert Version.parse("1.13.2").line == (1, 13)


@pytest.mark.parametrize(("text", "hint"), [
    ("v1.2.3", "drop the leading 'v'"),
    ("1.2", "patch number"),
    ("1.2.3-rc1", "pre-release"),
    ("01.2.3", "leading zeros"),
    ("latest", "leading zeros"),
    (1.1, "quotes"),
])
def test_bad_versions_say_what_is_expected(text: object, hint: str) -> None:
    with pytest.raises(VersionError, match=re.escape("expected MAJOR.MINOR.PATCH such as 1.13.2")) as caught:
        Version.parse(text)  # type: ignore[arg-type]
    assert hint in str(caught.value)


# The path.
def test_seed_example_goes_through_the_latest_patch_of_every_minor(seed: Catalogue) -> None:
    # "on 1.10.X and want 1.13.X: first the highest patch of 1.11.X, then 1.12.X, then 1.13.X"
    assert versions(plan_path(seed, "1.10.4", "1.13.x")) == ["1.11.6", "1.12.3", "1.13.2"]
    assert versions(plan_path(seed, "1.10.1", "1.13")) == ["1.11.6", "1.12.3", "1.13.2"]
    assert versions(plan_path(seed, "1.10.4", "1.13.1")) == ["1.11.6", "1.12.3", "1.13.1"]


def test_same_minor_goes_straight_to_the_patch(seed: Catalogue) -> None:
    assert versions(plan_path(seed, "1.11.2", "1.11.6")) == ["1.11.6"]
    assert versions(plan_path(seed, "1.11.2", "1.11.4")) == ["1.11.4"]
    assert versions(plan_path(seed, "1.11.2", "1.11.x")) == ["1.11.6"]
    assert plan_path(seed, "1.11.6", "1.11.6") == []
    assert plan_path(seed, "1.11.6", "1.11") == []


def test_minors_without_releases_are_not_stops(seed: Catalogue) -> None:
    # The seed catalogue has no 1.15.1: 1.15's latest is 1.15.2.
    assert versions(plan_path(seed, "1.13.2", "1.17.x")) == ["1.14.1", "1.15.2", "1.16.1", "1.17.4"]


def test_downgrade_is_refused_with_the_way_back(seed: Catalogue) -> None:
    for target in ("1.12.3", "1.12", "1.13.0"):
        with pytest.raises(DowngradeError) as caught:
            plan_path(seed, "1.13.2", target)
        message = str(caught.value)
        assert "older than the deployed 1.13.2" in message
        assert f"install onca {target}" in message and "restore the backup taken by that version" in message


def test_unknown_deployed_version_is_refused(seed: Catalogue) -> None:
    with pytest.raises(UpgradePathError) as caught:
        plan_path(seed, "1.10.9", "1.13.x")
    message = str(caught.value)
    assert "deployed version 1.10.9 is not in the release catalogue" in message
    assert "1.10.0, 1.10.1, 1.10.2, 1.10.3, 1.10.4" in message
    with pytest.raises(UpgradePathError, match=re.escape("no 1.9 release at all")):
        plan_path(seed, "1.9.0", "1.13.x")
    with pytest.raises(UpgradePathError, match=re.escape("target 1.13.7 is not in the release catalogue")):
        plan_path(seed, "1.10.4", "1.13.7")
    with pytest.raises(UpgradePathError, match=re.escape("deployed version 1.10.9 is not")):
        plan_path(seed, "1.10.9", "1.10")  # not "nothing to do"
    with pytest.raises(VersionError):
        plan_path(seed, "1.10", "1.13.x")


def test_avoided_releases_are_never_stops(seed: Catalogue) -> None:
    assert seed.get("1.20.4").avoid  # type: ignore[union-attr]
    assert versions(plan_path(seed, "1.20.0", "1.20.x")) == ["1.20.3"]
    assert versions(plan_path(seed, "1.19.5", "1.21.x")) == ["1.20.3", "1.21.5"]
    with pytest.raises(UpgradePathError, match=r"1.20.4 is marked avoid \(its schema migration .*\): upgrade to "
                                               r"1.20.3 instead"):
        plan_path(seed, "1.20.0", "1.20.4")
    # A deployment that is on an avoided release can still move on.
    assert versions(plan_path(seed, "1.20.4", "1.21.5")) == ["1.21.5"]
    assert plan_path(seed, "1.20.4", "1.20") == []


def test_a_minor_with_every_patch_avoided_blocks_the_path(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, """
current: "1.2.0"
releases:
  - {version: "1.0.0", deployer_role: 1}
  - {version: "1.1.0", deployer_role: 1, avoid: true}
  - {version: "1.1.1", deployer_role: 1, avoid: true}
  - {version: "1.2.0", deployer_role: 1}
"""))
    with pytest.raises(UpgradePathError, match=re.escape("every 1.1 release is marked avoid")):
        plan_path(catalogue, "1.0.0", "1.2.0")


def test_major_bump_goes_through_the_last_minor_of_the_previous_major(seed: Catalogue) -> None:
    assert versions(plan_path(seed, "1.19.5", "2.0.0")) == ["1.20.3", "1.21.5", "2.0.0"]
    assert versions(plan_path(seed, "1.21.2", "2.0.0")) == ["2.0.0"]


def test_target_newer_than_the_installed_package_is_refused(seed: Catalogue) -> None:
    expected = "2.0.1 is newer than the installed onca 2.0.0: install onca 2.0.1"
    with pytest.raises(UpgradePathError, match=re.escape(expected)):
        plan_path(seed, "1.21.5", "2.0.1")


def test_a_hop_carries_the_notes_of_every_release_it_passes(seed: Catalogue) -> None:
    # The seed: "Migrating to 1.19.5, from 1.19.x -> 1.20.x": 1.19.2 -> 1.20.3 passes over 1.19.5.
    hop = hop_to(seed, "1.19.2", "1.20.x")
    assert str(hop.version) == "1.20.3" and str(hop.from_version) == "1.19.2"
    assert [type(note) for note in hop.notes] == [Require]
    assert str(hop.notes[0].introduced) == "1.19.5"
    assert hop_to(seed, "1.19.5", "1.20.x").notes == ()


# Migration notes: PipLibraries clean-up (the seed's 1.17 -> 1.18 note).
def test_untouched_default_list_becomes_the_new_default(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.17.4", "1.18.x")
    params = {"PipLibraries": ["requests", "Jsonpath_NG", "policyuniverse"], "OnboardSelf": True}
    after, changes, blockers = apply_notes(params, hop, {})
    assert after == {"PipLibraries": [], "OnboardSelf": True}
    assert blockers == []
    assert [(c.parameter, c.action) for c in changes] == [("PipLibraries", "removed_entries")]
    assert "was the previous default; now the 1.18.0 default" in changes[0].reason
    assert params["PipLibraries"] == ["requests", "Jsonpath_NG", "policyuniverse"]  # input untouched


def test_customised_list_keeps_the_operators_own_entries(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.17.4", "1.18.x")
    params = {"PipLibraries": ["mylib>=2", "jsonpath-ng", "requests", "./wheels/tool-1.0-py3-none-any.whl"]}
    after, changes, blockers = apply_notes(params, hop, {})
    assert after["PipLibraries"] == ["mylib>=2", "./wheels/tool-1.0-py3-none-any.whl"]
    assert blockers == []
    assert changes[0].before == params["PipLibraries"] and changes[0].after == after["PipLibraries"]
    assert changes[0].reason == ("removed jsonpath-ng, requests (included from 1.18.0); kept your own: mylib>=2, "
                                 "./wheels/tool-1.0-py3-none-any.whl")


def test_list_without_the_named_entries_is_left_alone(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.17.4", "1.18.x")
    assert apply_notes({"PipLibraries": ["mylib"]}, hop, {}) == ({"PipLibraries": ["mylib"]}, [], [])
    assert apply_notes({}, hop, {}) == ({}, [], [])


def test_pinned_named_entry_needs_the_operators_decision(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.17.4", "1.18.x")
    params = {"PipLibraries": ["mylib", "requests==2.25.1"]}
    after, changes, blockers = apply_notes(params, hop, {})
    assert after == params and changes == []
    assert len(blockers) == 1
    assert "PipLibraries pins requests==2.25.1" in blockers[0]
    assert "--param PipLibraries=<your list without them>" in blockers[0]


def test_named_entries_still_in_onca_yml_block(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.17.4", "1.18.x")
    _, _, blockers = apply_notes({"PipLibraries": DEFAULT_LIBS}, hop, {"PipLibraries": "mylib,requests"})
    assert len(blockers) == 1
    assert "PipLibraries in onca.yml or --param lists requests, which onca 1.18.0 includes" in blockers[0]
    assert apply_notes({"PipLibraries": DEFAULT_LIBS}, hop, {"PipLibraries": "mylib"})[2] == []


# Migration notes: rename and set_default (the seed catalogue's 1.21.0).
def test_rename_moves_the_value(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.20.3", "1.21.x")
    after, changes, blockers = apply_notes({"SentryEnv": "staging"}, hop, {})
    assert blockers == []
    assert after == {"SentryEnvironment": "staging", "AlertRetentionDays": "365"}
    rename = changes[0]
    assert (rename.parameter, rename.action, rename.renamed_from, rename.before, rename.after) == \
        ("SentryEnvironment", "renamed", "SentryEnv", "staging", "staging")


def test_rename_with_both_names_set_needs_a_decision(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.20.3", "1.21.x")
    params = {"SentryEnv": "staging", "SentryEnvironment": "prod"}
    after, _, blockers = apply_notes(params, hop, {})
    assert after["SentryEnv"] == "staging" and after["SentryEnvironment"] == "prod"
    assert len(blockers) == 1
    assert "both are set (SentryEnv='staging', SentryEnvironment='prod')" in blockers[0]
    assert "--param SentryEnvironment=<value>" in blockers[0]
    # Given now, the operator's value wins and the old name goes.
    after, changes, blockers = apply_notes(params, hop, {"SentryEnvironment": "qa"})
    assert blockers == [] and "SentryEnv" not in after and after["SentryEnvironment"] == "qa"
    assert "you chose the value" in changes[0].reason
    # Equal values are no conflict.
    after, _, blockers = apply_notes({"SentryEnv": "prod", "SentryEnvironment": "prod"}, hop, {})
    assert blockers == [] and after["SentryEnvironment"] == "prod" and "SentryEnv" not in after


def test_old_name_still_given_blocks(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.20.3", "1.21.x")
    _, _, blockers = apply_notes({"SentryEnv": "staging"}, hop, {"SentryEnv": "qa"})
    assert blockers == ["SentryEnv was renamed to SentryEnvironment in 1.21.0, but onca.yml or --param still sets "
                        "SentryEnv: rename it to SentryEnvironment in onca.yml (or pass --param "
                        "SentryEnvironment=<value> instead) before upgrading to 1.21.5."]


def test_set_default_only_for_a_key_never_set(seed: Catalogue) -> None:
    hop = hop_to(seed, "1.20.3", "1.21.x")
    after, changes, _ = apply_notes({}, hop, {})
    assert after == {"AlertRetentionDays": "365"} and changes[-1].action == "defaulted"
    assert apply_notes({"AlertRetentionDays": "30"}, hop, {})[0] == {"AlertRetentionDays": "30"}
    assert apply_notes({}, hop, {"AlertRetentionDays": "90"})[0] == {}  # the given value is laid on top later


# Migration notes: the certificate required from 1.19.5.
def test_required_certificate_blocks_until_given(seed: Catalogue, tmp_path: Path) -> None:
    hop = hop_to(seed, "1.18.8", "1.19.x")
    after, changes, blockers = apply_notes({"CustomDomain": "onca.example.com"}, hop, {})
    assert changes == [] and "ApiCertificateFile" not in after
    assert len(blockers) == 1
    assert blockers[0].startswith("ApiCertificateFile must have a value before upgrading to 1.19.5: a PEM "
                                  "certificate for the api. subdomain of CustomDomain")
    assert "--param ApiCertificateFile=<value>" in blockers[0]
    assert apply_notes({}, hop, {"ApiCertificateFile": "  "})[2][0].startswith("ApiCertificateFile must have")

    missing = tmp_path / "api.pem"
    _, _, blockers = apply_notes({}, hop, {"ApiCertificateFile": str(missing)})
    assert len(blockers) == 1 and f"{missing} does not exist" in blockers[0]

    missing.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    after, changes, blockers = apply_notes({}, hop, {"ApiCertificateFile": str(missing)})
    assert blockers == [] and after == {"ApiCertificateFile": str(missing)}
    assert [(c.parameter, c.action, c.after) for c in changes] == [("ApiCertificateFile", "set", str(missing))]


def test_required_parameter_already_set_passes(seed: Catalogue, tmp_path: Path) -> None:
    cert = tmp_path / "api.pem"
    cert.write_text("pem", encoding="utf-8")
    hop = hop_to(seed, "1.19.2", "1.20.x")
    assert apply_notes({"ApiCertificateFile": str(cert)}, hop, {}) == ({"ApiCertificateFile": str(cert)}, [], [])
    blockers = apply_notes({}, hop, {})[2]
    assert blockers[0].startswith("ApiCertificateFile must have a value before upgrading to 1.20.3 (from 1.19.5):")


def test_validators_can_be_replaced_and_email_checks() -> None:
    note = Require("AlertEmail", "where alerts go", "email", Version(1, 1, 0))
    hop = Release(Version(1, 1, 0), 1, notes=(note,))
    assert "not an email address" in apply_notes({}, hop, {"AlertEmail": "nope"})[2][0]
    assert apply_notes({}, hop, {"AlertEmail": "sec@example.com"})[2] == []
    cert = Require("Cert", "a certificate", "path_exists", Version(1, 1, 0))
    hop = Release(Version(1, 1, 0), 1, notes=(cert,))
    assert apply_notes({}, hop, {"Cert": "anything"}, validators={"path_exists": lambda _: None})[2] == []


def test_notes_apply_in_order() -> None:
    v = Version(2, 0, 0)
    hop = Release(v, 1, notes=(Rename("A", "B", v), Rename("B", "C", v), SetDefault("A", "fresh", v),
                               RemoveDefaults("C", ("x",), ("x", "y"), v)))
    after, changes, blockers = apply_notes({"A": ["y", "x"]}, hop, {})
    assert blockers == [] and after == {"C": ["y"], "A": "fresh"}
    assert [c.action for c in changes] == ["renamed", "renamed", "defaulted", "removed_entries"]


# The plan.
def test_plan_collects_blockers_across_hops_and_checks_the_role(seed: Catalogue, tmp_path: Path) -> None:
    params = {"PipLibraries": [*DEFAULT_LIBS, "mylib"], "SentryEnv": "staging", "SmtpUrl": "smtp://u:p@mail"}
    plan = plan_upgrade(seed, "1.17.2", "1.21.x", params, {}, role_version=2)
    assert versions(plan.path) == ["1.18.8", "1.19.5", "1.20.3", "1.21.5"]
    assert not plan.ok and plan.role_required == 3 and plan.role_ok is False
    assert [step.role_ok for step in plan.steps] == [True, False, False, False]
    assert len(plan.blockers) == 2
    assert plan.blockers[0].startswith("ApiCertificateFile must have a value before upgrading to 1.19.5")
    assert "deployer role is at version 2, but this path needs version 3 (first needed by 1.19.5): run " \
           "`onca deployer-role`" in plan.blockers[1]
    assert plan.params_after["PipLibraries"] == ["mylib"]
    assert plan.params_after["SentryEnvironment"] == "staging"

    cert = tmp_path / "api.pem"
    cert.write_text("pem", encoding="utf-8")
    plan = plan_upgrade(seed, "1.17.2", "1.21.x", params, {"ApiCertificateFile": str(cert)}, role_version=3)
    assert plan.ok and plan.role_ok is True
    assert plan.params_after["ApiCertificateFile"] == str(cert)
    assert plan.params_after["SmtpUrl"] == "smtp://u:p@mail"
    assert [c.parameter for c in plan.changes] == ["PipLibraries", "ApiCertificateFile", "SentryEnvironment",
                                                   "AlertRetentionDays"]


def test_plan_without_a_deployer_role(seed: Catalogue) -> None:
    plan = plan_upgrade(seed, "1.10.4", "1.13.x", {}, role_version=None)
    assert plan.ok and plan.role_ok is None and plan.role_required == 1
    assert all(step.role_ok is None for step in plan.steps)
    assert "not applicable (SQLite)" in render_plan(plan)
    assert plan.backup.version == Version(1, 10, 4) and plan.backup.schema_revision == "a1104"


def test_render_plan(seed: Catalogue) -> None:
    params = {"PipLibraries": [*DEFAULT_LIBS, "mylib"], "SentryEnv": "staging"}
    text = render_plan(plan_upgrade(seed, "1.17.2", "1.21.x", params, {}, role_version=2))
    lines = text.splitlines()
    assert lines[0] == "Upgrade onca 1.17.2 -> 1.21.5 in 4 hops"
    rows = [line for line in lines if " -> 1." in line and "deployer role" in line]
    assert [row.split()[1:4] for row in rows] == [["1.17.2", "->", "1.18.8"], ["1.18.8", "->", "1.19.5"],
                                                  ["1.19.5", "->", "1.20.3"], ["1.20.3", "->", "1.21.5"]]
    assert len({row.index("deployer role") for row in rows}) == 1  # aligned columns
    assert rows[0].endswith("ready") and rows[1].endswith("blocked")
    assert "jsonpath-ng,policyuniverse,requests,mylib -> mylib" in text
    assert "staging (as SentryEnv) -> staging" in text
    assert "(unset) -> 365" in text
    assert "needs version 3 (from 1.19.5); recorded version 2: too old" in text
    assert "Blocked: 2 things to do before upgrading:" in text
    flat = " ".join(text.split())
    assert "tagged onca 1.17.2, schema revision a1170" in flat
    assert "install onca 1.17.2 and `onca restore` this backup" in flat
    assert "1. ApiCertificateFile must have a value before upgrading to 1.19.5:" in flat
    assert "pass --param ApiCertificateFile=<value>, then run the upgrade again." in flat
    assert "2. The deployer role is at version 2" in flat and "`onca deployer-role`" in flat
    assert all(len(line) <= 120 for line in lines)

    ready = render_plan(plan_upgrade(seed, "1.10.4", "1.13.x", {}))
    assert "Parameter changes:\n  none" in ready and ready.rstrip().endswith("applies each hop in order.")
    assert "nothing to upgrade" in render_plan(plan_upgrade(seed, "1.13.2", "1.13.2", {}))


def test_plan_json_is_serialisable_and_masks_secrets(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, """
current: "1.1.0"
releases:
  - {version: "1.0.0", deployer_role: 1, schema_revision: r1}
  - version: "1.1.0"
    deployer_role: 2
    schema_revision: r2
    notes:
      - rename: {from: SmtpServer, to: SmtpUrl}
"""))
    plan = plan_upgrade(catalogue, "1.0.0", "1.1.0", {"SmtpServer": "smtp://user:secret@mail"}, role_version=1)
    document = plan_json(plan)
    text = json.dumps(document)
    assert "secret" not in text and "secret" not in render_plan(plan)
    assert document["deployed"] == "1.0.0" and document["target"] == "1.1.0" and document["ok"] is False
    assert document["deployer_role"] == {"required": 2, "recorded": 1, "ok": False}
    hop = document["hops"][0]
    assert (hop["from"], hop["to"], hop["schema_revision"]) == ("1.0.0", "1.1.0", "r2")
    assert hop["notes"] == [{"rename": {"from": "SmtpServer", "to": "SmtpUrl"}, "introduced": "1.1.0"}]
    assert hop["changes"][0]["renamed_from"] == "SmtpServer" and hop["changes"][0]["after"] == "********"
    assert document["backup"]["schema_revision"] == "r1" and document["blockers"] == list(plan.blockers)


# Catalogue validation: the file, the entry and the key.
@pytest.mark.parametrize(("body", "expected"), [
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0", deployer_role: 1, colour: red}\n',
     "releases[0] (1.0.0): colour: unknown key (allowed: version, deployer_role, schema_revision, notes, avoid, "
     "avoid_reason, released)"),
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0"}\n', "releases[0] (1.0.0): deployer_role: is required"),
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0", deployer_role: "two"}\n',
     "releases[0] (1.0.0): deployer_role: Input should be a valid integer, got 'two'"),
    ('current: "1.10.0"\nreleases:\n  - {version: 1.10, deployer_role: 1}\n',
     "releases[0]: version: Input should be a valid string (write it in quotes"),
    ('current: "1.0.0"\nreleases:\n  - {version: "v1.0.0", deployer_role: 1}\n',
     "releases[0] (v1.0.0): version: 'v1.0.0' is not a version"),
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0", deployer_role: 1}\n'
     '  - {version: "1.0.0", deployer_role: 1}\n',
     "releases[1] (1.0.0): version: 1.0.0 is listed twice (also releases[0])"),
    ('current: "1.0.1"\nreleases:\n  - {version: "1.0.0", deployer_role: 1}\n',
     "current: 1.0.1 is not one of the listed releases"),
    ('current: "1.0.1"\nreleases:\n  - {version: "1.0.0", deployer_role: 2}\n'
     '  - {version: "1.0.1", deployer_role: 1}\n',
     "releases (1.0.1): deployer_role: 1 is lower than 1.0.0's 2"),
    ('current: "1.0.0"\nreleases:\n  - version: "1.0.0"\n    deployer_role: 1\n    notes:\n'
     '      - {rename: {from: A, to: B}, set_default: {parameter: C, value: 1}}\n',
     "releases[0] (1.0.0): notes[0]: a note has exactly one of rename, remove_defaults, require, set_default "
     "(found rename, set_default)"),
    ('current: "1.0.0"\nreleases:\n  - version: "1.0.0"\n    deployer_role: 1\n    notes:\n      - {drop: X}\n',
     "releases[0] (1.0.0): notes[0].drop: unknown key (allowed: rename, remove_defaults, require, set_default)"),
    ('current: "1.0.0"\nreleases:\n  - version: "1.0.0"\n    deployer_role: 1\n    notes:\n'
     '      - require: {parameter: X, description: d, validator: url}\n',
     "releases[0] (1.0.0): notes[0].require.validator: Input should be 'path_exists', 'email' or 'nonempty'"),
    ('current: "1.0.0"\nreleases:\n  - version: "1.0.0"\n    deployer_role: 1\n    notes:\n'
     '      - rename: {from: A}\n', "releases[0] (1.0.0): notes[0].rename.to: is required"),
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0", deployer_role: 1, released: "June"}\n',
     "releases[0] (1.0.0): released: 'June' is not a date (YYYY-MM-DD)"),
    ('current: "1.0.0"\nreleases: []\n', "releases: List should have at least 1 item"),
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0", deployer_role: 1, released: 5}\n',
     "releases[0] (1.0.0): released: Input should be a valid date or a valid string, got 5"),
    ('current: "1.0.0"\nreleases:\n  - {version: "1.0.0", deployer_role: 1, notes: [rename]}\n',
     "releases[0] (1.0.0): notes[0]: should be a mapping of key: value, got 'rename'"),
    ("current: [1\n", "not valid YAML"),
    ("- 1.0.0\n", "must be a mapping with `current` and `releases`"),
])
def test_catalogue_errors_name_file_entry_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    message = str(caught.value)
    assert message.startswith(f"release catalogue {path} is invalid:")
    assert expected in message, message


def test_catalogue_dates_may_be_unquoted(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, 'current: "1.0.0"\nreleases:\n'
                                               '  - {version: "1.0.0", deployer_role: 1, released: 2026-06-01}\n'))
    assert catalogue.releases[0].released == "2026-06-01"


def test_seed_catalogue_is_the_seed(seed: Catalogue) -> None:
    for recommended in ("1.17.4", "1.18.8", "1.19.5", "1.20.3"):
        line = Version.parse(recommended).line
        assert str(seed.latest_patch(*line).version) == recommended  # type: ignore[union-attr]
    assert [r.deployer_role for r in (seed.get("1.13.2"), seed.get("1.14.0"), seed.get("1.19.4"),
                                      seed.get("1.19.5"))] == [1, 2, 2, 3]  # type: ignore[union-attr]
    assert isinstance(seed.get("1.18.0").notes[0], RemoveDefaults)  # type: ignore[union-attr]
