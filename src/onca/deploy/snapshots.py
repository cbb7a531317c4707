"""The metadata-database snapshot an update takes first, so that its rollback restores data too.

Re-running old code cannot undo a migration or a data change, so an update snapshots the database
before touching anything, and a rollback restores that snapshot exactly.
"""

from __future__ import annotations

from pathlib import Path

from onca.deploy.resources import DeployContext


def _exists(ctx: DeployContext) -> bool:
    url = ctx.database_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return True


def take(ctx: DeployContext, dest: Path) -> Path | None:
    """Snapshot the metadata database into `dest`; None when there is no database yet."""
    if not _exists(ctx):
        return None
    from onca.store.snapshot import take_snapshot

    dest.mkdir(parents=True, exist_ok=True)
    return take_snapshot(ctx.database_url, ctx.schema, dest)


def restore(ctx: DeployContext, snapshot: Path) -> None:
    from onca.store.snapshot import restore_snapshot

    restore_snapshot(ctx.database_url, ctx.schema, snapshot)
