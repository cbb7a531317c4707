"""Finding and reading detection content: which YAML files are read, parsed and validated (spec §1).

A bad file never stops the others: each problem is kept with its path and reason, and loading goes on.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from onca.detections import schemas
from onca.detections.spec_cache import SpecCache
from onca.detections.yaml_dialect import load_yaml

# In a repository root, only these directories hold content (templates/, test_scenarios/ ... do not).
CONTENT_DIR_PATTERNS = ("*rules*", "*policies*", "*queries*", "*data_models*", "*/global_helpers",
                        "*lookup_tables*", "*/packs", "*scheduled_prompts*")
_ROOT_MARKERS = ("rules", "policies", "queries", "correlation_rules", "global_helpers", "data_models", "packs")
_IGNORED_FILES = {"dependabot.yml", "package.json", "package-lock.json"}
DETECTION_TYPES = ("rule", "scheduled_rule", "policy", "correlation_rule")


@dataclass
class ContentItem:
    path: Path
    spec: dict[str, Any]

    @property
    def analysis_type(self) -> str:
        return self.spec["AnalysisType"]

    @property
    def id(self) -> str:
        return schemas.spec_id(self.spec) or self.path.name

    @property
    def is_simple(self) -> bool:
        return self.spec.get("Detection") is not None and self.analysis_type in ("rule", "scheduled_rule")

    @property
    def enabled(self) -> bool:
        return bool(self.spec.get("Enabled", False))


@dataclass
class Problem:
    path: Path
    message: str


@dataclass
class Content:
    root: Path
    items: list[ContentItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def of_type(self, *types: str) -> list[ContentItem]:
        return [item for item in self.items if item.analysis_type in types]

    @property
    def detections(self) -> list[ContentItem]:
        return self.of_type(*DETECTION_TYPES)


def is_repository_root(root: Path) -> bool:
    return any((root / marker).is_dir() for marker in _ROOT_MARKERS)


def discover(root: Path, *, ignore_files: Iterable[str] = ()) -> Iterator[Path]:
    """YAML files under root, sorted within each directory, skipping hidden and cache directories."""
    ignored = _IGNORED_FILES | {Path(name).name for name in ignore_files}
    filter_dirs = is_repository_root(root)
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        rel = "./" + os.path.relpath(dirpath, root).replace(os.sep, "/")
        if filter_dirs and not any(fnmatch.fnmatch(rel, pattern) for pattern in CONTENT_DIR_PATTERNS):
            continue
        for name in sorted(filenames):
            if name.startswith(".") or name in ignored or not fnmatch.fnmatch(name, "*.y*ml"):
                continue
            yield Path(dirpath, name)


def helper_roots(path: Path) -> list[Path]:
    """Where global helpers and data models are also looked for, as the reference tool does."""
    roots = []
    for base in (path if path.is_dir() else path.parent, Path.cwd()):
        for name in ("global_helpers", "data_models"):
            for candidate in (base / name, base.parent / name):
                if candidate.is_dir():
                    roots.append(candidate)
    return roots


def _read(path: Path, cache: SpecCache) -> tuple[Any, str | None]:
    try:
        return cache.get(path, load_yaml), None
    except yaml.YAMLError as err:
        return None, f"YAML syntax error: {err}".replace("\n", " ")
    except OSError as err:
        return None, f"cannot read file: {err.strerror or err}"


def load_content(path: Path, *, ignore_files: Iterable[str] = (), ignore_extra_keys: bool = False) -> Content:
    """Read, classify and validate every content file under `path` (plus the helper roots)."""
    path = path.resolve() if path.exists() else path
    content = Content(root=path)
    if not path.exists():
        content.problems.append(Problem(path, "path does not exist"))
        return content
    seen: set[Path] = set()
    cache = SpecCache(path)
    files = list(discover(path, ignore_files=ignore_files))
    for extra in helper_roots(path):
        files.extend(discover(extra.resolve(), ignore_files=ignore_files))
    for file in files:
        file = file.resolve()
        if file in seen:
            continue
        seen.add(file)
        spec, error = _read(file, cache)
        if error:
            content.problems.append(Problem(file, error))
            continue
        if not isinstance(spec, dict) or "AnalysisType" not in spec:
            continue  # not a content file (the reference tool skips these silently too)
        errors = schemas.validate_spec(spec, ignore_extra_keys=ignore_extra_keys)
        if errors:
            content.problems.append(Problem(file, "; ".join(errors)))
            continue
        content.warnings.extend(Problem(file, w) for w in schemas.dedup_period_warnings(spec))
        content.items.append(ContentItem(file, spec))
    cache.save()
    _check_across_files(content)
    return content


def _check_across_files(content: Content) -> None:
    pairs = [(item.path, item.spec) for item in content.items]
    conflicts = schemas.find_id_conflicts(pairs)
    conflicts += schemas.find_datamodel_logtype_conflicts(pairs)
    bad = {path for path, _ in conflicts}
    for path, message in conflicts:
        content.problems.append(Problem(Path(path), message))
    content.items = [item for item in content.items if item.path not in bad]
