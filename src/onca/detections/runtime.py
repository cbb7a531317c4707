"""Turning validated content into runnable detections: globals, data models, detection modules.

Each setup failure (a syntax or import error, a missing rule() function, a bad data-model method,
a bad match expression) is recorded against its file, and every other detection still loads.
"""

from __future__ import annotations

import importlib.machinery
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from onca.detections.content import Content, ContentItem, Problem
from onca.detections.correlation import CorrelationRule
from onca.detections.datamodel import DataModel
from onca.detections.detection import Detection
from onca.detections.imports import DetectionImports
from onca.detections.match import compile_inline_filters
from onca.detections.simple import build_simple_detection


@dataclass
class Runtime:
    """Loaded detections of one content set, with the import environment they need."""

    imports: DetectionImports
    data_models: dict[str, DataModel] = field(default_factory=dict)
    detections: dict[str, Detection] = field(default_factory=dict)
    correlations: dict[str, CorrelationRule] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # ids that need a backend in the reference tool; kept so --compat can reproduce its skipping
    simple_ids: set[str] = field(default_factory=set)

    def close(self) -> None:
        self.imports.close()


def load_code(name: str, path: Path) -> ModuleType:
    """Execute a content Python file as a fresh module (not in sys.modules), using cached bytecode."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    code = loader.get_code(name)
    module = ModuleType(name)
    module.__file__ = str(path)
    exec(code, module.__dict__)
    return module


def _filename(item: ContentItem) -> Path:
    return item.path.parent / item.spec["Filename"]


def build_runtime(
    content: Content,
    *,
    wanted: set[str] | None = None,
    inline_filters: bool = True,
    severity_from_spec: bool = False,
    extra_paths: Sequence[Path] = (),
) -> Runtime:
    """Load the code of `content`; `wanted` limits which detections are loaded (None = all).

    `severity_from_spec` hands the YAML Severity to the runtime as production does; tests keep it unset
    like the reference tool, so that severity() returning DEFAULT reads as no severity there.
    `extra_paths` go on detection code's sys.path while the runtime is open (a deployment's PipLibraries).
    """
    global_files = {item.spec["GlobalID"]: _filename(item) for item in content.of_type("global")}
    runtime = Runtime(imports=DetectionImports(global_files, extra_paths))
    runtime.imports.activate()
    for item in content.of_type("global"):
        if not _filename(item).is_file():
            runtime.problems.append(Problem(item.path, f"Filename '{item.spec['Filename']}' does not exist"))
    _load_data_models(runtime, content)
    for item in content.detections:
        if wanted is not None and item.id not in wanted:
            continue
        try:
            if item.analysis_type == "correlation_rule":
                runtime.correlations[item.id] = CorrelationRule(item.spec, str(item.path))
                continue
            runtime.detections[item.id] = _load_detection(item, inline_filters, severity_from_spec)
            if item.is_simple:
                runtime.simple_ids.add(item.id)
        except Exception as err:
            runtime.problems.append(Problem(item.path, _setup_message(err)))
    return runtime


def _setup_message(err: BaseException) -> str:
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} (line {err.lineno})"
    if isinstance(err, OSError) and err.filename:
        return f"cannot read '{err.filename}': {err.strerror}"
    return str(err) or type(err).__name__


def _load_detection(item: ContentItem, inline_filters: bool, severity_from_spec: bool) -> Detection:
    spec = item.spec
    where = str(item.path)
    module: Any
    module = build_simple_detection(spec, where) if item.is_simple else load_code(item.id, _filename(item))
    inline = None
    if inline_filters and spec.get("InlineFilters") and item.analysis_type == "rule":
        inline = compile_inline_filters(spec["InlineFilters"], where)
    severity = str(spec["Severity"]).upper() if severity_from_spec and spec.get("Severity") else None
    return Detection(detection_id=item.id, analysis_type=item.analysis_type, module=module, spec=spec,
                     inline_filter=inline, severity=severity)


def _load_data_models(runtime: Runtime, content: Content) -> None:
    for item in content.of_type("datamodel"):
        if not item.enabled:
            continue
        try:
            module = load_code(item.id, _filename(item)) if "Filename" in item.spec else None
            model = DataModel(item.spec, module)
        except Exception as err:
            runtime.problems.append(Problem(item.path, _setup_message(err)))
            continue
        for log_type in item.spec.get("LogTypes", []):
            runtime.data_models.setdefault(log_type, model)
