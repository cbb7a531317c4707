"""The onboard component: Onca monitoring its own audit log (OnboardSelf).

When OnboardSelf is true, the audit files (<home>/audit/audit-*.ndjson, log type Onca.Audit) are a log
source named `<stack>-audit`, and the Onca.Audit detections shipped in content/rules/onca_audit run
over it. When it is false, both resources stay in the stack with properties saying so: the source row
is removed and the detections are listed in the `detections.disabled` setting.

`detections.disabled` (settings table) is a sorted list of detection IDs the detection engine must not
run; this component only ever adds or removes its own IDs there.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from sqlalchemy import select

from onca.core import audit
from onca.deploy.components.core import database_gone, metadata_session, record
from onca.deploy.resources import Component, DeployContext, Json, Resource, injected_fault
from onca.detections.enablement import set_disabled
from onca.store.models import Source

COMPONENT = "onboard"
RULES_DIR = ("content", "rules", "onca_audit")  # inside the onca package


def component() -> Component:
    return Component(COMPONENT, [AuditLogSource(), AuditDetections()],
                     "Onca's own audit log as a log source, with detections over it (OnboardSelf)")


def _onboard(ctx: DeployContext) -> bool:
    value = ctx.params.get("OnboardSelf", True)
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "yes", "1", "on")


def source_name(stack_name: str) -> str:
    return f"{stack_name}-audit"


def audit_rule_ids() -> list[str]:
    """The RuleIDs of the Onca.Audit detections shipped with this release."""
    folder = resources.files("onca")
    for part in RULES_DIR:  # content/ is not a package: walk to it from onca
        folder = folder.joinpath(part)
    ids = []
    for item in folder.iterdir():
        if item.name.endswith((".yml", ".yaml")):
            spec = yaml.safe_load(item.read_text(encoding="utf-8")) or {}
            if audit.LOG_TYPE in (spec.get("LogTypes") or []) and spec.get("RuleID"):
                ids.append(str(spec["RuleID"]))
    return sorted(ids)


class AuditLogSource(Resource):
    """The `sources` row for the audit files."""

    name = "AuditLogSource"

    def properties(self, ctx: DeployContext) -> Json:
        return {"enabled": _onboard(ctx), "name": source_name(ctx.stack_name), "kind": "file",
                "log_types": [audit.LOG_TYPE], "path": str(audit.audit_dir(ctx.home))}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._apply(ctx, props)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        if old.get("name") and old["name"] != new["name"]:
            self._remove(ctx, old["name"])
        return self._apply(ctx, new)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        if database_gone(ctx, "sources"):
            return
        self._remove(ctx, props.get("name") or source_name(ctx.stack_name))

    def _apply(self, ctx: DeployContext, props: Json) -> Json:
        if not props.get("enabled"):
            self._remove(ctx, props["name"])
            return {"source_id": None, "enabled": False}
        Path(props["path"]).mkdir(parents=True, exist_ok=True)
        config = {"path": props["path"], "pattern": "audit-*.ndjson", "format": "ndjson"}
        with metadata_session(ctx) as session:
            source = session.scalars(select(Source).where(Source.name == props["name"])).first()
            created = source is None
            if source is None:
                source = Source(name=props["name"], kind=props["kind"])
                session.add(source)
            # Adopt a row left by an earlier run, making it exactly what this resource declares.
            source.kind = props["kind"]
            source.log_types = list(props["log_types"])
            source.config = config
            source.enabled = True
            session.flush()
            source_id = source.id
        if created:
            record(ctx, "source.created", props["name"], {"kind": props["kind"], "log_types": props["log_types"]})
        return {"source_id": source_id, "enabled": True}

    @staticmethod
    def _remove(ctx: DeployContext, name: str) -> None:
        with metadata_session(ctx) as session:
            source = session.scalars(select(Source).where(Source.name == name)).first()
            if source is None:
                return
            session.delete(source)
        record(ctx, "source.deleted", name, {"log_types": [audit.LOG_TYPE]})


class AuditDetections(Resource):
    """The Onca.Audit detections: run when OnboardSelf is true, listed in detections.disabled when not."""

    name = "AuditDetections"

    def properties(self, ctx: DeployContext) -> Json:
        return {"enabled": _onboard(ctx), "log_type": audit.LOG_TYPE, "rule_ids": audit_rule_ids()}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._apply(ctx, props, props)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._apply(ctx, old, new)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        if database_gone(ctx, "settings"):
            return
        # Gone means back to the content's own Enabled flags: drop every ID this resource put there.
        self._set_disabled(ctx, remove=set(props.get("rule_ids") or []), add=set())

    def _apply(self, ctx: DeployContext, old: Json, new: Json) -> Json:
        ids = set(new.get("rule_ids") or [])
        stale = set(old.get("rule_ids") or []) - ids  # detections a newer release no longer ships
        if new.get("enabled"):
            changed = self._set_disabled(ctx, remove=ids | stale, add=set())
        else:
            changed = self._set_disabled(ctx, remove=stale, add=ids)
        if changed:
            action = "detections.enabled" if new.get("enabled") else "detections.disabled"
            record(ctx, action, audit.LOG_TYPE, {"rule_ids": sorted(ids)})
        return {"enabled": bool(new.get("enabled")), "rule_ids": sorted(ids)}

    @staticmethod
    def _set_disabled(ctx: DeployContext, *, remove: set[str], add: set[str]) -> bool:
        """Edit the detections.disabled setting; True when it changed."""
        with metadata_session(ctx) as session:
            return set_disabled(session, remove=remove, add=add)
