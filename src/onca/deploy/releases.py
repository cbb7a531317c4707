"""The release manifest, versions and the upgrade path planner.

The manifest (releases.yml in this package) lists every Onca release: its deployer-role version, the
metadata schema revision it ends at, its migration notes (see migrations_notes) and whether it is to be
avoided. `plan_upgrade` turns a deployed version and a target into the path the seed recommends (the
latest patch of every minor in between, never skipping one), the parameter changes each hop makes, what
blocks the upgrade and the backup taken first. Everything here is pure except `load_catalogue`.
"""

from __future__ import annotations

import itertools
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from onca.deploy.migrations_notes import (
    Note,
    ParamChange,
    RemoveDefaults,
    Rename,
    Require,
    SetDefault,
    apply_notes,
)
from onca.deploy.parameters import display

CATALOGUE_ENV = "ONCA_RELEASE_CATALOGUE"
_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_MINOR = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)(\.[xX*])?$")


class VersionError(ValueError):
    """Text that is not a MAJOR.MINOR.PATCH version."""


class CatalogueError(ValueError):
    """An invalid release catalogue; `problems` are 'where: what' lines (entry and key)."""

    def __init__(self, source: str, problems: Sequence[str], headline: str = "is invalid") -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"release catalogue {source} {headline}:\n" + "\n".join(f"  {p}" for p in self.problems))


class UpgradePathError(ValueError):
    """No upgrade path: unknown version, a downgrade, an avoided target, a target not installed."""


class DowngradeError(UpgradePathError):
    pass


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str | Version) -> Version:
        if isinstance(text, Version):
            return text
        match = _VERSION.match(text) if isinstance(text, str) else None
        if match is None:
            raise VersionError(f"{text!r} is not a version: expected MAJOR.MINOR.PATCH such as 1.13.2"
                               f"{_version_hint(text)}")
        return cls(*(int(part) for part in match.groups()))

    @property
    def line(self) -> tuple[int, int]:
        """(major, minor): the release line a patch belongs to."""
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def _version_hint(text: object) -> str:
    if isinstance(text, float | int):
        return " (write it in quotes: YAML reads an unquoted 1.10 as the number 1.1)"
    if not isinstance(text, str):
        return ""
    if text[:1] in "vV" and _VERSION.match(text[1:]):
        return f" (drop the leading {text[0]!r}: {text[1:]})"
    if "-" in text or "+" in text:
        return " (Onca releases have no pre-release or build suffix)"
    if _MINOR.match(text):
        return " (a full version with its patch number is needed here)"
    return " (three numbers without leading zeros)"


@dataclass(frozen=True)
class Release:
    version: Version
    deployer_role: int  # the deployer-role version this release needs (PostgreSQL; see `onca deployer-role`)
    schema_revision: str | None = None  # the Alembic revision of the metadata schema after this release
    notes: tuple[Note, ...] = ()
    avoid: bool = False
    avoid_reason: str = ""
    released: str | None = None  # ISO date

    def to_json(self) -> dict[str, Any]:
        return {"version": str(self.version), "deployer_role": self.deployer_role,
                "schema_revision": self.schema_revision, "notes": [n.to_json() for n in self.notes],
                "avoid": self.avoid, "avoid_reason": self.avoid_reason, "released": self.released}


@dataclass(frozen=True)
class Catalogue:
    current: Version  # the version of the package that ships this catalogue
    releases: tuple[Release, ...]  # ascending by version
    source: str

    def get(self, version: str | Version) -> Release | None:
        wanted = Version.parse(version)
        return next((r for r in self.releases if r.version == wanted), None)

    def line(self, major: int, minor: int) -> list[Release]:
        return [r for r in self.releases if r.version.line == (major, minor)]

    def latest_patch(self, major: int, minor: int) -> Release | None:
        """The newest release of a minor line that is not marked avoid."""
        usable = [r for r in self.line(major, minor) if not r.avoid]
        return usable[-1] if usable else None

    def lines(self) -> list[tuple[int, int]]:
        return sorted({r.version.line for r in self.releases})


# The manifest's schema. Pydantic gives the key-level errors; _describe() adds file and entry to them.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _RenameSpec(_Strict):
    old: str = Field(alias="from", min_length=1)
    new: str = Field(alias="to", min_length=1)


class _RemoveDefaultsSpec(_Strict):
    parameter: str = Field(min_length=1)
    entries: list[str] = Field(min_length=1)
    previous_default: list[str]


class _RequireSpec(_Strict):
    parameter: str = Field(min_length=1)
    description: str = Field(min_length=1)
    validator: Literal["path_exists", "email", "nonempty"] = "nonempty"


class _SetDefaultSpec(_Strict):
    parameter: str = Field(min_length=1)
    value: Any


class _NoteSpec(_Strict):
    rename: _RenameSpec | None = None
    remove_defaults: _RemoveDefaultsSpec | None = None
    require: _RequireSpec | None = None
    set_default: _SetDefaultSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _NoteSpec:
        kinds = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a note has exactly one of rename, remove_defaults, require, set_default "
                             f"(found {', '.join(kinds) or 'none'})")
        return self


class _ReleaseSpec(_Strict):
    version: str
    deployer_role: int = Field(ge=1)
    schema_revision: str | None = None
    notes: list[_NoteSpec] = Field(default_factory=list)
    avoid: bool = False
    avoid_reason: str = ""
    released: date | str | None = None


class _CatalogueSpec(_Strict):
    current: str
    releases: list[_ReleaseSpec] = Field(min_length=1)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The release catalogue: `path`, else $ONCA_RELEASE_CATALOGUE (drills), else the packaged releases.yml.

    Raises CatalogueError naming the file, the entry and the key of every problem.
    """
    chosen = path if path is not None else os.environ.get(CATALOGUE_ENV) or None
    if chosen is None:
        packaged = resources.files("onca.deploy").joinpath("releases.yml")
        return parse_catalogue(packaged.read_text(encoding="utf-8"), source="onca/deploy/releases.yml")
    source = str(chosen)
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except OSError as err:
        origin = f" (from ${CATALOGUE_ENV})" if path is None else ""
        raise CatalogueError(source + origin, [err.strerror or str(err)], "cannot be read") from err
    return parse_catalogue(text, source=source)


def parse_catalogue(text: str, source: str = "<text>") -> Catalogue:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CatalogueError(source, ["not valid YAML: " + str(err).replace("\n", " ")]) from err
    if not isinstance(data, dict):
        raise CatalogueError(source, ["the file must be a mapping with `current` and `releases`"])
    try:
        spec = _CatalogueSpec.model_validate(data)
    except ValidationError as err:
        raise CatalogueError(source, _describe_all(err, data)) from None
    return _build(spec, data, source)


def _build(spec: _CatalogueSpec, data: dict[str, Any], source: str) -> Catalogue:
    problems: list[str] = []
    built: list[Release] = []
    seen: dict[Version, int] = {}
    for index, entry in enumerate(spec.releases):
        where = _entry(index, data)
        try:
            version = Version.parse(entry.version)
        except VersionError as err:
            problems.append(f"{where}: version: {err}")
            continue
        if version in seen:
            problems.append(f"{where}: version: {version} is listed twice (also releases[{seen[version]}])")
            continue
        seen[version] = index
        released = entry.released.isoformat() if isinstance(entry.released, date) else entry.released
        if released is not None:
            try:
                date.fromisoformat(released)
            except ValueError:
                problems.append(f"{where}: released: {released!r} is not a date (YYYY-MM-DD)")
        if entry.avoid_reason and not entry.avoid:
            problems.append(f"{where}: avoid_reason: given but avoid is false")
        notes: list[Note] = []
        for position, note in enumerate(entry.notes):
            made = _note(note, version)
            if isinstance(made, str):
                problems.append(f"{where}: notes[{position}]: {made}")
            else:
                notes.append(made)
        built.append(Release(version, entry.deployer_role, entry.schema_revision, tuple(notes), entry.avoid,
                             entry.avoid_reason, released))
    built.sort(key=lambda r: r.version)
    for before, after in itertools.pairwise(built):
        if after.deployer_role < before.deployer_role:
            problems.append(f"releases ({after.version}): deployer_role: {after.deployer_role} is lower than "
                            f"{before.version}'s {before.deployer_role}; a role version never goes down")
    try:
        current = Version.parse(spec.current)
        if current not in seen:
            problems.append(f"current: {current} is not one of the listed releases")
    except VersionError as err:
        problems.append(f"current: {err}")
        current = Version(0, 0, 0)
    if problems:
        raise CatalogueError(source, problems)
    return Catalogue(current, tuple(built), source)


def _note(spec: _NoteSpec, version: Version) -> Note | str:
    """A validated note, or what is wrong with it."""
    if spec.rename is not None:
        if spec.rename.old == spec.rename.new:
            return "rename: from and to are the same"
        return Rename(spec.rename.old, spec.rename.new, version)
    if spec.remove_defaults is not None:
        r = spec.remove_defaults
        return RemoveDefaults(r.parameter, tuple(r.entries), tuple(r.previous_default), version)
    if spec.require is not None:
        return Require(spec.require.parameter, spec.require.description, spec.require.validator, version)
    assert spec.set_default is not None  # _NoteSpec guarantees exactly one kind
    return SetDefault(spec.set_default.parameter, spec.set_default.value, version)


def _entry(index: int, data: dict[str, Any]) -> str:
    """'releases[3] (1.11.2)': the index and, when readable, the version the entry declares."""
    try:
        version = data["releases"][index].get("version")
    except (KeyError, IndexError, TypeError, AttributeError):
        version = None
    return f"releases[{index}]" + (f" ({version})" if isinstance(version, str) else "")


_UNION_MEMBERS = ("str", "date", "none", "int")  # pydantic names a union's member in loc; meaningless here


def _describe_all(err: ValidationError, data: dict[str, Any]) -> list[str]:
    """One line per place: 'releases[3] (1.11.2): notes[0].rename.to: is required'."""
    merged: dict[tuple[str, str], list[str]] = {}
    for error in err.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and part in _UNION_MEMBERS)]
        if len(loc) >= 2 and loc[0] == "releases" and isinstance(loc[1], int):
            where, rest = _entry(loc[1], data), loc[2:]
        else:
            where, rest = "", loc
        key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest).lstrip(".")
        merged.setdefault((where, key), []).append(_message(error, key, loc))
    lines = []
    for (where, key), messages in merged.items():
        # A union's members fail one by one: "a valid date, got 5" and "a valid string, got 5" become one line.
        message = messages[0] if len(messages) == 1 else "Input should be " + " or ".join(
            m.removeprefix("Input should be ").split(", got ")[0] for m in messages) + \
            (", got " + messages[0].split(", got ")[-1] if ", got " in messages[0] else "")
        lines.append(": ".join(part for part in (where, key, message) if part))
    return lines


def _message(error: Any, key: str, loc: list[Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key (allowed: {', '.join(_allowed(loc[:-1]))})"
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"should be a mapping of key: value, got {error.get('input')!r}"
    message = error["msg"].removeprefix("Value error, ")
    if key.endswith("version") or key == "current":
        return message + _version_hint(error.get("input"))
    return message + f", got {error.get('input')!r}"


def _allowed(loc: list[Any]) -> list[str]:
    """The keys allowed at a place in the manifest, for 'unknown key' errors."""
    model: type[BaseModel] = _CatalogueSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            break
        inner = _model_in(field.annotation)
        if inner is None:
            break
        model = inner
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# The path.
def plan_path(catalogue: Catalogue, deployed: str | Version, target: str | Version) -> list[Release]:
    """The releases to upgrade through, in order: the latest patch of every minor strictly between the
    deployed and the target minor, then the target. An empty list means nothing to do.

    `target` is MAJOR.MINOR.PATCH (that release) or MAJOR.MINOR / MAJOR.MINOR.x (the latest patch of that
    minor). Releases marked avoid are never stops. Raises UpgradePathError (DowngradeError for a target
    below the deployed version) with what to do instead.
    """
    start = Version.parse(deployed)
    goal = _target(catalogue, start, target)
    if catalogue.get(start) is None:
        known = ", ".join(str(r.version) for r in catalogue.line(*start.line))
        hint = f"known {start.major}.{start.minor} releases: {known}" if known else \
            f"the catalogue has no {start.major}.{start.minor} release at all"
        raise UpgradePathError(
            f"the deployed version {start} is not in the release catalogue {catalogue.source} ({hint}), so the "
            f"migrations it needs are unknown. Check the version `onca status` reports; if it is right, upgrade "
            f"with the onca release that lists it.")
    if goal is None or goal.version == start:
        return []
    if goal.version > catalogue.current:
        raise UpgradePathError(
            f"{goal.version} is newer than the installed onca {catalogue.current}: install onca {goal.version} "
            f"first, then upgrade")
    stops: list[Release] = []
    for line in catalogue.lines():
        if start.line < line < goal.version.line:
            stop = catalogue.latest_patch(*line)
            if stop is None:
                raise UpgradePathError(
                    f"every {line[0]}.{line[1]} release is marked avoid, so there is no safe stop between "
                    f"{start} and {goal.version}; wait for a fixed {line[0]}.{line[1]} patch")
            stops.append(stop)
    stops.append(goal)
    _check_majors(catalogue, start, stops)
    return stops


def _target(catalogue: Catalogue, start: Version, target: str | Version) -> Release | None:
    """The target release; None when a minor-form target resolves to something not newer than `start`."""
    if isinstance(target, str) and (minor := _MINOR.match(target.strip())):
        line = (int(minor.group(1)), int(minor.group(2)))
        if line < start.line:
            raise _downgrade(start, f"{line[0]}.{line[1]}")
        release = catalogue.latest_patch(*line)
        if release is None:
            what = "every release of it is marked avoid" if catalogue.line(*line) else "it has no release"
            raise UpgradePathError(f"cannot upgrade to {line[0]}.{line[1]}: {what} in {catalogue.source}")
        return release if release.version > start else None
    wanted = Version.parse(target)
    if wanted < start:
        raise _downgrade(start, str(wanted))
    release = catalogue.get(wanted)
    if release is None:
        raise UpgradePathError(f"the target {wanted} is not in the release catalogue {catalogue.source}")
    if release.avoid and wanted != start:
        better = catalogue.latest_patch(*wanted.line)
        instead = f"upgrade to {better.version} instead" if better and better.version > start else \
            "wait for a fixed patch"
        reason = f" ({release.avoid_reason})" if release.avoid_reason else ""
        raise UpgradePathError(f"{wanted} is marked avoid{reason}: {instead}")
    return release


def _downgrade(start: Version, target: str) -> DowngradeError:
    return DowngradeError(
        f"{target} is older than the deployed {start}: onca does not downgrade in place. To go back, install "
        f"onca {target} and restore the backup taken by that version (`onca restore`).")


def _check_majors(catalogue: Catalogue, start: Version, stops: list[Release]) -> None:
    """A major bump only from the latest minor of the previous major (its newest migrations first)."""
    previous = start
    for stop in stops:
        if stop.version.major > previous.major:
            last_line = max(line for line in catalogue.lines() if line[0] == previous.major)
            if previous.line != last_line:
                raise UpgradePathError(
                    f"{stop.version} is a new major version: upgrade to {last_line[0]}.{last_line[1]} first")
        previous = stop.version


# The plan.
@dataclass(frozen=True)
class Hop:
    """One stop: from the previous stop to `release`, carrying the notes of every release it passes
    (from_version, release.version], in version order. A hop from 1.19.2 to 1.20.3 carries 1.19.5's."""

    from_version: Version
    release: Release
    notes: tuple[Note, ...]

    @property
    def version(self) -> Version:
        return self.release.version

    @property
    def deployer_role(self) -> int:
        return self.release.deployer_role


def hops(catalogue: Catalogue, deployed: str | Version, path: Sequence[Release]) -> list[Hop]:
    result: list[Hop] = []
    previous = Version.parse(deployed)
    for stop in path:
        passed = [r for r in catalogue.releases if previous < r.version <= stop.version]
        result.append(Hop(previous, stop, tuple(note for r in passed for note in r.notes)))
        previous = stop.version
    return result


@dataclass(frozen=True)
class HopPlan:
    hop: Hop
    params_before: dict[str, Any]
    params_after: dict[str, Any]
    changes: tuple[ParamChange, ...]
    blockers: tuple[str, ...]
    role_ok: bool | None  # None: no deployer role applies (SQLite)


DEFAULT_BACKUP_ITEMS = ("the metadata database", "the ledger", "onca.yml", "the keyring")


@dataclass(frozen=True)
class BackupPlan:
    version: Version  # the deployed version; a restore needs this exact version installed
    schema_revision: str | None
    items: tuple[str, ...]

    def describe(self) -> str:
        items = ", ".join(self.items[:-1]) + (f" and {self.items[-1]}" if len(self.items) > 1 else self.items[0])
        revision = f", schema revision {self.schema_revision}" if self.schema_revision else ""
        return (f"Taken before the first hop: {items}, tagged onca {self.version}{revision}. The upgrade stops if the "
                f"backup fails. To go back later: install onca {self.version} and `onca restore` this backup.")


@dataclass(frozen=True)
class UpgradePlan:
    deployed: Version
    target: Version
    steps: tuple[HopPlan, ...]
    role_required: int  # the highest deployer-role version on the path
    role_version: int | None  # the recorded one; None when not applicable (SQLite)
    backup: BackupPlan
    blockers: tuple[str, ...]  # every hop's, then the role's; the upgrade must not start unless empty

    @property
    def ok(self) -> bool:
        return not self.blockers

    @property
    def path(self) -> list[Release]:
        return [step.hop.release for step in self.steps]

    @property
    def hops(self) -> list[Hop]:
        return [step.hop for step in self.steps]

    @property
    def role_ok(self) -> bool | None:
        return None if self.role_version is None else self.role_version >= self.role_required

    @property
    def changes(self) -> list[ParamChange]:
        return [change for step in self.steps for change in step.changes]

    @property
    def params_after(self) -> dict[str, Any]:
        return dict(self.steps[-1].params_after) if self.steps else {}


def plan_upgrade(
    catalogue: Catalogue,
    deployed: str | Version,
    target: str | Version,
    params: Mapping[str, Any],
    given: Mapping[str, Any] | None = None,
    role_version: int | None = None,
    backup_items: Sequence[str] = DEFAULT_BACKUP_ITEMS,
) -> UpgradePlan:
    """The whole plan. Raises UpgradePathError when there is no path; everything the operator can fix
    (missing or invalid parameters, a deployer role too old) is a blocker in the plan instead."""
    start = Version.parse(deployed)
    path = plan_path(catalogue, start, target)
    steps: list[HopPlan] = []
    current = dict(params)
    for hop in hops(catalogue, start, path):
        after, changes, blockers = apply_notes(current, hop, given)
        role_ok = None if role_version is None else role_version >= hop.deployer_role
        steps.append(HopPlan(hop, current, after, tuple(changes), tuple(blockers), role_ok))
        current = after
    deployed_release = catalogue.get(start)
    baseline = deployed_release.deployer_role if deployed_release else 1
    required = max([baseline, *(hop.deployer_role for hop in path)])
    blockers = [blocker for step in steps for blocker in step.blockers]
    if role_version is not None and role_version < required and path:
        first = next(step.hop for step in steps if step.role_ok is False)
        blockers.append(
            f"The deployer role is at version {role_version}, but this path needs version {required} (first "
            f"needed by {first.version}): run `onca deployer-role`, have a database administrator apply the SQL "
            f"it prints, then run the upgrade again.")
    backup = BackupPlan(start, deployed_release.schema_revision if deployed_release else None, tuple(backup_items))
    goal = path[-1].version if path else start
    return UpgradePlan(start, goal, tuple(steps), required, role_version, backup, tuple(blockers))


# Output.
def render_plan(plan: UpgradePlan) -> str:
    if not plan.steps:
        return f"onca {plan.deployed} is deployed and is already the target: nothing to upgrade.\n"
    lines = [f"Upgrade onca {plan.deployed} -> {plan.target} in {len(plan.steps)} "
             f"hop{'s' if len(plan.steps) != 1 else ''}", "", "Path (the latest patch of every minor, none skipped):"]
    rows = [(f"{i}.", f"{step.hop.from_version} -> {step.hop.version}", f"deployer role {step.hop.deployer_role}",
             f"schema {step.hop.release.schema_revision or '-'}",
             "blocked" if step.blockers or step.role_ok is False else "ready")
            for i, step in enumerate(plan.steps, 1)]
    lines += _table(rows)
    lines += ["", "Parameter changes:"]
    changes = [(str(step.hop.version), change) for step in plan.steps for change in step.changes]
    if changes:
        width_v = max(len(v) for v, _ in changes)
        width_p = max(len(c.parameter) for _, c in changes)
        for version, change in changes:
            before = _shown(change.parameter, change.before)  # a renamed value is as secret as its new name
            if change.renamed_from:
                before += f" (as {change.renamed_from})"
            lines.append(f"  {version:<{width_v}}  {change.parameter:<{width_p}}  "
                         f"{before} -> {_shown(change.parameter, change.after)}")
            lines.append(f"  {'':<{width_v}}  {'':<{width_p}}  {change.reason}")
    else:
        lines.append("  none")
    lines += ["", "Deployer role:"]
    if plan.role_version is None:
        lines.append(f"  not applicable (SQLite); the path's releases need version {plan.role_required} "
                     f"with PostgreSQL")
    else:
        first = next(step.hop.version for step in plan.steps if step.hop.deployer_role == plan.role_required)
        verdict = "enough" if plan.role_ok else "too old, see below"
        lines.append(f"  needs version {plan.role_required} (from {first}); recorded version {plan.role_version}: "
                     f"{verdict}")
    lines += ["", "Backup:", *_wrapped(plan.backup.describe(), "  ", "  "), ""]
    if plan.blockers:
        count = len(plan.blockers)
        lines.append(f"Blocked: {count} thing{'s' if count != 1 else ''} to do before upgrading:")
        for i, blocker in enumerate(plan.blockers, 1):
            lines += _wrapped(blocker, f"  {i}. ", " " * len(f"  {i}. "))
    else:
        lines.append("Ready: `onca upgrade` takes the backup, then applies each hop in order.")
    return "\n".join(lines) + "\n"


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == [] or value == "":
        return "(empty)"
    return display(name, value)


def plan_json(plan: UpgradePlan) -> dict[str, Any]:
    return {
        "deployed": str(plan.deployed),
        "target": str(plan.target),
        "ok": plan.ok,
        "hops": [{
            "from": str(step.hop.from_version),
            "to": str(step.hop.version),
            "deployer_role": step.hop.deployer_role,
            "schema_revision": step.hop.release.schema_revision,
            "notes": [note.to_json() for note in step.hop.notes],
            "changes": [change.to_json() for change in step.changes],
            "blockers": list(step.blockers),
            "role_ok": step.role_ok,
        } for step in plan.steps],
        "deployer_role": {"required": plan.role_required, "recorded": plan.role_version, "ok": plan.role_ok},
        "backup": {"version": str(plan.backup.version), "schema_revision": plan.backup.schema_revision,
                   "items": list(plan.backup.items), "description": plan.backup.describe()},
        "blockers": list(plan.blockers),
    }
