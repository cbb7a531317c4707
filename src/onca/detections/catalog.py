"""The deployed detections as the console and CLI list them: what each is, whether it runs, its code and tests.

Whether a detection runs combines its author's `Enabled:` key with the operator's `detections.disabled`
setting (enablement.py); turning one on or off here edits only that setting, which every worker reads
before each batch, so the change takes effect without a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from onca.deploy.components.detections import content_dir, deployed_content
from onca.detections.content import Content, ContentItem
from onca.detections.enablement import disabled_ids, set_disabled


class UnknownDetection(LookupError):
    """Detection ids that no installed content defines."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = sorted(ids)
        super().__init__(f"unknown detection(s): {', '.join(self.ids)}")


@dataclass(frozen=True, slots=True)
class DetectionSummary:
    id: str
    analysis_type: str
    display_name: str
    log_types: tuple[str, ...]
    severity: str | None
    tags: tuple[str, ...]
    enabled: bool  # it runs: its author enabled it and the operator did not disable it
    disabled_by_operator: bool
    description: str
    file: str  # relative to the deployment's content directory
    test_count: int

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["log_types"], row["tags"] = list(self.log_types), list(self.tags)
        return row


@dataclass(frozen=True, slots=True)
class DetectionFilter:
    """Every given criterion must hold; text and tag compare case-insensitively."""

    analysis_type: str | None = None
    log_type: str | None = None
    severity: str | None = None
    enabled: bool | None = None
    tag: str | None = None
    text: str | None = None

    def matches(self, row: DetectionSummary) -> bool:
        if self.analysis_type and row.analysis_type != self.analysis_type:
            return False
        if self.log_type and self.log_type not in row.log_types:
            return False
        if self.severity and (row.severity or "").lower() != self.severity.lower():
            return False
        if self.enabled is not None and row.enabled != self.enabled:
            return False
        if self.tag and self.tag.lower() not in {t.lower() for t in row.tags}:
            return False
        if self.text:
            needle = self.text.lower()
            return any(needle in hay.lower() for hay in (row.id, row.display_name, row.description))
        return True


def summarize(home: Path, item: ContentItem, off: set[str]) -> DetectionSummary:
    spec = item.spec
    path = item.path
    root = content_dir(home).resolve()
    return DetectionSummary(
        id=item.id, analysis_type=item.analysis_type, display_name=str(spec.get("DisplayName") or ""),
        log_types=tuple(str(t) for t in spec.get("LogTypes") or []),
        severity=str(spec["Severity"]) if spec.get("Severity") else None,
        tags=tuple(str(t) for t in spec.get("Tags") or []),
        enabled=item.enabled and item.id not in off, disabled_by_operator=item.id in off,
        description=str(spec.get("Description") or "").strip(),
        file=str(path.relative_to(root)) if path.is_relative_to(root) else path.name,
        test_count=len(spec.get("Tests") or []))


def list_detections(home: Path, session: Session, where: DetectionFilter | None = None) -> list[DetectionSummary]:
    """Every installed detection (rules, scheduled rules, policies, correlation rules) in load order."""
    off = disabled_ids(session)
    rows = [summarize(home, item, off) for item in deployed_content(home).detections]
    return [row for row in rows if where is None or where.matches(row)]


def find_detection(content: Content, detection_id: str) -> ContentItem:
    for item in content.detections:
        if item.id == detection_id:
            return item
    raise UnknownDetection([detection_id])


def detection_code(item: ContentItem) -> str | None:
    """The Python source of a detection, or None when it has none (simple and correlation detections)."""
    filename = item.spec.get("Filename")
    if not filename:
        return None
    return (item.path.parent / filename).read_text(encoding="utf-8", errors="replace")


def detection_spec_text(item: ContentItem) -> str:
    """The YAML file as written: simple and correlation detections keep their logic here."""
    return item.path.read_text(encoding="utf-8", errors="replace")


def set_enabled(home: Path, session: Session, ids: Iterable[str], *, enabled: bool) -> bool:
    """Let the detections run again (enabled) or stop them; True when the setting changed."""
    wanted = set(ids)
    unknown = wanted - {item.id for item in deployed_content(home).detections}
    if unknown:
        raise UnknownDetection(unknown)
    return set_disabled(session, remove=wanted if enabled else set(), add=set() if enabled else wanted)
