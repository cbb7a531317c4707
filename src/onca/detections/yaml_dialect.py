"""The YAML dialect of detection content.

panther-analysis files are read with YAML 1.2 meanings even though PyYAML speaks YAML 1.1: test events
depend on it (a timestamp must stay the string the rule compares against, `on`/`off` are words, a
file mode like `0644` is the number 644). PyYAML's C loader is used for speed; only the constructors
of the three affected tags differ from its SafeLoader.
"""

from __future__ import annotations

from typing import Any

import yaml

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TRUE_FALSE = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class ContentLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.2 booleans, integers and timestamps."""


def _scalar_text(loader: Any, node: yaml.Node) -> str:
    return loader.construct_scalar(node)


def _yaml12_bool(loader: Any, node: yaml.Node) -> bool | str:
    text = _scalar_text(loader, node)
    return _TRUE_FALSE.get(text, text)


def _yaml12_int(loader: Any, node: yaml.Node) -> int | str:
    text = _scalar_text(loader, node)
    if ":" in text:  # YAML 1.1 sexagesimal; a plain string in 1.2
        return text
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    if digits[:2] in ("0x", "0X"):
        return sign * int(digits[2:], 16)
    if digits[:2] in ("0b", "0B"):
        return sign * int(digits[2:], 2)
    return sign * int(digits, 10)


ContentLoader.add_constructor("tag:yaml.org,2002:timestamp", _scalar_text)
ContentLoader.add_constructor("tag:yaml.org,2002:bool", _yaml12_bool)
ContentLoader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document with the content dialect. Raises yaml.YAMLError on malformed input."""
    return yaml.load(text, Loader=ContentLoader)
