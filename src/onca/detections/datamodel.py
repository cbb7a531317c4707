"""Data models: per-log-type mappings from unified field names to JSONPaths or Python methods."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import ModuleType
from typing import Any

from jsonpath_ng import jsonpath
from jsonpath_ng.ext.parser import ExtendedJsonPathParser
from jsonpath_ng.jsonpath import Child, Fields, JSONPath, Root

from onca.detections.errors import ContentError
from onca.detections.immutable import MISSING


@cache
def _parser() -> ExtendedJsonPathParser:
    # Building jsonpath_ng's parser generates its LALR tables (tens of ms); jsonpath_ng.ext.parse()
    # does that on every call, so one parser is built and reused.
    return ExtendedJsonPathParser()


@cache
def _compile(path: str) -> JSONPath:
    # Data models share many paths (e.g. $.sourceIPAddress), so each distinct string is parsed once.
    return _parser().parse(path)


def _dotted_fields(expr: JSONPath) -> tuple[str, ...] | None:
    """The field names of a plain dotted path (optionally rooted at $), else None.

    Such a path can match at most once, which is what lets udm() skip the generic evaluator.
    """
    fields: list[str] = []
    node = expr
    while type(node) is Child:
        right = node.right
        if type(right) is not Fields or len(right.fields) != 1:
            return None
        fields.append(right.fields[0])
        node = node.left
    if type(node) is Fields and len(node.fields) == 1:
        fields.append(node.fields[0])
    elif type(node) is not Root or not fields:
        return None
    if any(name == "*" or name == jsonpath.auto_id_field for name in fields):
        return None
    fields.reverse()
    return tuple(fields)


class PathMapping:
    """A compiled ``Path`` mapping. ``find`` mirrors jsonpath_ng's ``find`` on the raw event."""

    __slots__ = ("expr", "fields", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.expr = _compile(source)
        self.fields = _dotted_fields(self.expr)

    def find(self, raw: Any, data_model_id: str) -> tuple[Any, str | None]:
        """Return (value, full path) of the single match, or (MISSING, None) when nothing matches.

        More than one match raises, naming the path and the data model.
        """
        fields = self.fields
        if fields is not None:
            value = raw
            for name in fields:
                # jsonpath_ng reads a field with value.get(name) and treats a failing get as no match.
                if type(value) is dict:
                    value = value.get(name, MISSING)
                else:
                    try:
                        value = value.get(name, MISSING)
                    except (TypeError, AttributeError):
                        return MISSING, None
                if value is MISSING:
                    return MISSING, None
            return value, ".".join(fields)
        matches = self.expr.find(raw)
        if not matches:
            return MISSING, None
        if len(matches) > 1:
            # A bare Exception, because that is the type detection code written for Panther expects.
            raise Exception(
                f"JSONPath [{self.expr}] in DataModel [{data_model_id}], matched multiple fields."
            )
        return matches[0].value, str(matches[0].full_path)


class DataModel:
    """One ``datamodel`` spec with its compiled paths and the functions its methods name.

    ``paths`` and ``methods`` are keyed by the mapping ``Name`` exactly as written (udm names are
    case-sensitive). ``module`` is the already-imported module of the spec's ``Filename``, if any.
    """

    def __init__(self, spec: Mapping[str, Any], module: ModuleType | None = None) -> None:
        self.data_model_id: str = spec["DataModelID"]
        self.log_types: list[str] = list(spec.get("LogTypes") or [])
        self.enabled: bool = bool(spec.get("Enabled", False))
        self.filename: str | None = spec.get("Filename")
        self.module = module
        self.paths: dict[str, PathMapping] = {}
        self.methods: dict[str, Any] = {}
        for mapping in spec.get("Mappings") or []:
            self._add_mapping({str(key).lower(): value for key, value in mapping.items()})

    def _add_mapping(self, mapping: dict[str, Any]) -> None:
        if "name" not in mapping:
            raise ContentError(f"DataModel [{self.data_model_id}] is missing required field: [name]")
        name = mapping["name"]
        # Truthiness, not presence: an empty Path falls through to Method, as in panther_core.
        if mapping.get("path"):
            self.paths[name] = PathMapping(mapping["path"])
        elif mapping.get("method"):
            method_name = mapping["method"]
            if self.module is None or not hasattr(self.module, method_name):
                raise ContentError(f"DataModel is missing method named [{method_name}]")
            self.methods[name] = getattr(self.module, method_name)
        else:
            raise ContentError(
                f"DataModel [{self.data_model_id}] is missing a field or method for [{name}]"
            )

    def __repr__(self) -> str:
        return f"DataModel({self.data_model_id!r}, log_types={self.log_types!r})"
