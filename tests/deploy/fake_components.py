"""Small real resources for engine tests: each one is a file under the home holding its properties."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from onca.deploy.resources import Component, DeployContext, Resource, injected_fault


class FileResource(Resource):
    """A file whose content is the parameters it depends on."""

    def __init__(self, component: str, name: str, keys: tuple[str, ...]) -> None:
        self.component = component
        self.name = name
        self.keys = keys

    def path(self, ctx: DeployContext) -> Path:
        return ctx.home / "fake" / f"{self.component}-{self.name}.json"

    def properties(self, ctx: DeployContext) -> dict[str, Any]:
        return {key: ctx.params.get(key) for key in self.keys}

    def create(self, ctx: DeployContext, props: dict[str, Any]) -> dict[str, Any]:
        injected_fault(self.component, self.name, "create")
        path = self.path(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(props, sort_keys=True))
        return {"path": str(path)}

    def update(self, ctx: DeployContext, old: dict[str, Any], new: dict[str, Any], outputs: dict[str, Any]) -> dict:
        injected_fault(self.component, self.name, "update")
        return self.create(ctx, new) if new != old else outputs

    def delete(self, ctx: DeployContext, props: dict[str, Any], outputs: dict[str, Any]) -> None:
        injected_fault(self.component, self.name, "delete")
        self.path(ctx).unlink(missing_ok=True)


LAYOUT = {
    "bootstrap": [("layout", ()), ("database", ("MetadataDatabaseUrl",))],
    "core": [("admin", ("FirstUserEmail",)), ("support", ("SupportRoleIdentityAccountId",))],
    "web": [("config", ("WebListenAddress", "CustomDomain"))],
}


def components() -> list[Component]:
    return [Component(name, [FileResource(name, res, keys) for res, keys in resources])
            for name, resources in LAYOUT.items()]


def state(home: Path) -> dict[str, Any]:
    """Every fake resource file and its content."""
    folder = home / "fake"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}


if __name__ == "__main__":
    # python -m tests.deploy.fake_components HOME STACK KEY=VALUE... : one deploy, as a separate process
    from onca.deploy.stacks import Deployment

    home, stack, *pairs = sys.argv[1:]
    deployment = Deployment(Path(home), components=components)
    outcome = deployment.deploy(stack, dict(pair.split("=", 1) for pair in pairs), preflight=False)
    print(outcome.status)
