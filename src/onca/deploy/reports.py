"""Read-only reports on a deployment home: its status, its events a page at a time, the diagnosis of the last
failure and the upgrade plan. `onca status|events|diagnose|upgrade --plan` print them; the API returns them.

None of these holds log data or a secret (parameters marked secret are masked), so the operator roles may read
them. Nothing here changes the deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onca import __version__
from onca.deploy import diagnose as diag
from onca.deploy.parameters import ParameterError, read_config
from onca.deploy.releases import CatalogueError, UpgradePathError, load_catalogue, plan_json
from onca.deploy.stacks import DeployError, Deployment
from onca.deploy.upgrade import make_plan

DEFAULT_STACK = "onca-main"


def root_stack(deployment: Deployment, requested: str | None = None, config_name: str | None = None) -> str:
    """The root stack a command acts on: the one asked for, onca.yml's, the deployed one, or onca-main."""
    return requested or config_name or deployment.root_name() or DEFAULT_STACK


@contextmanager
def opened(home: Path) -> Iterator[Deployment]:
    deployment = Deployment(home)
    try:
        yield deployment
    finally:
        deployment.close()


@dataclass(frozen=True)
class EventsPage:
    events: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    def as_json(self) -> dict[str, Any]:
        return {"events": self.events, "total": self.total, "offset": self.offset, "limit": self.limit}


def status(deployment: Deployment, root: str) -> dict[str, Any]:
    """The root stack, its components with their resources, the deployed and installed versions, any lock."""
    return {**diag.status_json(deployment.ledger, root), "installed_version": __version__}


def events_page(deployment: Deployment, root: str, *, offset: int = 0, limit: int = 50, newest_first: bool = True,
                stack: str | None = None, failed_only: bool = False, operation: int | None = None) -> EventsPage:
    rows = diag.events_json(deployment.ledger, root, stack=stack, failed_only=failed_only, operation=operation)
    if newest_first:
        rows.reverse()
    return EventsPage(rows[offset:offset + limit], len(rows), offset, limit)


def diagnosis(deployment: Deployment, root: str) -> dict[str, Any]:
    return diag.diagnose(deployment.ledger, root).to_json()


def upgrade_plan(deployment: Deployment, root: str, *, target: str | None = None) -> dict[str, Any]:
    """The plan `onca upgrade --plan` prints, from the shipped release catalogue and onca.yml's parameters;
    when there is no plan to make, `ok` is False and `error` says why."""
    try:
        catalogue = load_catalogue()
        given = read_config(deployment.home).parameters
        plan = make_plan(deployment, root, catalogue, target=target, given=given)
    except (CatalogueError, OSError, ParameterError, UpgradePathError, DeployError) as err:
        return {"ok": False, "error": str(err)}
    return {**plan_json(plan), "error": None}
