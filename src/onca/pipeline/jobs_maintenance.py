"""Lake maintenance on the scheduler: compaction every few minutes, retention once a day.

Retention periods live in the metadata database, setting `lake.retention` = {"<table>": days, ...}, so every
host of a deployment applies the same ones; a table it does not name is kept forever (as `onca lake
retention` without `--keep`). Both jobs only ever run their latest due tick: a missed compaction or
retention is not owed to anybody, the next one covers it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from onca.lake.compaction import compact_lake
from onca.lake.retention import apply_retention
from onca.pipeline.cadence import Rate
from onca.pipeline.jobs import OK, JobRun
from onca.store.models import Setting

log = logging.getLogger(__name__)

RETENTION_SETTING = "lake.retention"


def retention_days(session: Session) -> dict[str, int]:
    """{table: days} from the `lake.retention` setting; malformed entries are left out (kept forever)."""
    setting = session.get(Setting, RETENTION_SETTING)
    value = setting.value if setting is not None else None
    if not isinstance(value, dict):
        return {}
    return {str(table): days for table, days in value.items() if type(days) is int and days > 0}


class CompactionJob:
    name = "lake:compaction"
    catch_up = False

    def __init__(self, lake: Path, minutes: int) -> None:
        self.lake = lake
        self.cadence = Rate(minutes)

    def run(self, tick: datetime) -> JobRun:
        merged = compact_lake(self.lake)
        if merged:
            log.info("compaction merged the small files of %d partition(s)", merged)
        return JobRun(self.name, tick, OK, {"partitions": merged})


class RetentionJob:
    name = "lake:retention"
    catch_up = False

    def __init__(self, lake: Path, session_factory: Callable[[], Session], minutes: int) -> None:
        self.lake = lake
        self.session_factory = session_factory
        self.cadence = Rate(minutes)

    def run(self, tick: datetime) -> JobRun:
        with self.session_factory() as session:
            days = retention_days(session)
        # The tick, not the wall clock, is "now": what a tick deletes does not depend on when it ran.
        deleted = apply_retention(self.lake, days, now=tick) if days else []
        for item in deleted:
            log.info("retention deleted %s/%s (%d file(s))", item.table, item.partition, item.files)
        return JobRun(self.name, tick, OK, {"tables": len(days), "partitions": len(deleted),
                                            "files": sum(item.files for item in deleted)})
