"""What a deployment is made of: components (nested stacks) of resources with create/update/delete.

A resource declares the properties it wants from the parameters; the stack engine compares them with
what the ledger recorded and calls create, update or delete. Handlers must be idempotent: a create
that finds its resource already there adopts it, a delete of something already gone succeeds, so an
interrupted operation can always be finished or rolled back by running the handlers again.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]


@dataclass
class DeployContext:
    """Everything a resource handler may read; handlers write only through their own effects."""

    home: Path
    stack_name: str
    params: Mapping[str, Any]
    version: str
    first_deploy: bool
    # Outputs of resources already in place, keyed "component/resource", so later ones can use them.
    outputs: dict[str, Json] = field(default_factory=dict)
    # Human-facing notes a handler wants printed at the end (for example the first admin's invite link).
    notices: list[str] = field(default_factory=list)
    # Events beyond the engine's own (for example "FirstUserEmail change ignored").
    warn: Callable[[str], None] = lambda message: None

    @property
    def lake_dir(self) -> Path:
        location = self.params.get("LakeLocation") or ""
        return Path(location) if location else self.home / "lake"

    @property
    def database_url(self) -> str:
        url = self.params.get("MetadataDatabaseUrl") or ""
        return url or f"sqlite:///{self.home / 'metadata.db'}"

    @property
    def schema(self) -> str:
        """The stack's own database schema (PostgreSQL); resource names carry the stack name as prefix."""
        return self.stack_name.replace("-", "_")


class Resource(ABC):
    """One thing a component creates. `name` is unique within its component."""

    name: str = ""

    def properties(self, ctx: DeployContext) -> Json:
        """The desired state derived from the parameters (JSON-serialisable). A change means update."""
        return {}

    @abstractmethod
    def create(self, ctx: DeployContext, props: Json) -> Json:
        """Bring the resource into existence (adopting it if already there); return its outputs."""

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        """Change the resource from `old` to `new` properties; by default it is created again in place."""
        return self.create(ctx, new)

    @abstractmethod
    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        """Remove the resource; succeed when it is already gone."""


@dataclass
class Component:
    """A nested stack: resources created in order, deleted in reverse."""

    name: str
    resources: list[Resource]
    description: str = ""


class ResourceFailure(RuntimeError):
    """Raised by the fault injector; also a convenient way for handlers to fail with a clear reason."""


_rolling_back = False


@contextlib.contextmanager
def rolling_back() -> Iterator[None]:
    """Handlers called inside run as the `rollback` action for fault injection, whatever they are."""
    global _rolling_back
    previous, _rolling_back = _rolling_back, True
    try:
        yield
    finally:
        _rolling_back = previous


def injected_fault(component: str, resource: str, action: str) -> None:
    """Fail on purpose where ONCA_FAULT names this step (tests and drills).

    ONCA_FAULT is a comma-separated list of `component/resource:action`, action being create, update,
    delete or rollback (any handler called to undo a step); `*` matches any component, resource or action.
    """
    if _rolling_back:
        action = "rollback"
    spec = os.environ.get("ONCA_FAULT", "")
    for item in filter(None, (part.strip() for part in spec.split(","))):
        target, _, wanted = item.partition(":")
        comp, _, res = target.partition("/")
        if comp in ("*", component) and res in ("*", resource) and wanted in ("", "*", action):
            raise ResourceFailure(f"injected fault: {component}/{resource} {action}")


def injected_kill(step: str) -> None:
    """SIGKILL this process at a step boundary named by ONCA_KILL_AT (crash-recovery drills)."""
    if os.environ.get("ONCA_KILL_AT") == step:
        os.kill(os.getpid(), 9)
