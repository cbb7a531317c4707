"""Which detections are turned off in a deployment: the `detections.disabled` setting.

A detection's own `Enabled:` key says what its author intends; this setting is the operator's say on
top of it (`onca detections disable ID`), kept in the metadata database so every worker sees it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

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
