"""The detections component with real files, real zip archives and a real `pip install` of a local wheel."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from onca.deploy.components import detections
from onca.deploy.parameters import resolve
from onca.deploy.resources import DeployContext, ResourceFailure
from onca.detections import testing

FIXTURES = Path(__file__).parent / "fixtures"

RULE_YML = """\
AnalysisType: rule
RuleID: Test.Fixture.SuspiciousUser
Enabled: true
Filename: suspicious_user.py
LogTypes:
  - Okta.SystemLog
Severity: Low
Tests:
  - Name: root is suspicious
    ExpectedResult: true
    Log:
      actor: root
  - Name: alice is not
    ExpectedResult: false
    Log:
      actor: alice
"""
RULE_PY = """\
import oncafix


def rule(event):
    return oncafix.is_suspicious(event.get("actor", ""))
"""
PLAIN_RULE_YML = """\
AnalysisType: rule
RuleID: Test.Plain.{name}
Enabled: true
Filename: {name}.py
LogTypes:
  - Okta.SystemLog
Severity: Info
"""
PLAIN_RULE_PY = "def rule(event):\n    return False\n"


class Warnings(list[str]):
    pass


def context(home: Path, first: bool = True, **params: Any) -> tuple[DeployContext, Warnings]:
    values, _ = resolve({"FirstUserEmail": "admin@example.com", **params}, None)
    warnings = Warnings()
    ctx = DeployContext(home=home, stack_name="onca-test", params=values, version="0.1.0", first_deploy=first,
                        warn=warnings.append)
    return ctx, warnings


def build_wheel(dest: Path, version: str = "1.0.0", init_source: str | None = None) -> Path:
    """Pack tests/deploy/fixtures/onca_fixture_lib into a wheel (no top_level.txt: RECORD names the module)."""
    dest.mkdir(parents=True, exist_ok=True)
    source = (FIXTURES / "onca_fixture_lib" / "oncafix" / "__init__.py").read_text(encoding="utf-8")
    dist_info = f"onca_fixture_lib-{version}.dist-info"
    files = {
        "oncafix/__init__.py": (init_source if init_source is not None else source).encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: onca-fixture-lib\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: onca-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    wheel = dest / f"onca_fixture_lib-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def write_rule_pack(root: Path, flat: bool = False) -> Path:
    """A pack whose rule imports the fixture library; `flat` puts the files at the pack's top level."""
    rules = root if flat else root / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "suspicious_user.yml").write_text(RULE_YML, encoding="utf-8")
    (rules / "suspicious_user.py").write_text(RULE_PY, encoding="utf-8")
    return root


def write_plain_pack(root: Path, name: str) -> Path:
    rules = root / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / f"{name}.yml").write_text(PLAIN_RULE_YML.format(name=name), encoding="utf-8")
    (rules / f"{name}.py").write_text(PLAIN_RULE_PY, encoding="utf-8")
    return root


def zip_dir(source: Path, archive: Path, top: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}{path.relative_to(source).as_posix()}")
    return archive


# --- ContentPacks ------------------------------------------------------------------------------------------

def test_onca_content_installs_and_recreate_is_idempotent(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path / "home")
    resource = detections.ContentPacks()
    props = resource.properties(ctx)
    assert json.loads(json.dumps(props)) == props
    outputs = resource.create(ctx, props)
    onca = tmp_path / "home" / "content" / "onca"
    assert (onca / "packs" / "onca_core.yml").is_file()
    assert outputs["onca"]["detections"] >= 40 and outputs["onca"]["sha256"] == props["onca_content"]
    assert outputs["packs"] == []
    again = resource.create(ctx, props)
    assert again == outputs
    assert not list((tmp_path / "home" / "content").glob(".staging-*"))
    assert resource.properties(ctx) == props


def test_packs_from_dir_zip_and_file_urls_install_on_first_deploy(tmp_path: Path) -> None:
    plain = write_plain_pack(tmp_path / "src" / "plain pack!", "one")
    zipped = zip_dir(write_plain_pack(tmp_path / "src" / "zipped", "two"), tmp_path / "src" / "Zipped-Pack.zip",
                     top="zipped-main/")
    url_zip = zip_dir(write_plain_pack(tmp_path / "src" / "urlzip", "three"), tmp_path / "src" / "url zip.zip")
    url_dir = write_rule_pack(tmp_path / "src" / "flat", flat=True)
    sources = [str(plain), str(zipped), url_zip.as_uri(), url_dir.as_uri()]
    ctx, _ = context(tmp_path / "home", InitialAnalysisPackUrls=",".join(sources))
    resource = detections.ContentPacks()
    props = resource.properties(ctx)
    assert props["packs"] == sources
    outputs = resource.create(ctx, props)

    packs_dir = tmp_path / "home" / "content" / "packs"
    names = [pack["name"] for pack in outputs["packs"]]
    assert names == ["plain_pack", "Zipped-Pack", "url_zip", "flat"]
    assert (packs_dir / "plain_pack" / "rules" / "one.yml").is_file()
    assert (packs_dir / "Zipped-Pack" / "rules" / "two.yml").is_file()  # the archive's top folder is dropped
    assert (packs_dir / "url_zip" / "rules" / "three.yml").is_file()
    assert (packs_dir / "flat" / "suspicious_user.yml").is_file()
    by_name = {pack["name"]: pack for pack in outputs["packs"]}
    assert by_name["Zipped-Pack"]["sha256"] == hashlib.sha256(zipped.read_bytes()).hexdigest()
    assert by_name["plain_pack"]["sha256"] == detections.tree_digest(plain)
    assert all(pack["detections"] == 1 for pack in outputs["packs"])
    manifest = json.loads((tmp_path / "home" / "content" / "packs.json").read_text())
    assert manifest["sources"] == sources
    assert any("4 analysis pack(s)" in notice for notice in ctx.notices)
    assert resource.create(ctx, props)["packs"] == outputs["packs"]  # re-create adopts the same result


def test_pack_parameter_is_ignored_after_the_first_deploy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first_pack = write_plain_pack(tmp_path / "first", "one")
    ctx, _ = context(home, InitialAnalysisPackUrls=str(first_pack))
    resource = detections.ContentPacks()
    props = resource.properties(ctx)
    outputs = resource.create(ctx, props)

    later_pack = write_plain_pack(tmp_path / "later", "two")
    later, warnings = context(home, first=False, InitialAnalysisPackUrls=str(later_pack))
    later_props = detections.ContentPacks().properties(later)
    assert later_props == props  # nothing to do: the parameter no longer drives the resource
    assert len(warnings) == 1 and "only installed on the first deploy" in warnings[0]
    # An update for another reason (new Onca content) keeps the installed packs and installs no new one.
    updated = resource.update(later, {**props, "onca_content": "older"}, later_props, outputs)
    assert [pack["name"] for pack in updated["packs"]] == ["first"]
    assert not (home / "content" / "packs" / "later").exists()
    same, _ = context(home, first=False, InitialAnalysisPackUrls=str(first_pack))
    unchanged = Warnings()
    same.warn = unchanged.append
    detections.ContentPacks().properties(same)
    assert unchanged == []


def test_invalid_pack_fails_with_file_and_reason_and_installs_nothing(tmp_path: Path) -> None:
    good = write_plain_pack(tmp_path / "good", "one")
    bad = write_plain_pack(tmp_path / "bad", "two")
    (bad / "rules" / "two.yml").write_text(PLAIN_RULE_YML.format(name="two").replace("Severity: Info\n", ""))
    ctx, _ = context(tmp_path / "home", InitialAnalysisPackUrls=f"{good},{bad}")
    resource = detections.ContentPacks()
    with pytest.raises(ResourceFailure) as failure:
        resource.create(ctx, resource.properties(ctx))
    message = str(failure.value)
    assert "pack 'bad'" in message and "rules/two.yml" in message and "Severity" in message
    assert not (tmp_path / "home" / "content" / "packs").exists()
    assert not (tmp_path / "home" / "content" / "onca").exists()  # validated before anything was replaced
    assert not list((tmp_path / "home" / "content").glob(".staging-*"))


@pytest.mark.parametrize("source, reason", [
    ("missing", "does not exist"),
    ("notazip.txt", "neither a directory nor a zip file"),
    ("empty", "contains no detection content"),
])
def test_unusable_pack_sources_fail_clearly(tmp_path: Path, source: str, reason: str) -> None:
    (tmp_path / "notazip.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("no content here")
    ctx, _ = context(tmp_path / "home", InitialAnalysisPackUrls=str(tmp_path / source))
    resource = detections.ContentPacks()
    with pytest.raises(ResourceFailure, match=reason):
        resource.create(ctx, resource.properties(ctx))


@pytest.mark.parametrize("entry", ["../escaped.yml", "rules/../../escaped.yml", "/tmp/escaped.yml"])
def test_zip_slip_is_refused(tmp_path: Path, entry: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("rules/one.yml", PLAIN_RULE_YML.format(name="one"))
        zf.writestr(entry, "AnalysisType: rule\n")
    ctx, _ = context(tmp_path / "home", InitialAnalysisPackUrls=str(archive))
    resource = detections.ContentPacks()
    with pytest.raises(ResourceFailure, match="outside the pack"):
        resource.create(ctx, resource.properties(ctx))
    assert not (tmp_path / "escaped.yml").exists() and not (tmp_path / "home" / "escaped.yml").exists()
    assert not (tmp_path / "home" / "content" / "packs").exists()


def test_symlinks_in_zip_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("rules/link.yml")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    ctx, _ = context(tmp_path / "home", InitialAnalysisPackUrls=str(archive))
    resource = detections.ContentPacks()
    with pytest.raises(ResourceFailure, match="symbolic links"):
        resource.create(ctx, resource.properties(ctx))


def test_upgrade_replaces_onca_content_and_rollback_restores_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx, _ = context(home)
    resource = detections.ContentPacks()
    props = resource.properties(ctx)
    outputs = resource.create(ctx, props)
    onca = home / "content" / "onca"
    # Pretend the installed content came from an older release: it has one rule the new release dropped.
    write_plain_pack(onca, "dropped_in_new_release")
    old_props = {**props, "onca_content": detections.tree_digest(onca)}

    later, _ = context(home, first=False)
    upgraded = resource.update(later, old_props, props, outputs)
    assert upgraded["onca"]["sha256"] == props["onca_content"]
    assert not (onca / "rules" / "dropped_in_new_release.yml").exists()

    resource.update(later, props, old_props, upgraded)  # the engine rolling the upgrade back
    assert (onca / "rules" / "dropped_in_new_release.yml").is_file()
    assert detections.tree_digest(onca) == old_props["onca_content"]


def test_delete_removes_content_and_succeeds_when_gone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx, _ = context(home, InitialAnalysisPackUrls=str(write_plain_pack(tmp_path / "p", "one")))
    resource = detections.ContentPacks()
    props = resource.properties(ctx)
    outputs = resource.create(ctx, props)
    resource.delete(ctx, props, outputs)
    assert not (home / "content").exists()
    resource.delete(ctx, props, outputs)


# --- PipLibraries ------------------------------------------------------------------------------------------

def installed_version(home: Path) -> str:
    marker = json.loads((home / "python" / detections.MARKER).read_text())
    return marker["libraries"][0]["version"]


def test_pip_libraries_install_verify_adopt_and_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    wheel = build_wheel(tmp_path / "v1")
    ctx, _ = context(home, PipLibraries=str(wheel))
    resource = detections.PipLibraries()
    props = resource.properties(ctx)
    assert props == {"requirements": [str(wheel)]}
    outputs = resource.create(ctx, props)
    assert (home / "python" / "oncafix" / "__init__.py").is_file()
    [library] = outputs["libraries"]
    assert library == {"requirement": str(wheel), "distribution": "onca-fixture-lib", "version": "1.0.0",
                       "modules": ["oncafix"]}
    assert "oncafix" not in sys.modules  # verified in a subprocess, not in this process

    def no_pip(*args: Any) -> None:
        raise AssertionError("pip must not run when the libraries are already in place")

    monkeypatch.setattr(detections, "pip_install", no_pip)
    assert resource.create(ctx, props) == outputs  # re-create adopts what is installed
    monkeypatch.undo()

    resource.delete(ctx, props, outputs)
    assert not (home / "python").exists()
    resource.delete(ctx, props, outputs)


def test_pip_libraries_update_swaps_and_failures_keep_the_previous_libraries(tmp_path: Path) -> None:
    home = tmp_path / "home"
    v1 = build_wheel(tmp_path / "v1")
    ctx, _ = context(home, PipLibraries=str(v1))
    resource = detections.PipLibraries()
    old = resource.properties(ctx)
    outputs = resource.create(ctx, old)

    missing = tmp_path / "nowhere" / "onca_fixture_lib-9.0.0-py3-none-any.whl"
    with pytest.raises(ResourceFailure) as failure:
        resource.update(ctx, old, {"requirements": [str(missing)]}, outputs)
    assert str(missing) in str(failure.value) and "pip could not install" in str(failure.value)
    assert installed_version(home) == "1.0.0"

    broken = build_wheel(tmp_path / "broken", "2.0.0", init_source="raise ImportError('fixture is broken')\n")
    with pytest.raises(ResourceFailure) as failure:
        resource.update(ctx, old, {"requirements": [str(broken)]}, outputs)
    assert f"{broken}: import oncafix failed: ImportError: fixture is broken" in str(failure.value)
    assert installed_version(home) == "1.0.0"

    v3 = build_wheel(tmp_path / "v3", "3.0.0")
    updated = resource.update(ctx, old, {"requirements": [str(v3)]}, outputs)
    assert updated["libraries"][0]["version"] == "3.0.0" == installed_version(home)
    leftovers = [p.name for p in home.iterdir() if p.name.startswith("python.")]
    assert leftovers == []


def test_pip_libraries_empty_list_gives_an_empty_directory(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path / "home")
    resource = detections.PipLibraries()
    outputs = resource.create(ctx, resource.properties(ctx))
    assert outputs["libraries"] == [] and (tmp_path / "home" / "python").is_dir()


def test_import_names_from_top_level_and_record(tmp_path: Path) -> None:
    info = tmp_path / "Some_Dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: some.dist\nVersion: 1.0\n")
    (info / "RECORD").write_text("somemod.py,,\n_private.py,,\npkg/__init__.py,,\nSome_Dist-1.0.dist-info/RECORD,,\n"
                                 "bin/tool,,\n")
    assert detections.import_names(tmp_path, "Some-Dist") == ["somemod", "pkg"]
    (info / "top_level.txt").write_text("realname\n")
    assert detections.import_names(tmp_path, "some_dist") == ["realname"]
    assert detections.import_names(tmp_path, "Other.Lib") == ["other_lib"]


# --- DetectionRuntime and the import path ------------------------------------------------------------------

def test_run_tests_passes_only_when_the_runtime_gets_the_extra_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx, _ = context(home, PipLibraries=str(build_wheel(tmp_path / "wheel")))
    detections.PipLibraries().create(ctx, detections.PipLibraries().properties(ctx))
    content = write_rule_pack(tmp_path / "content")
    options = testing.Options(workers=1)

    without = testing.run_tests(content, options)
    assert without.exit_code == 1
    assert any("No module named 'oncafix'" in problem.message for problem in without.invalid)

    python = detections.python_dir(home)
    with_path = testing.run_tests(content, testing.Options(workers=1, extra_paths=[python]))
    assert with_path.exit_code == 0 and with_path.counts["passed"] == 1 and not with_path.invalid
    # Closed runtimes leave nothing behind: neither the path nor the modules imported from it.
    assert str(python) not in sys.path and "oncafix" not in sys.modules


def test_detection_runtime_checks_content_with_the_libraries(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pack = write_rule_pack(tmp_path / "flatpack", flat=True)
    ctx, _ = context(home, InitialAnalysisPackUrls=str(pack))
    packs, runtime = detections.ContentPacks(), detections.DetectionRuntime()
    packs.create(ctx, packs.properties(ctx))
    pip = detections.PipLibraries()
    pip.create(ctx, pip.properties(ctx))  # no PipLibraries: the pack's import fails

    with pytest.raises(ResourceFailure) as failure:
        runtime.create(ctx, runtime.properties(ctx))
    assert "packs/flatpack/suspicious_user.yml" in str(failure.value)
    assert "No module named 'oncafix'" in str(failure.value)

    with_lib, _ = context(home, first=False, PipLibraries=str(build_wheel(tmp_path / "wheel")))
    pip.update(with_lib, pip.properties(ctx), pip.properties(with_lib), {})
    outputs = runtime.update(with_lib, runtime.properties(ctx), runtime.properties(with_lib), {})
    assert outputs["loaded"] == outputs["detections"] >= 41
    assert outputs["libraries"] == [str(tmp_path / "wheel" / "onca_fixture_lib-1.0.0-py3-none-any.whl")]
    assert "oncafix" not in sys.modules
    runtime.delete(with_lib, {}, outputs)


def test_detection_runtime_reports_id_conflicts_across_packs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second = write_plain_pack(tmp_path / "a", "same"), write_plain_pack(tmp_path / "b", "same")
    ctx, _ = context(home, InitialAnalysisPackUrls=f"{first},{second}")
    detections.ContentPacks().create(ctx, detections.ContentPacks().properties(ctx))
    with pytest.raises(ResourceFailure, match=r"packs/b/rules/same\.yml"):
        detections.DetectionRuntime().create(ctx, detections.DetectionRuntime().properties(ctx))


@pytest.mark.parametrize("resource", ["ContentPacks", "PipLibraries", "DetectionRuntime"])
@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_every_handler_honours_injected_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resource: str,
                                               action: str) -> None:
    monkeypatch.setenv("ONCA_FAULT", f"detections/{resource}:{action}")
    [target] = [r for r in detections.component().resources if r.name == resource]
    ctx, _ = context(tmp_path / "home")
    props = target.properties(ctx)
    calls = {"create": lambda: target.create(ctx, props), "update": lambda: target.update(ctx, props, props, {}),
             "delete": lambda: target.delete(ctx, props, {})}
    with pytest.raises(ResourceFailure, match=f"injected fault: detections/{resource} {action}"):
        calls[action]()
    assert not (tmp_path / "home").exists()  # failed before touching anything
