"""The schema registry: Onca's managed schemas plus the user's Custom.* schemas, by log type name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from onca.logs.schema import LogSchema, load_schema
from onca.logs.schema_model import SchemaError

_SUFFIXES = (".yml", ".yaml")


def managed_schema_dir() -> Path:
    """The managed schemas shipped inside the package (content/schemas)."""
    return Path(str(resources.files("onca") / "content" / "schemas"))


def is_test_file(path: Path) -> bool:
    return path.stem.endswith("_tests")


def schema_files(path: Path) -> list[Path]:
    """Schema files at `path` (a file, or every .yml/.yaml below a directory), test files excluded."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file() and not is_test_file(p))


class SchemaRegistry:
    def __init__(self, schemas: Iterable[LogSchema] = ()) -> None:
        self._schemas: dict[str, LogSchema] = {}
        for schema in schemas:
            self.add(schema)

    @classmethod
    def load(cls, paths: Iterable[Path] = (), *, include_managed: bool = True) -> SchemaRegistry:
        """Managed schemas (unless include_managed is False) and user schemas from `paths` (files or directories).

        Every problem in every file is collected; SchemaError lists them all (a duplicate name with both paths).
        """
        registry = cls()
        problems: list[str] = []
        sources: list[tuple[Path, bool]] = []
        managed_dir = managed_schema_dir()
        if include_managed:
            sources += [(path, True) for path in schema_files(managed_dir)]
        for root in paths:
            if not root.exists():
                problems.append(f"{root}: no such file or directory")
                continue
            resolved = root.resolve()
            managed = resolved == managed_dir.resolve() or managed_dir.resolve() in resolved.parents
            if managed and include_managed:
                continue  # already loaded
            sources += [(path, managed) for path in schema_files(root)]
        for path, managed in sources:
            try:
                schema = load_schema(path, managed=managed)
            except SchemaError as err:
                problems.extend(err.errors)
                continue
            try:
                registry.add(schema)
            except SchemaError as err:
                problems.extend(err.errors)
        if problems:
            raise SchemaError(problems)
        return registry

    def add(self, schema: LogSchema) -> None:
        existing = self._schemas.get(schema.name)
        if existing is not None:
            raise SchemaError([f"{schema.path}: duplicate log type {schema.name} (already defined in {existing.path})"])
        self._schemas[schema.name] = schema

    def get(self, name: str) -> LogSchema:
        """The schema of log type `name`; KeyError naming the closest known types otherwise."""
        schema = self._schemas.get(name)
        if schema is None:
            close = difflib.get_close_matches(name, list(self._schemas), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise KeyError(f"unknown log type {name!r}{hint}")
        return schema

    def names(self) -> list[str]:
        return sorted(self._schemas)

    def __contains__(self, name: object) -> bool:
        return name in self._schemas

    def __iter__(self) -> Iterator[LogSchema]:
        return iter(sorted(self._schemas.values(), key=lambda schema: schema.name))

    def __len__(self) -> int:
        return len(self._schemas)
