"""What detection code can import: global helpers under their GlobalID and the panther_* names.

Detections import `panther_core` and `panther_detection_helpers` (AGPL packages that talk to
DynamoDB). Onca provides those names itself, backed by its own classes, but only while a
`DetectionImports` is active: they are sys.modules entries set and removed by the runtime, never
installed into site-packages, so they are invisible to everything but detection code.
Global helpers are served straight from their files by a meta-path finder (no temp-dir copies).
Extra paths (a deployment's PipLibraries directory) are on sys.path only while active too.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Mapping, Sequence
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


def _locations(module: object) -> list[str]:
    """Where a module was loaded from: its file and, for a package, its search path."""
    try:
        found = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
    except Exception:  # lazy or proxy modules may raise on attribute access; they are not ours
        return []
    return [where for where in found if isinstance(where, str)]


class DetectionImports:
    """Makes global helpers, the compatibility modules and `extra_paths` importable; undone by `close()`."""

    def __init__(self, global_files: Mapping[str, Path], extra_paths: Sequence[Path] = ()) -> None:
        self.global_files = dict(global_files)
        self.extra_paths = [os.path.abspath(path) for path in extra_paths]
        self._finder = _GlobalsFinder(self.global_files)
        self._replaced: dict[str, types.ModuleType | None] = {}
        self._added_paths: list[str] = []
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
        # Appended, not prepended: a library installed for detections must not shadow the modules Onca
        # itself runs on (half of them are already imported; a second copy would be inconsistent).
        for path in self.extra_paths:
            if path not in sys.path:
                sys.path.append(path)
                self._added_paths.append(path)
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
        self._remove_extra_paths()
        self._active = False

    def _remove_extra_paths(self) -> None:
        """Take the extra paths off sys.path and forget the modules imported from them, so that code
        running after close() cannot import them through the module cache either."""
        if not self._added_paths:
            return
        prefixes = tuple(path.rstrip(os.sep) + os.sep for path in self._added_paths)
        for path in self._added_paths:
            while path in sys.path:
                sys.path.remove(path)
            sys.path_importer_cache.pop(path, None)
        for name, module in list(sys.modules.items()):
            if any(where.startswith(prefixes) for where in _locations(module)):
                del sys.modules[name]
        self._added_paths.clear()

    def __enter__(self) -> DetectionImports:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

