"""Machine-readable migration notes: what a release does to the operator's parameters.

The seed's migration notes were prose ("change the PipLibraries parameter to remove ...", "use its ARN
in the ApiCertificateArn parameter"); here each is a rule the upgrade planner applies, hop by hop, and
shows in `onca upgrade --plan` before anything is touched (GitLab's deprecations.rb is the model).

Four kinds, applied in the order the release lists them:

- `rename {from, to}`: the value moves to the new name. If both names hold different values the plan
  is blocked until the operator gives the new name a value (they decide which one wins). An old name
  still given in onca.yml or --param blocks too: after the upgrade it would be an unknown parameter.
- `remove_defaults {parameter, entries, previous_default}`: drops list entries that the release now
  provides itself (the seed's 1.17 -> 1.18 PipLibraries note).
    * untouched list (equal to `previous_default`, order and spelling of package names aside): it
      becomes the new default, i.e. `previous_default` without `entries`;
    * customised list: only the plain named entries are removed; the operator's own entries stay, in
      their order ("you may keep any 3rd party libraries");
    * a named entry the operator pinned or gave extras (`requests==2.25.1`) is a decision they made,
      and it would now fight the bundled copy: the plan is blocked asking them to drop it;
    * named entries still listed in onca.yml or --param block too, since onca.yml would put them back.
- `require {parameter, description, validator}`: a parameter that must have a valid value before the
  upgrade (the seed's API certificate from 1.19.5). Given now, or already set, it passes; otherwise the
  plan is blocked with "<P> must have a value before upgrading to <V>: <description>".
- `set_default {parameter, value}`: a new key's default, taken only when the operator never set it.

Everything here is pure except the `path_exists` validator, which looks at the file system; pass
`validators=` to apply_notes to replace it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from onca.deploy.parameters import BY_NAME, EMAIL, display

if TYPE_CHECKING:
    from onca.deploy.releases import Version

Validator = Callable[[Any], str | None]  # returns what is wrong, or None


def _path_exists(value: Any) -> str | None:
    path = Path(str(value)).expanduser()
    if not path.exists():
        return f"{value} does not exist"
    return None if path.is_file() else f"{value} is not a file"


def _email(value: Any) -> str | None:
    return None if EMAIL.match(str(value)) else f"{value!r} is not an email address"


def _nonempty(value: Any) -> str | None:
    return None if str(value).strip() else "is empty"


VALIDATORS: dict[str, Validator] = {"path_exists": _path_exists, "email": _email, "nonempty": _nonempty}


@dataclass(frozen=True)
class Rename:
    old: str
    new: str
    introduced: Version  # the release whose note this is

    def to_json(self) -> dict[str, Any]:
        return {"rename": {"from": self.old, "to": self.new}, "introduced": str(self.introduced)}


@dataclass(frozen=True)
class RemoveDefaults:
    parameter: str
    entries: tuple[str, ...]
    previous_default: tuple[str, ...]
    introduced: Version

    def to_json(self) -> dict[str, Any]:
        return {"remove_defaults": {"parameter": self.parameter, "entries": list(self.entries),
                                    "previous_default": list(self.previous_default)},
                "introduced": str(self.introduced)}


@dataclass(frozen=True)
class Require:
    parameter: str
    description: str
    validator: str  # a key of VALIDATORS
    introduced: Version

    def to_json(self) -> dict[str, Any]:
        return {"require": {"parameter": self.parameter, "description": self.description,
                            "validator": self.validator}, "introduced": str(self.introduced)}


@dataclass(frozen=True)
class SetDefault:
    parameter: str
    value: Any
    introduced: Version

    def to_json(self) -> dict[str, Any]:
        return {"set_default": {"parameter": self.parameter, "value": self.value}, "introduced": str(self.introduced)}


Note = Rename | RemoveDefaults | Require | SetDefault


@dataclass(frozen=True)
class ParamChange:
    """One parameter change a migration note makes. `before`/`after` are None when the key is absent."""

    parameter: str
    action: str  # renamed (before = the old name's value) | removed_entries | set | defaulted
    before: Any
    after: Any
    introduced: Version
    reason: str
    renamed_from: str = ""  # for `renamed`: the old name, whose value `before` is

    def to_json(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "action": self.action, "renamed_from": self.renamed_from or None,
                "before": _masked(self.parameter, self.before, self.renamed_from),
                "after": _masked(self.parameter, self.after), "introduced": str(self.introduced),
                "reason": self.reason}


class HopLike(Protocol):
    """A Release (its own notes) or a releases.Hop (the notes of every release it passes)."""

    @property
    def version(self) -> Version: ...

    @property
    def notes(self) -> tuple[Note, ...]: ...


def apply_notes(
    params: Mapping[str, Any],
    hop: HopLike,
    given: Mapping[str, Any] | None = None,
    validators: Mapping[str, Validator] | None = None,
) -> tuple[dict[str, Any], list[ParamChange], list[str]]:
    """Apply `hop.notes` in order to the parameters in effect before the hop.

    `params`: the values in effect before this hop (the ledger's, then the previous hop's result).
    `given`: what the operator asks for now (onca.yml and --param), raw or typed; the caller lays these
    on top afterwards (parameters.resolve), so here they only satisfy `require`, settle rename conflicts
    and are checked for names and entries the release no longer accepts.
    Returns the new parameters (a new dict), the changes made, and blockers (what the operator must do
    first, each a complete sentence). `params` and `given` are not modified.
    """
    values = dict(params)
    wanted = dict(given or {})
    checks = {**VALIDATORS, **(validators or {})}
    changes: list[ParamChange] = []
    blockers: list[str] = []
    for note in hop.notes:
        if isinstance(note, Rename):
            _rename(note, hop, values, wanted, changes, blockers)
        elif isinstance(note, RemoveDefaults):
            _remove_defaults(note, hop, values, wanted, changes, blockers)
        elif isinstance(note, Require):
            _require(note, hop, values, wanted, checks, changes, blockers)
        else:
            _set_default(note, values, wanted, changes)
    return values, changes, blockers


def _since(note: Note, hop: HopLike) -> str:
    """' (from 1.19.5)' when the note belongs to a release this hop passes over rather than lands on."""
    return "" if note.introduced == hop.version else f" (from {note.introduced})"


def _rename(note: Rename, hop: HopLike, values: dict[str, Any], wanted: dict[str, Any],
            changes: list[ParamChange], blockers: list[str]) -> None:
    if note.old in wanted:
        blockers.append(
            f"{note.old} was renamed to {note.new} in {note.introduced}, but onca.yml or --param still sets "
            f"{note.old}: rename it to {note.new} in onca.yml (or pass --param {note.new}=<value> instead) "
            f"before upgrading to {hop.version}.")
        return
    if note.old not in values:
        return
    old_value = values.pop(note.old)
    if note.new in values and values[note.new] != old_value:
        if note.new not in wanted:
            values[note.old] = old_value  # untouched until the operator decides
            blockers.append(
                f"{note.old} was renamed to {note.new} in {note.introduced} and both are set "
                f"({note.old}={display(note.old, old_value)!r}, {note.new}={display(note.new, values[note.new])!r}):"
                f" decide which value to keep and pass --param {note.new}=<value> (or set {note.new} in onca.yml) "
                f"before upgrading to {hop.version}.")
            return
        after, reason = wanted[note.new], f"renamed from {note.old} in {note.introduced}; you chose the value"
    else:
        after, reason = old_value, f"renamed from {note.old} in {note.introduced}; the value moves"
    values[note.new] = after
    changes.append(ParamChange(note.new, "renamed", old_value, after, note.introduced, reason, note.old))


def _remove_defaults(note: RemoveDefaults, hop: HopLike, values: dict[str, Any], wanted: dict[str, Any],
                     changes: list[ParamChange], blockers: list[str]) -> None:
    named = {_package(entry) for entry in note.entries}
    included = ", ".join(note.entries)
    if note.parameter in wanted:
        listed = [item for item in _as_list(wanted[note.parameter]) if _package(item) in named]
        if listed:
            blockers.append(
                f"{note.parameter} in onca.yml or --param lists {', '.join(listed)}, which onca {note.introduced} "
                f"includes by default: remove them from {note.parameter} (keep your own entries) before upgrading "
                f"to {hop.version}.")
    if note.parameter not in values:
        return
    current = _as_list(values[note.parameter])
    if sorted(map(_canonical, current)) == sorted(map(_canonical, note.previous_default)):
        after = [item for item in note.previous_default if _package(item) not in named]
        if after != current:
            values[note.parameter] = after
            changes.append(ParamChange(
                note.parameter, "removed_entries", current, after, note.introduced,
                f"was the previous default; now the {note.introduced} default ({included} are included)"))
        return
    pinned = [item for item in current if _package(item) in named and _canonical(item) != _package(item)]
    if pinned:
        blockers.append(
            f"{note.parameter} pins {', '.join(pinned)}, but onca {note.introduced} includes "
            f"{', '.join(sorted({_package(item) for item in pinned}))} itself and a second copy would conflict: "
            f"pass --param {note.parameter}=<your list without them> (or change onca.yml) before upgrading "
            f"to {hop.version}.")
        return
    removed = [item for item in current if _package(item) in named]
    if not removed:
        return
    after = [item for item in current if _package(item) not in named]
    kept = f"; kept your own: {', '.join(after)}" if after else ""
    values[note.parameter] = after
    changes.append(ParamChange(note.parameter, "removed_entries", current, after, note.introduced,
                               f"removed {', '.join(removed)} (included from {note.introduced}){kept}"))


def _require(note: Require, hop: HopLike, values: dict[str, Any], wanted: dict[str, Any],
             checks: Mapping[str, Validator], changes: list[ParamChange], blockers: list[str]) -> None:
    name = note.parameter
    from_given = _filled(wanted.get(name))
    value = wanted[name] if from_given else values.get(name)
    how = f"Set {name} under parameters in onca.yml, or pass --param {name}=<value>, then run the upgrade again."
    if not _filled(value):
        blockers.append(f"{name} must have a value before upgrading to {hop.version}{_since(note, hop)}: "
                        f"{note.description}. {how}")
        return
    if isinstance(value, str):
        value = value.strip()
    problem = checks[note.validator](value)
    if problem:
        source = "given" if from_given else "set"
        blockers.append(f"{name} is {source} to {display(name, value)!r}, which is not valid before upgrading to "
                        f"{hop.version}{_since(note, hop)}: {problem}. It must be {note.description}. {how}")
        return
    if values.get(name) != value:
        changes.append(ParamChange(name, "set", values.get(name), value, note.introduced,
                                   f"required from {note.introduced}; the value you gave"))
        values[name] = value


def _set_default(note: SetDefault, values: dict[str, Any], wanted: dict[str, Any],
                 changes: list[ParamChange]) -> None:
    if note.parameter in values or note.parameter in wanted:
        return
    values[note.parameter] = note.value
    changes.append(ParamChange(note.parameter, "defaulted", None, note.value, note.introduced,
                               f"new in {note.introduced}; its default"))


def _filled(value: Any) -> bool:
    return value is not None and value != [] and str(value).strip() != ""


def _as_list(value: Any) -> list[str]:
    """A list parameter's value as typed (a list) or raw (comma-separated text, as --param gives it)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _package(requirement: str) -> str:
    """The distribution name of a requirement, normalised as pip does (PEP 503): Jsonpath_NG -> jsonpath-ng."""
    match = _NAME.match(requirement)
    name = match.group(1) if match else requirement.strip()
    return re.sub(r"[-_.]+", "-", name).lower()


def _canonical(requirement: str) -> str:
    """A requirement with its name normalised and spaces dropped, so spelling differences don't count."""
    match = _NAME.match(requirement)
    rest = requirement.strip()[match.end():] if match else ""
    return _package(requirement) + rest.replace(" ", "")


def _masked(name: str, value: Any, *other_names: str) -> Any:
    """The value, or ******** when the parameter (or, for a rename, either name) is a secret."""
    secret = any(n in BY_NAME and BY_NAME[n].secret for n in (name, *other_names))
    return "********" if secret and value else value
