"""Which detections are turned off in a deployment: the `detections.disabled` setting.

A detection's own `Enabled:` key says what its author intends; this setting is the operator's say on
top of it (`onca detections disable ID`), kept in the metadata database so every worker sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from onca.deploy.components.detections import content_dir, deployed_content
from onca.detections.content import Content
from onca.store.models import Setting

DISABLED_SETTING = "detections.disabled"


def disabled_ids(session: Session) -> set[str]:
    setting = session.get(Setting, DISABLED_SETTING)
    return set(setting.value or []) if setting is not None else set()


def set_disabled(session: Session, *, remove: set[str], add: set[str]) -> bool:
    """Edit the setting; True when it changed."""
    setting = session.get(Setting, DISABLED_SETTING)
    before = set(setting.value or []) if setting is not None else set()
    after = (before - remove) | add
    if after == before:
        return False
    if setting is None:
        session.add(Setting(key=DISABLED_SETTING, value=sorted(after)))
    else:
        setting.value = sorted(after)
    return True


def enabled_content(home: Path, session: Session) -> Content:
    """The deployment's content without what the operator disabled. Items whose own `Enabled:` is false stay:
    each consumer decides what that means for it (the Runner skips them, `onca test` still tests them)."""
    off = disabled_ids(session)
    content = deployed_content(home)
    content.items = [item for item in content.items if item.id not in off]
    return content


def content_version(home: Path, session: Session) -> tuple[Any, ...]:
    """Changes whenever enabled_content would: installed content (its manifest and Onca's own tree are
    replaced, never edited in place) or the disabled set. Cheap enough to ask before every batch."""
    root = content_dir(home)
    manifest, onca = root / "packs.json", root / "onca"
    return (manifest.stat().st_mtime_ns if manifest.exists() else 0,
            onca.stat().st_mtime_ns if onca.exists() else 0, tuple(sorted(disabled_ids(session))))
