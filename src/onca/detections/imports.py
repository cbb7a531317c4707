"""What detection code can import: global helpers under their GlobalID and the panther_* names.

Detections import `panther_core` and `panther_detection_helpers` (AGPL packages that talk to
DynamoDB). Onca provides those names itself, backed by its own classes, but only while a
`DetectionImports` is active: they are sys.modules entries set and removed by the runtime, never
installed into site-packages, so they are invisible to everything but detection code.
Global helpers are served straight from their files by a meta-path finder (no temp-dir copies).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Mapping
from importlib.abc import MetaPathFinder
from pathlib import Path
from typing import Any

from onca.detections import errors, event, immutable
from onca.detections.compat import caching, mocking, monitoring


def _package(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so that `import name.sub` resolves through sys.modules
    module.__dict__.update(attributes)
    return module


def compat_modules() -> dict[str, types.ModuleType]:
    """The modules detection code sees under the reference runtime's import names."""
    core = _package("panther_core", PantherEvent=event.PantherEvent, immutable=immutable,
                    enriched_event=event, exceptions=errors)
    helpers = _package("panther_detection_helpers", caching=caching, mocking=mocking, monitoring=monitoring)
    return {
        "panther_core": core,
        "panther_core.immutable": immutable,
        "panther_core.enriched_event": event,
        "panther_core.exceptions": errors,
        "panther_detection_helpers": helpers,
        "panther_detection_helpers.caching": caching,
        "panther_detection_helpers.mocking": mocking,
        "panther_detection_helpers.monitoring": monitoring,
    }


class _GlobalsFinder(MetaPathFinder):
    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)


class DetectionImports:
    """Makes global helpers and the compatibility modules importable; undone by `close()`."""

    def __init__(self, global_files: Mapping[str, Path]) -> None:
        self.global_files = dict(global_files)
        self._finder = _GlobalsFinder(self.global_files)
        self._replaced: dict[str, types.ModuleType | None] = {}
        self._active = False

    def activate(self) -> None:
        if self._active:
            return
        for name, module in compat_modules().items():
            self._replaced[name] = sys.modules.get(name)
            sys.modules[name] = module
        # A global named like an installed module shadows it for detection code, as in the reference.
        for name in self.global_files:
            self._replaced[name] = sys.modules.pop(name, None)
        sys.meta_path.insert(0, self._finder)
        self._active = True

    def close(self) -> None:
        if not self._active:
            return
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        for name in self.global_files:
            sys.modules.pop(name, None)
        for name, previous in self._replaced.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
        self._replaced.clear()
        self._active = False

    def __enter__(self) -> DetectionImports:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

