"""Compiling fastmatch (`%{field}`) and regex (named groups, `%{PATTERN:field}`) patterns to Python regexes."""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"%\{([^{}]*)\}")
_GO_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_GROK = re.compile(r"%\{([A-Za-z0-9_]+)(?::([A-Za-z_][A-Za-z0-9_]*))?\}")
_MAX_EXPANSION_DEPTH = 20

# A few grok-style building blocks, so common patterns need no patternDefinitions of their own.
BUILTIN_PATTERNS: dict[str, str] = {
    "WORD": r"\b\w+\b",
    "NOTSPACE": r"\S+",
    "SPACE": r"\s*",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "INT": r"[+-]?\d+",
    "NUMBER": r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)",
    "IPV4": r"(?:\d{1,3}\.){3}\d{1,3}",
    "IPV6": r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*",
    "IP": r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)",
    "QUOTEDSTRING": r'"(?:[^"\\]|\\.)*"',
    "QS": r'"(?:[^"\\]|\\.)*"',
    "HOSTNAME": r"[0-9A-Za-z][0-9A-Za-z.\-_]*",
    "USER": r"[A-Za-z0-9._-]+",
}


class PatternError(ValueError):
    """A fastmatch or regex pattern that cannot be compiled."""


def compile_fastmatch(pattern: str) -> tuple[re.Pattern[str], tuple[str | None, ...]]:
    """A `%{field}` pattern as an anchored regex and the field of each group (None: matched but skipped).

    A field between two quotes takes the quoted text with backslash-escaped quotes inside it; any other
    field takes the shortest text up to the next literal, the last one everything to the end of the line.
    """
    pieces = _PLACEHOLDER.split(pattern)
    literals, names = pieces[0::2], pieces[1::2]
    if not names:
        raise PatternError(f"{pattern!r} has no %{{field}} placeholder")
    out = [re.escape(literals[0])]
    fields: list[str | None] = []
    for index, name in enumerate(names):
        before, after = literals[index], literals[index + 1]
        last = index == len(names) - 1
        if not after and not last:
            raise PatternError(f"%{{{name}}} and %{{{names[index + 1]}}} need text between them")
        if before.endswith('"') and after.startswith('"'):
            out.append(r'((?:[^"\\]|\\.)*)')
        elif last and not after:
            out.append("(.*)")
        else:
            out.append("(.*?)")
        out.append(re.escape(after))
        fields.append(name if name and name != "_" else None)
    named = [name for name in fields if name]
    duplicates = sorted({name for name in named if named.count(name) > 1})
    if duplicates:
        raise PatternError(f"{pattern!r} names {', '.join(duplicates)} more than once")
    return re.compile("".join(out), re.DOTALL), tuple(fields)


def expand_patterns(text: str, definitions: dict[str, str], depth: int = 0) -> str:
    """Replace %{NAME} and %{NAME:field} with the named pattern (a capture group when a field is given)."""
    if depth > _MAX_EXPANSION_DEPTH:
        raise PatternError("pattern definitions refer to each other too deeply (a cycle?)")

    def replace(match: re.Match[str]) -> str:
        name, field = match.group(1), match.group(2)
        body = definitions.get(name, BUILTIN_PATTERNS.get(name))
        if body is None:
            known = ", ".join([*definitions, *BUILTIN_PATTERNS])
            raise PatternError(f"%{{{name}}} is not a defined pattern (defined: {known})")
        body = expand_patterns(body, definitions, depth + 1)
        return f"(?P<{field}>{body})" if field else f"(?:{body})"

    return _GROK.sub(replace, text)


def compile_regex(match: list[str], definitions: dict[str, str]) -> re.Pattern[str]:
    """The pieces of `match` joined into one regex; Go-style (?<name>...) groups are accepted too."""
    source = expand_patterns(_GO_NAMED_GROUP.sub("(?P<", "".join(match)), definitions)
    try:
        compiled = re.compile(source, re.DOTALL)
    except re.error as err:
        raise PatternError(f"invalid regular expression: {err}") from None
    if not compiled.groupindex:
        raise PatternError("the pattern has no named group (?P<field>...) to fill a field")
    return compiled
