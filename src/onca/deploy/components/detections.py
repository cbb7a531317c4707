"""The detections component: detection content, the Python libraries detections import, and a check that
the two load together.

What it keeps in the home:
  content/onca/            Onca's own content, replaced whenever a release ships different content
  content/onca.previous/   the content it replaced, so rolling an upgrade back restores it
  content/packs/<name>/    InitialAnalysisPackUrls, installed on the FIRST deploy only
  content/packs.json       which packs came from where (sha256), so later deploys keep them as they are
  python/                  PipLibraries, installed by `pip install --target`, on detection code's sys.path

InitialAnalysisPackUrls works like FirstUserEmail: after the first successful deploy the packs recorded in
packs.json are the resource's properties, so changing the parameter later does nothing (a warning says so).
Operators manage content after that with their own tooling.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from onca.deploy.resources import Component, DeployContext, Json, Resource, ResourceFailure, injected_fault
from onca.detections import schemas
from onca.detections.content import Content, Problem, is_repository_root, load_content
from onca.detections.runtime import build_runtime

COMPONENT = "detections"
MANIFEST = "packs.json"
MARKER = ".onca-pip.json"  # inside python/: what was installed, so a re-deploy can adopt it
PIP_TIMEOUT = 900
MAX_ZIP_BYTES = 1 << 30  # refuse archives that would unpack to more than 1 GiB
MAX_LISTED_PROBLEMS = 10
_SKIPPED = {"__pycache__", ".git", ".hg", ".svn", "__MACOSX"}


def component() -> Component:
    return Component(COMPONENT, [ContentPacks(), PipLibraries(), DetectionRuntime()],
                     "Detection content, the libraries detections import, and a check that they load")


# --- paths -------------------------------------------------------------------------------------------------

def content_dir(home: Path) -> Path:
    return home / "content"


def python_dir(home: Path) -> Path:
    """The PipLibraries directory: pass it as `extra_paths` to build_runtime wherever detections run."""
    return home / "python"


def content_roots(home: Path) -> list[Path]:
    """Each installed content tree: Onca's own first, then the packs by name."""
    root = content_dir(home)
    roots = [root / "onca"] if (root / "onca").is_dir() else []
    packs = root / "packs"
    if packs.is_dir():
        roots += sorted(p for p in packs.iterdir() if p.is_dir() and not p.name.startswith("."))
    return roots


def deployed_content(home: Path) -> Content:
    """All deployed content as one set, each tree loaded as it was validated (a pack may be a flat folder,
    which would be skipped if the whole content/ directory were read as one repository)."""
    merged = Content(root=content_dir(home))
    for root in content_roots(home):
        part = load_content(root)
        inside = root.resolve()
        # load_content also reads helpers next to the current directory; only this tree's files count here.
        merged.items += [item for item in part.items if item.path.is_relative_to(inside)]
        merged.problems += [p for p in part.problems if Path(p.path).is_relative_to(inside)]
        merged.warnings += [p for p in part.warnings if Path(p.path).is_relative_to(inside)]
    pairs = [(item.path, item.spec) for item in merged.items]
    conflicts = schemas.find_id_conflicts(pairs) + schemas.find_datamodel_logtype_conflicts(pairs)
    merged.problems += [Problem(Path(path), message) for path, message in conflicts]
    bad = {path for path, _ in conflicts}
    merged.items = [item for item in merged.items if item.path not in bad]
    known = {item.id for item in merged.items}
    packs = [(item.path, item.spec) for item in merged.of_type("pack")]
    merged.problems += [Problem(Path(p), m) for p, m in schemas.find_pack_problems(packs, known)]
    return merged


# --- small file helpers ------------------------------------------------------------------------------------

def tree_digest(root: Traversable) -> str:
    """sha256 over relative paths and bytes, so equal trees have equal digests wherever they live."""
    digest = hashlib.sha256()

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name in _SKIPPED or child.name.endswith(".pyc"):
                continue
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            else:
                digest.update(rel.encode() + b"\0" + hashlib.sha256(child.read_bytes()).digest())

    walk(root, "")
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_tree(source: Traversable, target: Path) -> None:
    """Copy a Traversable (package data or a directory) without caches and VCS folders."""
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        if child.name in _SKIPPED or child.name.endswith(".pyc"):
            continue
        if child.is_dir():
            _copy_tree(child, target / child.name)
        else:
            (target / child.name).write_bytes(child.read_bytes())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _previous(target: Path) -> Path:
    return target.with_name(target.name + ".previous")


def _held(target: Path) -> Path:
    return target.with_name(target.name + ".swap")


def _recover(target: Path) -> None:
    """A crash between the renames of _swap or _exchange leaves the target missing: put a copy back."""
    for copy in (_held(target), _previous(target)):
        if not target.exists() and copy.is_dir():
            copy.rename(target)


def _swap(fresh: Path, target: Path, keep_previous: bool = False) -> None:
    """Put `fresh` in place of `target` with two renames (each atomic); the old copy is kept or removed."""
    previous = _previous(target)
    if target.exists():
        _remove(previous)
        target.rename(previous)
    fresh.rename(target)
    if not keep_previous:
        _remove(previous)


def _exchange(target: Path) -> None:
    """Swap `target` and its previous copy (rolling an upgrade back brings the older content back)."""
    previous, held = _previous(target), _held(target)
    _remove(held)
    target.rename(held)
    previous.rename(target)
    held.rename(previous)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _problem_lines(problems: Iterable[Problem], base: Path) -> str:
    items = list(problems)
    lines = []
    for problem in items[:MAX_LISTED_PROBLEMS]:
        path = Path(problem.path)
        where = path.relative_to(base) if path.is_relative_to(base) else path
        lines.append(f"{where}: {problem.message}")
    if len(items) > MAX_LISTED_PROBLEMS:
        lines.append(f"... and {len(items) - MAX_LISTED_PROBLEMS} more")
    return "; ".join(lines)


def _counts(content: Content) -> dict[str, int]:
    return {"detections": len(content.detections),
            "enabled": sum(1 for item in content.detections if item.enabled),
            "global_helpers": len(content.of_type("global")),
            "data_models": len(content.of_type("datamodel"))}


# --- ContentPacks ------------------------------------------------------------------------------------------

def packaged_content() -> Traversable:
    return resources.files("onca").joinpath("content")


def packaged_digest() -> str:
    return tree_digest(packaged_content())


def pack_sources(ctx: DeployContext) -> list[str]:
    """The packs this deployment has: the parameter on the first deploy, what was installed afterwards."""
    if ctx.first_deploy:
        return list(ctx.params.get("InitialAnalysisPackUrls") or [])
    return list(_read_json(content_dir(ctx.home) / MANIFEST).get("sources") or [])


def source_path(source: str) -> Path:
    """A local path or a file:// URL as a path (relative paths are taken from the current directory)."""
    if source.startswith("file:"):
        parsed = urlparse(source)
        if parsed.netloc not in ("", "localhost"):
            raise ResourceFailure(f"InitialAnalysisPackUrls: {source!r} names another host; only local "
                                  "file:// URLs are supported")
        return Path(url2pathname(parsed.path))
    return Path(source).expanduser().absolute()


def pack_name(path: Path) -> str:
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "pack"


def extract_zip(archive: Path, dest: Path) -> None:
    """Unpack a pack archive, refusing anything that would land outside `dest` (zip-slip) or is a link."""
    dest.mkdir(parents=True, exist_ok=True)
    inside = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        total = sum(info.file_size for info in members)
        if total > MAX_ZIP_BYTES:
            raise ResourceFailure(f"{archive}: unpacks to {total} bytes, more than the {MAX_ZIP_BYTES} allowed")
        for info in members:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            target = (dest / name).resolve()
            if (name.startswith("/") or PureWindowsPath(info.filename).drive or ".." in parts
                    or not target.is_relative_to(inside)):
                raise ResourceFailure(f"{archive}: refusing entry {info.filename!r}: it points outside the pack "
                                      "(path traversal)")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ResourceFailure(f"{archive}: refusing entry {info.filename!r}: symbolic links are not "
                                      "allowed in packs")
        for info in members:
            target = dest / info.filename.replace("\\", "/")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def _archive_root(unpacked: Path) -> Path:
    """Archives of a repository usually hold one top folder (name-main/); the content is inside it. A lone
    rules/ (or other content folder) is content itself and stays."""
    entries = [p for p in unpacked.iterdir() if p.name not in _SKIPPED]
    if len(entries) == 1 and entries[0].is_dir() and not is_repository_root(unpacked):
        return entries[0]
    return unpacked


def validate_tree(root: Path, label: str) -> dict[str, int]:
    """Load a content tree as a pack would be; any invalid file fails with its path and reason."""
    content = load_content(root)
    inside = root.resolve()
    problems = [p for p in content.problems if Path(p.path).is_relative_to(inside)]
    if problems:
        raise ResourceFailure(f"{label} has invalid content: {_problem_lines(problems, inside)}")
    items = [item for item in content.items if item.path.is_relative_to(inside)]
    if not items:
        raise ResourceFailure(f"{label} contains no detection content (no YAML file with an AnalysisType)")
    return _counts(content)


def stage_pack(source: str, staging: Path, taken: set[str]) -> Json:
    """Copy one pack into `staging`/<name> and validate it; returns what packs.json records about it."""
    path = source_path(source)
    name = base = pack_name(path)
    suffix = 2
    while name in taken:
        name, suffix = f"{base}-{suffix}", suffix + 1
    taken.add(name)
    target = staging / name
    if path.is_dir():
        digest = tree_digest(path)
        _copy_tree(path, target)
    elif path.is_file() and zipfile.is_zipfile(path):
        digest = file_digest(path)
        unpacked = staging / f".unpack-{name}"
        try:
            extract_zip(path, unpacked)
        except zipfile.BadZipFile as err:
            raise ResourceFailure(f"InitialAnalysisPackUrls: {source!r} is not a readable zip file: {err}") from err
        _archive_root(unpacked).rename(target)
        _remove(unpacked)
    elif path.exists():
        raise ResourceFailure(f"InitialAnalysisPackUrls: {source!r} is neither a directory nor a zip file")
    else:
        raise ResourceFailure(f"InitialAnalysisPackUrls: {source!r} does not exist ({path})")
    counts = validate_tree(target, f"pack {name!r} ({source})")
    return {"name": name, "source": source, "sha256": digest, **counts}


class ContentPacks(Resource):
    """Onca's own content (on every deploy that changes it) and the initial packs (on the first deploy)."""

    name = "ContentPacks"

    def __init__(self) -> None:
        self._warned: set[int] = set()

    def properties(self, ctx: DeployContext) -> Json:
        sources = pack_sources(ctx)
        requested = list(ctx.params.get("InitialAnalysisPackUrls") or [])
        if not ctx.first_deploy and requested != sources and id(ctx) not in self._warned:
            self._warned.add(id(ctx))
            ctx.warn(f"InitialAnalysisPackUrls change to {','.join(requested)!r} ignored: packs are only installed "
                     f"on the first deploy (installed: {','.join(sources) or 'none'})")
        return {"onca_content": packaged_digest(), "packs": sources}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._apply(ctx, props)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._apply(ctx, new)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        root = content_dir(ctx.home)
        for path in (root / "onca", _previous(root / "onca"), _held(root / "onca"), root / "packs",
                     _previous(root / "packs"), root / MANIFEST, *root.glob(".staging-*")):
            _remove(path)
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()

    def _apply(self, ctx: DeployContext, props: Json) -> Json:
        root = content_dir(ctx.home)
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(".staging-*"):  # from an interrupted run
            _remove(leftover)
        _recover(root / "packs")
        manifest = _read_json(root / MANIFEST)
        # Packs are fetched and validated before anything is replaced, so a bad pack changes nothing.
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            packs = self._stage_packs(staging / "packs", props["packs"]) if ctx.first_deploy else None
            onca = self._install_onca(ctx, root, props["onca_content"])
            if packs is not None:
                _swap(staging / "packs", root / "packs")
                manifest = {"sources": list(props["packs"]), "packs": packs}
                _write_json(root / MANIFEST, manifest)
                if packs:
                    total = sum(pack["detections"] for pack in packs)
                    ctx.notices.append(f"Installed {len(packs)} analysis pack(s) with {total} detection(s) "
                                       f"into {root / 'packs'}")
        finally:
            _remove(staging)
        return {"content_dir": str(root), "onca": onca, "packs": manifest.get("packs", [])}

    def _install_onca(self, ctx: DeployContext, root: Path, wanted: str) -> Json:
        target = root / "onca"
        _recover(target)
        previous = _previous(target)
        current = tree_digest(target) if target.is_dir() else None
        if current != wanted:
            if current is not None and previous.is_dir() and tree_digest(previous) == wanted:
                _exchange(target)
            else:
                if wanted != packaged_digest():
                    ctx.warn("Onca's content for the requested state is no longer available; installing this "
                             "release's content instead")
                staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
                try:
                    _copy_tree(packaged_content(), staging / "onca")
                    _swap(staging / "onca", target, keep_previous=True)
                finally:
                    _remove(staging)
        counts = validate_tree(target, "Onca's own content")
        return {"sha256": tree_digest(target), **counts}

    @staticmethod
    def _stage_packs(packs_dir: Path, sources: list[str]) -> list[Json]:
        packs_dir.mkdir()
        taken: set[str] = set()
        return [stage_pack(source, packs_dir, taken) for source in sources]


# --- PipLibraries ------------------------------------------------------------------------------------------

def is_local_requirement(requirement: str) -> bool:
    return (requirement.startswith(("/", "./", "../", "~", "file:")) or os.sep in requirement
            or requirement.endswith((".whl", ".tar.gz", ".zip")))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return normalise(match.group(0)) if match else ""


def _fingerprint(requirements: list[str]) -> list[str]:
    """The requirements plus the sha256 of local files, so a rebuilt wheel at the same path is reinstalled."""
    out = []
    for requirement in requirements:
        path = source_path(requirement) if is_local_requirement(requirement) else None
        out.append(f"{requirement}#{file_digest(path)}" if path is not None and path.is_file() else requirement)
    return out


def _dist_infos(target: Path) -> dict[str, Path]:
    found = {}
    for info in target.glob("*.dist-info"):
        name = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        for line in _read_text(info / "METADATA").splitlines():
            if line.lower().startswith("name:"):
                name = line.split(":", 1)[1].strip()
                break
        found[normalise(name)] = info
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def import_names(target: Path, distribution: str) -> list[str]:
    """The modules a distribution provides: top_level.txt, else the top of RECORD, else its name."""
    info = _dist_infos(target).get(normalise(distribution))
    names: list[str] = []
    if info is not None:
        names = [line.strip() for line in _read_text(info / "top_level.txt").splitlines() if line.strip()]
        if not names:
            names = _record_top_level(_read_text(info / "RECORD"))
    names = [name.replace("/", ".") for name in names]
    names = [name for name in names if all(part.isidentifier() for part in name.split("."))]
    public = [name for name in names if not name.startswith("_")]
    return public or names or [normalise(distribution).replace("-", "_")]


def _record_top_level(record: str) -> list[str]:
    """Top-level modules and packages among the files a wheel installed."""
    names: list[str] = []
    for row in record.splitlines():
        parts = row.split(",", 1)[0].split("/")
        if len(parts) == 1:
            if not parts[0].endswith((".py", ".so", ".pyd")):
                continue
            candidate = parts[0].split(".", 1)[0]
        elif parts[0].endswith((".dist-info", ".data")) or parts[0] in ("__pycache__", "bin"):
            continue
        else:
            candidate = parts[0]
        if candidate.isidentifier() and candidate not in names:
            names.append(candidate)
    return names


_VERIFY = """
import importlib, json, sys
sys.path.append(sys.argv[1])
failures = {}
for label, modules in json.loads(sys.argv[2]).items():
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException as err:
            failures[label] = f"import {module} failed: {type(err).__name__}: {err}"
            break
print(json.dumps(failures))
"""


def verify_imports(target: Path, libraries: list[Json]) -> dict[str, str]:
    """Import every library's modules in a fresh interpreter (-I: no cwd, no user site); label -> error."""
    wanted = {lib["requirement"]: lib["modules"] for lib in libraries}
    if not wanted:
        return {}
    proc = subprocess.run([sys.executable, "-I", "-c", _VERIFY, str(target), json.dumps(wanted)],
                          capture_output=True, text=True, timeout=PIP_TIMEOUT, cwd=target)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {label: f"the import check crashed: {_tail(proc.stderr)}" for label in wanted}


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _label(requirement_list: list[str], item: Json) -> str:
    name = normalise(item.get("metadata", {}).get("name", ""))
    url = item.get("download_info", {}).get("url", "")
    for requirement in requirement_list:
        if is_local_requirement(requirement):
            path = source_path(requirement)
            if url.startswith("file:") and source_path(url).resolve() == path.resolve():
                return requirement
        elif requirement_name(requirement) == name:
            return requirement
    return name


def pip_install(target: Path, requirements: list[str]) -> list[Json]:
    """pip install --target; returns each requested library with its distribution, version and modules."""
    report = target.with_name(target.name + ".report.json")
    command = [sys.executable, "-m", "pip", "install", "--target", str(target), "--no-input",
               "--disable-pip-version-check", "--no-cache-dir", "--report", str(report)]
    if all(is_local_requirement(r) for r in requirements):
        command.append("--no-index")  # nothing to download: never reach for an index
    try:
        proc = subprocess.run([*command, *requirements], capture_output=True, text=True, timeout=PIP_TIMEOUT)
        if proc.returncode != 0:
            raise ResourceFailure(f"PipLibraries: pip could not install {', '.join(requirements)} "
                                  f"(exit {proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}")
        installed = _read_json(report).get("install") or []
    except subprocess.TimeoutExpired as err:
        raise ResourceFailure(f"PipLibraries: pip did not finish within {PIP_TIMEOUT}s installing "
                              f"{', '.join(requirements)}") from err
    finally:
        _remove(report)
    libraries = []
    for item in installed:
        if not item.get("requested"):
            continue
        distribution = item.get("metadata", {}).get("name", "")
        libraries.append({"requirement": _label(requirements, item), "distribution": distribution,
                          "version": item.get("metadata", {}).get("version", ""),
                          "modules": import_names(target, distribution)})
    if not libraries:  # no report (older pip): check every distribution that landed in the directory
        libraries = [{"requirement": info.name, "distribution": name, "version": "",
                      "modules": import_names(target, name)} for name, info in _dist_infos(target).items()]
    return libraries


class PipLibraries(Resource):
    """The PipLibraries requirements in <home>/python, replaced as a whole so a failed change keeps the old."""

    name = "PipLibraries"

    def properties(self, ctx: DeployContext) -> Json:
        return {"requirements": list(ctx.params.get("PipLibraries") or [])}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._ensure(ctx, list(props["requirements"]))

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._ensure(ctx, list(new["requirements"]))

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        target = python_dir(ctx.home)
        for path in (target, _previous(target), *ctx.home.glob(f"{target.name}.new-*")):
            _remove(path)

    def _ensure(self, ctx: DeployContext, requirements: list[str]) -> Json:
        target = python_dir(ctx.home)
        _recover(target)
        for leftover in ctx.home.glob(f"{target.name}.new-*"):  # from an interrupted run
            _remove(leftover)
        fingerprint = _fingerprint(requirements)
        marker = _read_json(target / MARKER)
        if marker.get("fingerprint") == fingerprint and not verify_imports(target, marker.get("libraries", [])):
            return self._outputs(target, marker)  # already installed and importable: adopt it
        ctx.home.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=f"{target.name}.new-", dir=ctx.home))
        try:
            libraries = pip_install(fresh, requirements) if requirements else []
            failures = verify_imports(fresh, libraries)
            if failures:
                raise ResourceFailure("PipLibraries: installed but not importable: " + "; ".join(
                    f"{label}: {error}" for label, error in failures.items()))
            marker = {"requirements": requirements, "fingerprint": fingerprint, "libraries": libraries}
            _write_json(fresh / MARKER, marker)
            _swap(fresh, target)
        finally:
            _remove(fresh)
        return self._outputs(target, marker)

    @staticmethod
    def _outputs(target: Path, marker: Json) -> Json:
        return {"path": str(target), "requirements": marker.get("requirements", []),
                "libraries": marker.get("libraries", [])}


# --- DetectionRuntime --------------------------------------------------------------------------------------

def check_runtime(home: Path) -> Json:
    """Load the deployed content as production does, with PipLibraries importable; fail with every problem."""
    content = deployed_content(home)
    base = content_dir(home).resolve()
    if content.problems:
        raise ResourceFailure(f"deployed detection content is invalid: {_problem_lines(content.problems, base)}")
    libraries = _read_json(python_dir(home) / MARKER).get("libraries", [])
    runtime = build_runtime(content, severity_from_spec=True, extra_paths=[python_dir(home)])
    try:
        problems = list(runtime.problems)
        for library in libraries:
            for module in library.get("modules", []):
                try:
                    importlib.import_module(module)
                except Exception as err:
                    problems.append(Problem(python_dir(home), f"detections cannot import {module} "
                                                              f"({library['requirement']}): {err}"))
        loaded = len(runtime.detections) + len(runtime.correlations)
    finally:
        runtime.close()
    if problems:
        raise ResourceFailure(f"{len(problems)} problem(s) loading detections: {_problem_lines(problems, base)}")
    return {"loaded": loaded, **_counts(content),
            "libraries": [lib["requirement"] for lib in libraries], "python_path": str(python_dir(home))}


class DetectionRuntime(Resource):
    """Nothing of its own: it proves the content and the libraries load together, after either changes."""

    name = "DetectionRuntime"

    def properties(self, ctx: DeployContext) -> Json:
        return {"onca_content": packaged_digest(), "packs": pack_sources(ctx),
                "requirements": list(ctx.params.get("PipLibraries") or [])}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return check_runtime(ctx.home)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return check_runtime(ctx.home)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
